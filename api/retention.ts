/**
 * `GET /api/retention?appid=…[&days=30]`: for each QR campaign, the share of its first follows still following d
 * days after following, for every d from 0 to `days`: the dashboard's heatmap. The same definitions as `report
 * campaigns`' "after 1, 7, 30, 90 d" (reports/campaigns.ts), at every day: of the first follows at least d days old
 * at the time of the request, those that lasted at least d days (or have not ended). Read from follow_spells
 * (sql/012) in one pass: each follow is counted once by its age and how long it lasted, both in whole days capped
 * at `days` + 1, and the per-day figures are cumulative sums of those counts.
 */
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import type { Config } from '../lib/config.ts';
import { ErrorCode, WxsyncError, isWxsyncError } from '../lib/errors.ts';
import { countParam, errorAnswer, sendJson, type Routes } from '../lib/http-server.ts';
import { rollupsAsOf } from '../reports/refresh.ts';
import { getQuery } from './get.ts';

export const DEFAULT_RETENTION_DAYS = 30;
export const MAX_RETENTION_DAYS = 365;

export interface DayRetention {
  readonly day: number;
  /** First follows at least `day` days old. */
  readonly eligible: number;
  readonly stayed: number;
  /** stayed ÷ eligible; null when none is old enough. */
  readonly share: number | null;
}

export interface CampaignRetention {
  readonly campaign: string;
  /** First follows through the campaign's QR code, up to now. */
  readonly brought: number;
  /** Days 0 … `days`. */
  readonly retention: readonly DayRetention[];
}

export interface RetentionReport {
  readonly appid: string;
  readonly asOf: string;
  readonly rollupsAsOf: string | null;
  readonly days: number;
  /** Largest first, as in `report campaigns`. */
  readonly campaigns: readonly CampaignRetention[];
}

/** How many first follows of a campaign are `age` whole days old and lasted `lasted` whole days (both capped). */
export interface RetentionRow {
  readonly campaign: string;
  readonly age: number;
  readonly lasted: number;
  readonly n: number;
}

/**
 * Whole days are floors of exact durations: a follow is at least d days old exactly when `followed_at <= now - d
 * days`, and lasted at least d days exactly when its whole seconds reach d × 86,400, as `report campaigns` counts.
 * A follow not ended lasts `days` + 1 (longer than any d asked).
 */
export function retentionQuery(database: string): string {
  return `SELECT qr_scene AS campaign,
      least(intDiv(toUnixTimestamp64Milli({now:DateTime64(3, 'UTC')}) - toUnixTimestamp64Milli(followed_at), 86400000), {days:UInt16} + 1) AS age,
      if(unfollowed = 1, least(intDiv(dateDiff('second', followed_at, unfollowed_at), 86400), {days:UInt16} + 1), {days:UInt16} + 1) AS lasted,
      count() AS n
    FROM ${database}.follow_spells
    WHERE appid = {appid:String} AND qr_scene != '' AND returning = 0 AND followed_at <= {now:DateTime64(3, 'UTC')}
    GROUP BY campaign, age, lasted`;
}

/** The report from the counts: pure. */
export function shapeRetention(appid: string, days: number, nowMs: number, rows: readonly RetentionRow[], asOf: string | null): RetentionReport {
  const byCampaign = new Map<string, RetentionRow[]>();
  for (const row of rows) byCampaign.set(row.campaign, [...byCampaign.get(row.campaign) ?? [], row]);
  const campaigns = [...byCampaign].map(([campaign, counts]): CampaignRetention => ({
    campaign,
    brought: counts.reduce((sum, r) => sum + r.n, 0),
    retention: Array.from({ length: days + 1 }, (_, day): DayRetention => {
      const eligible = counts.filter((r) => r.age >= day).reduce((sum, r) => sum + r.n, 0);
      const stayed = counts.filter((r) => r.age >= day && r.lasted >= day).reduce((sum, r) => sum + r.n, 0);
      return { day, eligible, stayed, share: eligible === 0 ? null : stayed / eligible };
    }),
  })).sort((a, b) => b.brought - a.brought || a.campaign.localeCompare(b.campaign));
  return { appid, asOf: new Date(nowMs).toISOString(), rollupsAsOf: asOf, days, campaigns };
}

export async function retentionReport(clickhouse: ClickHouseClient, database: string, request: { readonly appid: string; readonly days: number; readonly nowMs: number }): Promise<RetentionReport> {
  const [rows, asOf] = await Promise.all([
    clickhouse.query({ query: retentionQuery(database), query_params: { appid: request.appid, days: request.days, now: request.nowMs / 1000 }, format: 'JSONEachRow' })
      .then((r) => r.json<{ campaign: string; age: string | number; lasted: string | number; n: string }>()),
    rollupsAsOf(clickhouse, database),
  ]);
  return shapeRetention(request.appid, request.days, request.nowMs, rows.map((r) => ({ campaign: r.campaign, age: Number(r.age), lasted: Number(r.lasted), n: Number(r.n) })), asOf);
}

/** The request from a query string; a usage error for anything else. */
export function retentionRequest(query: URLSearchParams, config: Config): { readonly appid: string; readonly days: number } {
  const unknown = [...query.keys()].find((k) => k !== 'appid' && k !== 'days');
  if (unknown !== undefined) throw new WxsyncError(ErrorCode.UsageInvalid, `unknown parameter ${JSON.stringify(unknown.slice(0, 64))}`);
  const appid = query.get('appid') ?? '';
  if (!config.accounts.some((a) => a.appid === appid)) throw new WxsyncError(ErrorCode.UsageInvalid, appid === '' ? 'give an appid' : `unknown account ${appid.slice(0, 64)}`);
  return { appid, days: countParam(query, 'days', DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS) };
}

export function retentionRoutes(config: Config, clickhouse: ClickHouseClient): Routes {
  return [['/api/retention', async (req, res) => {
    const query = getQuery(req, res, '/api/retention');
    if (query === undefined) return;
    try {
      const request = retentionRequest(query, config);
      sendJson(res, 200, await retentionReport(clickhouse, config.clickhouse.database, { ...request, nowMs: Date.now() }));
    } catch (error) {
      sendJson(res, isWxsyncError(error, ErrorCode.UsageInvalid) ? 400 : 500, errorAnswer(error));
    }
  }]];
}
