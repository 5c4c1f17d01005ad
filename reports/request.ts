/**
 * What a report is asked for, the same whether it comes from `wxsync report` or `GET /api/report/...`: the CLI
 * checks it before it calls anyone (a usage error exits 2 with nothing printed), and the API checks it again.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../lib/config.ts';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import { campaignsReport, type CampaignsReport, type CampaignsRequest } from './campaigns.ts';
import { churnReport, SPLITS, type ChurnReport, type ChurnRequest, type Split } from './churn.ts';
import { reportRange, zoneOffsetMs } from './range.ts';

/** WeChat's datacube counts China days (UTC+8). */
const CHINA_OFFSET_MS = 8 * 3_600_000;
import { refreshRollups } from './refresh.ts';
import type { DatacubeSource } from '../lib/wechat/datacube.ts';
import { checkWithWechat } from './check.ts';

export const REPORTS = ['churn', 'campaigns'] as const;
export type ReportName = (typeof REPORTS)[number];

/** The options as text, as parsed from argv or a query string. */
export interface ReportOptions {
  readonly appid?: string | undefined;
  readonly all?: boolean | undefined;
  readonly from?: string | undefined;
  readonly to?: string | undefined;
  readonly days?: string | undefined;
  readonly by?: string | undefined;
  readonly split?: string | undefined;
  readonly tz?: string | undefined;
  /** Refresh the rollups before reading them. */
  readonly fresh?: boolean | undefined;
  /** Churn: WeChat's datacube figures beside wxsync's. */
  readonly check?: boolean | undefined;
}

export type ResolvedReport =
  | { readonly report: 'churn'; readonly request: ChurnRequest; readonly fresh: boolean; readonly check: boolean }
  | { readonly report: 'campaigns'; readonly request: CampaignsRequest; readonly fresh: boolean };

function usage(message: string): WxsyncError {
  return new WxsyncError(ErrorCode.UsageInvalid, message);
}

function accountsOf(options: ReportOptions, config: Config, allowAll: boolean): string[] {
  const known = config.accounts.map((a) => a.appid);
  if (options.all === true) {
    if (!allowAll) throw usage('--all is for report churn');
    if (options.appid !== undefined) throw usage('give an appid or --all, not both');
    if (known.length === 0) throw usage('--all: WXSYNC_ACCOUNTS names no account');
    return known;
  }
  if (options.appid === undefined) throw usage('give an appid');
  if (!known.includes(options.appid)) throw usage(`unknown account ${options.appid}: it is not in WXSYNC_ACCOUNTS`);
  return [options.appid];
}

export function resolveReport(report: string, options: ReportOptions, config: Config, nowMs: number): ResolvedReport {
  const tz = options.tz ?? config.reports.tz;
  const fresh = options.fresh === true;
  if (report === 'churn') {
    if (options.split !== undefined && !(SPLITS as readonly string[]).includes(options.split)) {
      throw usage(`--split must be one of ${SPLITS.join(', ')}, not ${JSON.stringify(options.split)}`);
    }
    const appids = accountsOf(options, config, true);
    const range = reportRange({ from: options.from, to: options.to, days: options.days, by: options.by, tz }, nowMs);
    const check = options.check === true;
    if (check) {
      if (appids.length > 1) throw usage('--check compares one account with WeChat: give its appid, not --all');
      if (range.by !== 'day') throw usage('--check compares days: WeChat counts nothing finer or coarser; use --by day');
      if ([range.startMs, range.endMs - 1].some((ms) => zoneOffsetMs(tz, ms) !== CHINA_OFFSET_MS)) {
        throw usage(`--check compares China days, as WeChat counts them: use --tz Asia/Shanghai (not ${tz})`);
      }
    }
    return { report, request: { appids, range, split: options.split as Split | undefined }, fresh, check };
  }
  if (report === 'campaigns') {
    for (const name of ['from', 'to', 'days', 'by', 'split', 'check'] as const) if (options[name] !== undefined) throw usage(`--${name} is for report churn`);
    const [appid] = accountsOf(options, config, false) as [string];
    // The same zone check as churn's, over today alone.
    reportRange({ tz, days: '1' }, nowMs);
    return { report, request: { appid, nowMs, tz }, fresh };
  }
  throw usage(`unknown report ${JSON.stringify(report)}; reports are ${REPORTS.join(', ')}`);
}

/** The options as the API's query string. */
export function reportQuery(options: ReportOptions): URLSearchParams {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || value === false) continue;
    query.set(name, value === true ? '1' : String(value));
  }
  return query;
}

const OPTION_NAMES = ['appid', 'from', 'to', 'days', 'by', 'split', 'tz'] as const;
const FLAG_NAMES = ['all', 'fresh', 'check'] as const;

/** The API's query string back to options; an unknown or repeated parameter is refused, as argv's would be. */
export function reportOptionsOf(query: URLSearchParams): ReportOptions {
  const options: Record<string, string | boolean> = {};
  for (const name of new Set(query.keys())) {
    if (query.getAll(name).length > 1) throw usage(`parameter ${name} is given twice`);
    const value = query.get(name) ?? '';
    if ((OPTION_NAMES as readonly string[]).includes(name)) options[name] = value;
    else if ((FLAG_NAMES as readonly string[]).includes(name)) options[name] = value === '1';
    else throw usage(`unknown parameter ${JSON.stringify(name.slice(0, 64))}`);
  }
  return options;
}

export interface ReportDeps {
  readonly clickhouse: ClickHouseClient;
  /** WeChat for --check: the account's client. */
  readonly datacube: (appid: string) => DatacubeSource;
  readonly signal?: AbortSignal | undefined;
  readonly now?: () => number;
}

export async function runReport(config: Config, resolved: ResolvedReport, deps: ReportDeps): Promise<ChurnReport | CampaignsReport> {
  const database = config.clickhouse.database;
  const { clickhouse, signal } = deps;
  if (resolved.fresh) await refreshRollups(clickhouse, database, { timeoutMs: config.reports.refreshTimeoutMs, ...(signal === undefined ? {} : { signal }) });
  if (resolved.report === 'campaigns') return campaignsReport(clickhouse, database, resolved.request);
  const report = await churnReport(clickhouse, database, resolved.request);
  if (!resolved.check) return report;
  const [appid] = resolved.request.appids as [string];
  return { ...report, check: await checkWithWechat(deps.datacube(appid), report, deps.now ?? Date.now) };
}
