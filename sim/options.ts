import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import type { LogLevel } from '../lib/logger.ts';
import { PUSH_MODES, type PushMode } from './push.ts';

/** The flags of `wxsync sim`, parsed and checked all at once so one run reports every mistake. */

export const MAX_ACCOUNTS = 100;
export const MAX_FOLLOWERS = 100_000_000;

export interface SimOptions {
  readonly port: number;
  readonly host: string;
  readonly accounts: number;
  /** Followers per account, one entry per account. */
  readonly followers: readonly number[];
  readonly seed: number;
  readonly callbackUrl: string | undefined;
  readonly mode: PushMode;
  readonly dropRate: number;
  readonly dupRate: number;
  readonly busyRate: number;
  readonly latencyMs: number;
  readonly userGetDailyQuota: number;
  readonly perMinuteLimit: number;
  readonly churnIntervalMs: number;
  readonly churnSize: number;
  readonly https: boolean;
  readonly pushTimeoutMs: number;
  readonly pushAttempts: number;
  readonly pushConcurrency: number;
  readonly logLevel: LogLevel;
}

export const DEFAULT_SIM_OPTIONS: SimOptions = {
  port: 18080,
  host: '127.0.0.1',
  accounts: 1,
  followers: [1000],
  seed: 1,
  callbackUrl: undefined,
  mode: 'plain',
  dropRate: 0,
  dupRate: 0,
  busyRate: 0,
  latencyMs: 0,
  userGetDailyQuota: 500,
  perMinuteLimit: 0,
  churnIntervalMs: 0,
  churnSize: 1,
  https: false,
  pushTimeoutMs: 5000,
  pushAttempts: 3,
  pushConcurrency: 16,
  logLevel: 'info',
};

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const SIM_USAGE = `usage: wxsync sim [options]

Serves a simulated WeChat Official Account API and pushes follow/unfollow callbacks.
Prints one JSON line on stdout when ready; logs go to stderr.

  --port N                  listen port, 0 = any free port (default 18080)
  --host ADDR               listen address (default 127.0.0.1)
  --accounts N              number of accounts, 1-${MAX_ACCOUNTS} (default 1)
  --followers N[,N...]      followers per account, or one number per account (default 1000)
  --seed N                  derives credentials, openids and churn (default 1)
  --callback-url BASE       pushes for account X go to BASE/X (default: no pushes)
  --mode plain|compat|safe  push encryption mode (default plain)
  --drop-rate R             share of pushes never delivered, 0-1 (default 0)
  --dup-rate R              share of pushes delivered twice, 0-1 (default 0)
  --busy-rate R             share of API calls answering -1 (default 0)
  --latency-ms N            delay before each API answer (default 0)
  --user-get-daily-quota N  /cgi-bin/user/get calls per day before 45009 (default 500)
  --per-minute-limit N      calls per minute per API before 45011, 0 = none (default 0)
  --churn-interval-ms N     background churn every N ms per account, 0 = off (default 0)
  --churn-size N            follows/unfollows per background churn tick (default 1)
  --https                   serve HTTPS with a self-signed certificate made by openssl
  --push-timeout-ms N       wait per push delivery (default 5000, as WeChat)
  --push-attempts N         deliveries per push before giving up (default 3)
  --push-concurrency N      pushes in flight at once (default 16)
  --log-level LEVEL         fatal|error|warn|info|debug|trace|silent (default info)
  --help                    this text

WeChat API (under apiBase): GET /cgi-bin/token, POST /cgi-bin/stable_token, GET /cgi-bin/user/get,
GET /cgi-bin/user/info, POST /cgi-bin/user/info/batchget, POST /cgi-bin/openapi/quota/get,
POST /cgi-bin/clear_quota, POST /datacube/getusersummary, POST /datacube/getusercumulate (from the
ledger: China days, at most 7 per call, up to yesterday, yesterday only from 08:00 China time, 48001
for an account whose faults say "verified": false).

Admin API:
  GET  /__sim/accounts[/APPID]                  credentials and counts
  GET  /__sim/accounts/APPID/followers          the truth, one openid per line (streamed)
  GET  /__sim/accounts/APPID/users/OPENID       one user as /cgi-bin/user/info shows it
  GET  /__sim/accounts/APPID/ledger[?from=N]    every change made, in order, one JSON object a line:
                                                seq, appid, openid, type, at, scene, userSource, qrScene,
                                                returning, push (delivered|dropped|failed|not-pushed|pending)
  POST /__sim/accounts/APPID/churn              {"subscribe":n,"unsubscribe":m,...}: change and push;
                                                "scene":"ADD_SCENE_…" and/or "qrScene":"name" fix where
                                                every subscribe of the request comes from
  GET|POST /__sim/accounts/APPID/faults         busyRate, latencyMs, perMinuteLimit, dropRate, dupRate,
                                                quotaRemaining, dailyLimits, failNext, clearQuota, verified...
  GET  /__sim/accounts/APPID/stats              calls per API, pushes, quotas (POST .../stats/reset)
  POST /__sim/accounts/APPID/expire-tokens      every live token answers 42001 from now on
  GET|POST /__sim/clock                         {"advanceSeconds":n} moves simulated time forward
  GET|POST /__sim/callback                      {"url":BASE|null,"mode":...} changes where pushes go`;

