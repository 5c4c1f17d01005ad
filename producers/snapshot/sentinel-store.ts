/**
 * What the drift sentinel reads from and writes to ClickHouse: the store's follower count as of a moment
 * (sql/014 sentinel_store_count), its own check records, and the reconcile runs of the snapshots it started.
 * Every value is a bound parameter.
 */
import { queryRows, type ClickHouseClient } from '../../lib/clickhouse.ts';
import type { SnapshotHistory } from './metrics.ts';

export interface SentinelRow {
  readonly appid: string;
  readonly checkedAt: number;
  readonly result: 'equal' | 'drift' | 'failed' | 'outcome';
  readonly wechatTotal: number;
  readonly storeCount: number;
  readonly inFlight: number;
  readonly drift: number;
  readonly action: string;
  readonly snapshotId: string;
  readonly outcome: string;
  readonly reason: string;
}

export interface ReconcileOutcome {
  readonly status: string;
  readonly reason: string;
  readonly corrections: number;
}

export interface SentinelStore {
  /** Followers as of `beforeMs` and the users with an event from `beforeMs` to `untilMs`. */
  count(appid: string, beforeMs: number, untilMs: number): Promise<{ readonly storeCount: number; readonly inFlight: number }>;
  record(row: SentinelRow): Promise<void>;
  /** The finished (done, refused or failed) real reconcile of the snapshot, newest first; undefined while none. */
  reconcileOf(appid: string, snapshotId: string): Promise<ReconcileOutcome | undefined>;
  /** Per account, the last complete snapshot's end and whether the newest ended one was incomplete. */
  history(): Promise<Map<string, SnapshotHistory>>;
  /** The account's newest rows, newest first. */
  recent(appid: string, limit: number): Promise<SentinelRow[]>;
}

interface RecordedRow {
  appid: string;
  checked_at: string;
  result: SentinelRow['result'];
  wechat_total: string;
  store_count: string;
  in_flight: string;
  drift: string;
  action: string;
  snapshot_id: string;
  outcome: string;
  reason: string;
}

export function clickhouseSentinelStore(client: ClickHouseClient, db: string): SentinelStore {
  const rows = <T>(query: string, params: Record<string, unknown>): Promise<T[]> => queryRows<T>(client, query, params);

  return {
    async count(appid, beforeMs, untilMs) {
      const [row] = await rows<{ store_count: string; in_flight: string }>(
        `SELECT store_count, in_flight FROM ${db}.sentinel_store_count(appid = {appid:String}, before_ms = {before_ms:Int64}, until_ms = {until_ms:Int64})`,
        { appid, before_ms: beforeMs, until_ms: untilMs },
      );
      return { storeCount: Number(row?.store_count ?? 0), inFlight: Number(row?.in_flight ?? 0) };
    },

    async record(row) {
      await client.command({
        query: `INSERT INTO ${db}.sentinel_checks (appid, checked_at, result, wechat_total, store_count, in_flight, drift, action, snapshot_id, outcome, reason)
          SELECT {appid:String}, fromUnixTimestamp64Milli({checked_at:Int64}, 'UTC'), {result:String}, {wechat_total:UInt64}, {store_count:UInt64},
            {in_flight:UInt64}, {drift:Int64}, {action:String}, {snapshot_id:String}, {outcome:String}, {reason:String}`,
        query_params: {
          appid: row.appid, checked_at: row.checkedAt, result: row.result, wechat_total: row.wechatTotal, store_count: row.storeCount,
          in_flight: row.inFlight, drift: row.drift, action: row.action, snapshot_id: row.snapshotId, outcome: row.outcome, reason: row.reason,
        },
      });
    },

    async reconcileOf(appid, snapshotId) {
      const [row] = await rows<{ status: string; reason: string; corrections: string }>(
        `SELECT status, reason, missing_emitted + stale_emitted + live_emitted AS corrections FROM ${db}.reconcile_runs
        WHERE appid = {appid:String} AND snapshot_id = {snapshot_id:String} AND dry_run = 0 AND status IN ('done', 'refused', 'failed')
        ORDER BY finished_at DESC LIMIT 1`,
        { appid, snapshot_id: snapshotId },
      );
      return row === undefined ? undefined : { status: row.status, reason: row.reason, corrections: Number(row.corrections) };
    },

    async history() {
      const found = await rows<{ appid: string; last_complete: string; newest_complete: number | boolean; any_complete: number | boolean }>(
        `SELECT appid, toUnixTimestamp64Milli(maxIf(ended_at, complete)) AS last_complete, argMax(complete, started_at) AS newest_complete,
          countIf(complete) > 0 AS any_complete
        FROM ${db}.snapshot_status WHERE has_end GROUP BY appid`,
        {},
      );
      return new Map(found.map((r) => [r.appid, {
        ...(r.any_complete ? { lastCompleteMs: Number(r.last_complete) } : {}),
        lastFailed: !r.newest_complete,
      }]));
    },

    async recent(appid, limit) {
      const found = await rows<RecordedRow>(
        `SELECT appid, toUnixTimestamp64Milli(checked_at) AS checked_at, result, wechat_total, store_count, in_flight, drift, action, snapshot_id, outcome, reason
        FROM ${db}.sentinel_checks WHERE appid = {appid:String} ORDER BY checked_at DESC LIMIT {limit:UInt32}`,
        { appid, limit },
      );
      return found.map((r) => ({
        appid: r.appid, checkedAt: Number(r.checked_at), result: r.result, wechatTotal: Number(r.wechat_total), storeCount: Number(r.store_count),
        inFlight: Number(r.in_flight), drift: Number(r.drift), action: r.action, snapshotId: r.snapshot_id, outcome: r.outcome, reason: r.reason,
      }));
    },
  };
}
