import { parseArgs } from 'node:util';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';

/** The flags of `wxsync demo`, checked all at once so one run reports every mistake. */

export interface DemoOptions {
  /** Followers of each simulated account at the start, one entry per account. */
  readonly followers: readonly number[];
  /** Share of WeChat's pushes the simulator never delivers. */
  readonly dropRate: number;
  /** Seconds of live churn before the final snapshot, reconcile and report; undefined: until Ctrl-C. */
  readonly durationS: number | undefined;
}

/** A large, a middling and a small account: the large one's history fills the report, the small one's shows its detail. */
export const DEFAULT_FOLLOWERS: readonly number[] = [200_000, 50_000, 10_000];
const EXTRA_ACCOUNT_FOLLOWERS = 10_000;
const MAX_ACCOUNTS = 10;
/** The simulator keeps every follower in this process, beside the broker and the store: a laptop's worth. */
const MAX_TOTAL_FOLLOWERS = 2_000_000;
const MAX_DURATION_S = 7 * 24 * 3600;

export const DEMO_USAGE = `usage: wxsync demo [--accounts N] [--followers N[,N...]] [--drop-rate R] [--duration S]

Runs wxsync against simulated Official Accounts on this machine, with nothing to configure: a Kafka broker (the
one at KAFKA_BROKERS if it answers, else one of its own, stopped at the end), the simulator (QR campaigns,
steady churn, safe-mode pushes of which a share is dropped and some are sent twice) and \`wxsync run\`, which
snapshots and reconciles every account once a minute. Shows a live summary; on Ctrl-C, or after --duration,
prints the churn report and stops everything it started. Its data is WXSYNC_DATA_DIR/demo, made afresh by each demo.

  --accounts N          simulated accounts, 1-${MAX_ACCOUNTS} (default ${DEFAULT_FOLLOWERS.length})
  --followers N[,N...]  followers of each account, or one number for all (default ${DEFAULT_FOLLOWERS.join(',')})
  --drop-rate R         share of pushes WeChat never delivers, 0-1 (default 0.2)
  --duration S          stop after S seconds of churn, with a last snapshot and reconcile of every account, and
                        exit 1 unless the store then equals WeChat's truth for every account (default: run until Ctrl-C)
  --help                this text`;

function count(value: string, flag: string, min: number, max: number, problems: string[]): number | undefined {
  const n = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (n >= min && n <= max) return n;
  problems.push(`--${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return undefined;
}

/** `help: true` when --help was given; otherwise the checked options. Throws USAGE_INVALID listing every problem. */
export function parseDemoOptions(argv: readonly string[]): { readonly help: true } | { readonly help: false; readonly options: DemoOptions } {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv], strict: true, allowPositionals: false,
      options: { accounts: { type: 'string' }, followers: { type: 'string' }, 'drop-rate': { type: 'string' }, duration: { type: 'string' }, help: { type: 'boolean' } },
    }));
  } catch (error) {
    throw new WxsyncError(ErrorCode.UsageInvalid, `demo: ${(error as Error).message} (see wxsync demo --help)`);
  }
  if (values.help === true) return { help: true };
  const problems: string[] = [];
  const accounts = values.accounts === undefined ? undefined : count(values.accounts, 'accounts', 1, MAX_ACCOUNTS, problems);
  const listed = values.followers?.split(',').map((part) => count(part, 'followers', 1, MAX_TOTAL_FOLLOWERS, problems));
  let followers: number[] = [];
  if (listed !== undefined && listed.every((n) => n !== undefined)) {
    if (listed.length === 1) followers = new Array<number>(accounts ?? DEFAULT_FOLLOWERS.length).fill(listed[0] ?? 0);
    else if (accounts === undefined || accounts === listed.length) followers = listed;
    else problems.push(`--followers lists ${listed.length} counts for ${accounts} accounts`);
  } else if (listed === undefined) {
    followers = Array.from({ length: accounts ?? DEFAULT_FOLLOWERS.length }, (_, k) => DEFAULT_FOLLOWERS[k] ?? EXTRA_ACCOUNT_FOLLOWERS);
  }
  if (followers.length > MAX_ACCOUNTS) problems.push(`--followers lists ${followers.length} accounts; a demo has at most ${MAX_ACCOUNTS}`);
  const total = followers.reduce((sum, n) => sum + n, 0);
  if (total > MAX_TOTAL_FOLLOWERS) problems.push(`${total} followers in all is more than a demo's ${MAX_TOTAL_FOLLOWERS}`);
  const rate = values['drop-rate'];
  const dropRate = rate === undefined ? 0.2 : /^(0|1|0?\.\d{1,6}|[01]\.0{1,6})$/.test(rate) ? Number(rate) : undefined;
  if (dropRate === undefined) problems.push(`--drop-rate must be a number from 0 to 1, got ${JSON.stringify(rate)}`);
  const durationS = values.duration === undefined ? undefined : count(values.duration, 'duration', 1, MAX_DURATION_S, problems);
  if (problems.length > 0) throw new WxsyncError(ErrorCode.UsageInvalid, `demo: ${problems.join('; ')} (see wxsync demo --help)`);
  return { help: false, options: { followers, dropRate: dropRate ?? 0.2, durationS } };
}