type Setter = (value: string, problems: string[]) => Partial<Mutable<SimOptions>>;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function integer(flag: string, min: number, max: number, apply: (n: number) => Partial<Mutable<SimOptions>>): Setter {
  return (value, problems) => {
    const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`--${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
      return {};
    }
    return apply(n);
  };
}

function rate(flag: string, apply: (r: number) => Partial<Mutable<SimOptions>>): Setter {
  return (value, problems) => {
    const r = /^(\d{1,3}(\.\d{0,12})?|\.\d{1,12})$/.test(value) ? Number(value) : NaN;
    if (!(r >= 0 && r <= 1)) {
      problems.push(`--${flag} must be a number from 0 to 1, got ${JSON.stringify(value)}`);
      return {};
    }
    return apply(r);
  };
}

const VALUED: Readonly<Record<string, Setter>> = {
  port: integer('port', 0, 65_535, (port) => ({ port })),
  host: (host, problems) => {
    if (!/^[A-Za-z0-9.:[\]-]{1,255}$/.test(host)) {
      problems.push(`--host must be a host name or address, got ${JSON.stringify(host)}`);
      return {};
    }
    return { host };
  },
  accounts: integer('accounts', 1, MAX_ACCOUNTS, (accounts) => ({ accounts })),
  followers: (value, problems) => {
    const parts = value.split(',');
    const counts = parts.map((part) => (/^\d{1,9}$/.test(part) ? Number(part) : NaN));
    if (counts.some((n) => !(n >= 0 && n <= MAX_FOLLOWERS))) {
      problems.push(`--followers must be an integer from 0 to ${MAX_FOLLOWERS}, or a comma-separated list of them, got ${JSON.stringify(value)}`);
      return {};
    }
    return { followers: counts };
  },
  seed: integer('seed', 0, 0xffff_ffff, (seed) => ({ seed })),
  'callback-url': (value, problems) => {
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'http:' && url?.protocol !== 'https:') {
      problems.push(`--callback-url must be an http:// or https:// URL, got ${JSON.stringify(value)}`);
      return {};
    }
    return { callbackUrl: value };
  },
  mode: (value, problems) => {
    if (!(PUSH_MODES as readonly string[]).includes(value)) {
      problems.push(`--mode must be one of ${PUSH_MODES.join(', ')}, got ${JSON.stringify(value)}`);
      return {};
    }
    return { mode: value as PushMode };
  },
  'drop-rate': rate('drop-rate', (dropRate) => ({ dropRate })),
  'dup-rate': rate('dup-rate', (dupRate) => ({ dupRate })),
  'busy-rate': rate('busy-rate', (busyRate) => ({ busyRate })),
  'latency-ms': integer('latency-ms', 0, 60_000, (latencyMs) => ({ latencyMs })),
  'user-get-daily-quota': integer('user-get-daily-quota', 0, 1_000_000_000, (userGetDailyQuota) => ({ userGetDailyQuota })),
  'per-minute-limit': integer('per-minute-limit', 0, 1_000_000_000, (perMinuteLimit) => ({ perMinuteLimit })),
  'churn-interval-ms': integer('churn-interval-ms', 0, 86_400_000, (churnIntervalMs) => ({ churnIntervalMs })),
  'churn-size': integer('churn-size', 1, 10_000, (churnSize) => ({ churnSize })),
  'push-timeout-ms': integer('push-timeout-ms', 1, 60_000, (pushTimeoutMs) => ({ pushTimeoutMs })),
  'push-attempts': integer('push-attempts', 1, 10, (pushAttempts) => ({ pushAttempts })),
  'push-concurrency': integer('push-concurrency', 1, 1024, (pushConcurrency) => ({ pushConcurrency })),
  'log-level': (value, problems) => {
    if (!(LOG_LEVELS as readonly string[]).includes(value)) {
      problems.push(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`);
      return {};
    }
    return { logLevel: value as LogLevel };
  },
};

/** `help: true` when --help was given; otherwise the checked options. Throws USAGE_INVALID listing every problem. */
export function parseSimOptions(argv: readonly string[]): { readonly help: true } | { readonly help: false; readonly options: SimOptions } {
  const problems: string[] = [];
  const options: Mutable<SimOptions> = { ...DEFAULT_SIM_OPTIONS };
  const seen = new Set<string>();
  let followersGiven = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return { help: true };
    if (!arg.startsWith('--')) {
      problems.push(`unexpected argument ${JSON.stringify(arg)}`);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    if (seen.has(name)) problems.push(`--${name} is given more than once`);
    seen.add(name);
    if (name === 'https') {
      if (eq >= 0) problems.push('--https takes no value');
      options.https = true;
      continue;
    }
    const setter = VALUED[name];
    if (setter === undefined) {
      problems.push(`unknown option --${name}`);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else {
      value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) {
        problems.push(`--${name} needs a value`);
        continue;
      }
      i += 1;
    }
    if (name === 'followers') followersGiven = true;
    Object.assign(options, setter(value, problems));
  }
  if (options.followers.length === 1) {
    options.followers = new Array<number>(options.accounts).fill(options.followers[0] ?? 0);
  } else if (followersGiven && options.followers.length !== options.accounts) {
    problems.push(`--followers lists ${options.followers.length} counts for ${options.accounts} accounts`);
  }
  const total = options.followers.reduce((sum, n) => sum + n, 0);
  if (total > MAX_FOLLOWERS) problems.push(`${total} followers in all is more than the ${MAX_FOLLOWERS} the simulator holds`);
  if (problems.length > 0) {
    throw new WxsyncError(ErrorCode.UsageInvalid, `sim: ${problems.join('; ')} (see wxsync sim --help)`);
  }
  return { help: false, options };
}
