/**
 * `wxsync report churn`: follows, unfollows, net and followers per period, split by subscribe scene or QR
 * campaign, for one account or all. One query builder over the churn_hourly rollup (sql/012) and one pure
 * shaping step, shared by the CLI and the admin API.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { ReportRange } from './range.ts';
import type { ChurnCheck } from './check.ts';
import { rollupsAsOf } from './refresh.ts';

export const SPLITS = ['scene', 'campaign'] as const;
export type Split = (typeof SPLITS)[number];

export interface ChurnRequest {
  readonly appids: readonly string[];
  readonly range: ReportRange;
  readonly split?: Split | undefined;
}

/** One period's figures (or a whole range's). Definitions: README, "Churn analytics". */
export interface ChurnFigures {
  readonly follows: number;
  readonly firstFollows: number;
  readonly returningFollows: number;
  readonly unfollows: number;
  readonly net: number;
  readonly followersStart: number;
  readonly followersEnd: number;
  /** unfollows ÷ followersStart; null when the period starts with no followers. */
  readonly unfollowRate: number | null;
  /** Follows and unfollows the store knows from corrections (pushes WeChat never delivered). */
  readonly recoveredFollows: number;
  readonly recoveredUnfollows: number;
  /** (recoveredFollows + recoveredUnfollows) ÷ (follows + unfollows); null without any. */
  readonly recoveredShare: number | null;
}

export interface ChurnPeriod extends ChurnFigures {
  readonly period: string;
}

export interface ChurnSeries {
  readonly periods: readonly ChurnPeriod[];
  readonly total: ChurnFigures;
}

export interface ChurnReport extends ChurnSeries {
  readonly report: 'churn';
  readonly appids: readonly string[];
  readonly from: string;
  readonly to: string;
  readonly tz: string;
  readonly by: ReportRange['by'];
  readonly split: Split | null;
  /** When the data was read: the start of the rollup refresh the report reads (null before the first). */
  readonly rollupsAsOf: string | null;
  /** Per scene or campaign ('' = unknown scene, no campaign), largest first. */
  readonly splits: readonly (ChurnSeries & { readonly key: string })[];
  /** Per account, ranked by net change (several accounts only). */
  readonly accounts: readonly { readonly appid: string; readonly total: ChurnFigures }[];
  /** With --check: WeChat's figures beside these. */
  readonly check?: ChurnCheck;
}

/** One group of churn_hourly, summed over a bucket. */
export interface ChurnRow {
  readonly appid: string;
  readonly key: string;
  readonly bucket: string;
  readonly kind: 'first' | 'returning' | 'unfollow';
  readonly source: 'callback' | 'correction';
  readonly n: number;
}

/** Followers before the range began, per account and key. */
export interface BaselineRow {
  readonly appid: string;
  readonly key: string;
  readonly followers: number;
}

export const BUCKET_SQL: Readonly<Record<ReportRange['by'], string>> = {
  hour: `formatDateTime(hour, '%Y-%m-%d %H:00', {tz:String})`,
  day: `formatDateTime(hour, '%Y-%m-%d', {tz:String})`,
  week: `formatDateTime(toMonday(hour, {tz:String}), '%Y-%m-%d')`,
  month: `formatDateTime(toStartOfMonth(hour, {tz:String}), '%Y-%m-%d')`,
};
export const KEY_SQL: Readonly<Record<Split | 'none', string>> = { scene: 'scene', campaign: 'qr_scene', none: `''` };

/** The two queries a churn report needs: the range's groups per bucket, and the followers before it. */
export function churnQueries(database: string, request: ChurnRequest): { readonly rows: string; readonly baseline: string; readonly params: Record<string, unknown> } {
  const key = KEY_SQL[request.split ?? 'none'];
  const where = `appid IN {appids:Array(String)}`;
  // Without a split, the rollup without scenes and campaigns: far fewer rows, the same sums.
  const table = request.split === undefined ? 'churn_hourly_totals' : 'churn_hourly';
  return {
    rows: `SELECT appid, ${key} AS key, ${BUCKET_SQL[request.range.by]} AS bucket, kind, source, sum(n) AS n
      FROM ${database}.${table}
      WHERE ${where} AND hour >= toDateTime({start:UInt32}, 'UTC') AND hour < toDateTime({end:UInt32}, 'UTC')
      GROUP BY appid, key, bucket, kind, source`,
    baseline: `SELECT appid, ${key} AS key, sum(if(kind = 'unfollow', -toInt64(n), toInt64(n))) AS followers
      FROM ${database}.${table}
      WHERE ${where} AND hour < toDateTime({start:UInt32}, 'UTC')
      GROUP BY appid, key`,
    params: { appids: request.appids, start: request.range.startMs / 1000, end: request.range.endMs / 1000, tz: request.range.tz },
  };
}

interface Tally {
  first: number;
  returning: number;
  unfollows: number;
  recoveredFollows: number;
  recoveredUnfollows: number;
}

const emptyTally = (): Tally => ({ first: 0, returning: 0, unfollows: 0, recoveredFollows: 0, recoveredUnfollows: 0 });

function add(into: Tally, row: Pick<ChurnRow, 'kind' | 'source' | 'n'>): void {
  const recovered = row.source === 'correction';
  if (row.kind === 'unfollow') {
    into.unfollows += row.n;
    if (recovered) into.recoveredUnfollows += row.n;
  } else {
    into[row.kind] += row.n;
    if (recovered) into.recoveredFollows += row.n;
  }
}

function ratio(part: number, whole: number): number | null {
  return whole === 0 ? null : part / whole;
}

function figures(tally: Tally, followersStart: number): ChurnFigures {
  const follows = tally.first + tally.returning;
  const net = follows - tally.unfollows;
  return {
    follows, firstFollows: tally.first, returningFollows: tally.returning, unfollows: tally.unfollows, net,
    followersStart, followersEnd: followersStart + net, unfollowRate: ratio(tally.unfollows, followersStart),
    recoveredFollows: tally.recoveredFollows, recoveredUnfollows: tally.recoveredUnfollows,
    recoveredShare: ratio(tally.recoveredFollows + tally.recoveredUnfollows, follows + tally.unfollows),
  };
}

/** Every bucket of the range in order, zeros where nothing happened, followers carried from one to the next. */
function series(range: ReportRange, rows: readonly ChurnRow[], followersBefore: number): ChurnSeries {
  const byBucket = new Map<string, Tally>(range.buckets.map((b) => [b.label, emptyTally()]));
  const whole = emptyTally();
  for (const row of rows) {
    const tally = byBucket.get(row.bucket);
    // churn_hourly's buckets are the range's by construction; a label outside it would be a bug, not data.
    if (tally === undefined) throw new Error(`churn row in bucket ${row.bucket}, outside the report's range`);
    add(tally, row);
    add(whole, row);
  }
  let followers = followersBefore;
  const periods = range.buckets.map((bucket): ChurnPeriod => {
    const period = figures(byBucket.get(bucket.label) ?? emptyTally(), followers);
    followers = period.followersEnd;
    return { period: bucket.label, ...period };
  });
  return { periods, total: figures(whole, followersBefore) };
}

function sumBy<T>(items: readonly T[], keyOf: (item: T) => string, valueOf: (item: T) => number): Map<string, number> {
  const sums = new Map<string, number>();
  for (const item of items) sums.set(keyOf(item), (sums.get(keyOf(item)) ?? 0) + valueOf(item));
  return sums;
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(keyOf(item));
    if (group === undefined) groups.set(keyOf(item), [item]);
    else group.push(item);
  }
  return groups;
}

/** The report from the rollup's rows: pure, so tests give it rows and expect exact JSON. */
export function shapeChurn(request: ChurnRequest, rows: readonly ChurnRow[], baseline: readonly BaselineRow[], rollupsAsOf: string | null): ChurnReport {
  const { range } = request;
  const before = (selected: readonly BaselineRow[]): number => selected.reduce((sum, b) => sum + b.followers, 0);
  const whole = series(range, rows, before(baseline));
  const baselineByKey = sumBy(baseline, (b) => b.key, (b) => b.followers);
  const rowsByKey = groupBy(rows, (r) => r.key);
  const keys = [...new Set([...rowsByKey.keys(), ...[...baselineByKey].filter(([, n]) => n !== 0).map(([k]) => k)])];
  const splits = request.split === undefined ? [] : keys
    .map((key) => ({ key, ...series(range, rowsByKey.get(key) ?? [], baselineByKey.get(key) ?? 0) }))
    .sort((a, b) => b.total.followersEnd - a.total.followersEnd || b.total.follows - a.total.follows || a.key.localeCompare(b.key));
  const rowsByApp = groupBy(rows, (r) => r.appid);
  const baselineByApp = groupBy(baseline, (b) => b.appid);
  const accounts = request.appids.length < 2 ? [] : request.appids
    .map((appid) => ({ appid, total: series(range, rowsByApp.get(appid) ?? [], before(baselineByApp.get(appid) ?? [])).total }))
    .sort((a, b) => b.total.net - a.total.net || a.appid.localeCompare(b.appid));
  return {
    report: 'churn', appids: request.appids, from: range.from, to: range.to, tz: range.tz, by: range.by, split: request.split ?? null, rollupsAsOf,
    ...whole, splits, accounts,
  };
}

/** Reads the rollup and shapes the report. */
export async function churnReport(clickhouse: ClickHouseClient, database: string, request: ChurnRequest): Promise<ChurnReport> {
  const queries = churnQueries(database, request);
  const [rows, baseline, asOf] = await Promise.all([
    clickhouse.query({ query: queries.rows, query_params: queries.params, format: 'JSONEachRow' }).then((r) => r.json<ChurnRow & { n: string }>()),
    clickhouse.query({ query: queries.baseline, query_params: queries.params, format: 'JSONEachRow' }).then((r) => r.json<BaselineRow & { followers: string }>()),
    rollupsAsOf(clickhouse, database),
  ]);
  return shapeChurn(request, rows.map((r) => ({ ...r, n: Number(r.n) })), baseline.map((b) => ({ ...b, followers: Number(b.followers) })), asOf);
}
