/**
 * What the reconcile job reads from and writes to ClickHouse: snapshot facts, the two anti-join views
 * (sql/007_reconcile.sql) and the run log. Every value is a bound parameter.
 */
import type { ClickHouseClient } from '../../lib/clickhouse.ts';
import type { SnapshotFacts } from './plan.ts';

export interface Candidate {
  readonly openid: string;
  /** The openid has an event at or after T0 − δ: newer than the snapshot, never corrected. */
  readonly inWindow: boolean;
}

export interface RuleCounts {
  readonly found: number;
  readonly inWindow: number;
  readonly unconfirmed: number;
  readonly emitted: number;
}

export interface RunRecord {
  readonly runId: string;
  readonly appid: string;
  readonly snapshotId: string;
  readonly trigger: string;
  readonly dryRun: boolean;
  readonly status: string;
  readonly reason: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly snapshotOpenids: number;
  readonly followers: number;
  readonly missing: RuleCounts;
  readonly stale: RuleCounts;
}

export interface ReconcileStore {
  /** The newest snapshot of the account that has an `end` record, complete or not. */
  latestEndedSnapshot(appid: string): Promise<string | undefined>;
  snapshotStatus(appid: string, snapshotId: string): Promise<SnapshotStatus | undefined>;
  /** The snapshot's distinct openids, and the callback events from T0 − δ to T1 + δ (the churn seen while it ran). */
  snapshotCounts(status: SnapshotStatus, windowMarginMs: number): Promise<Pick<SnapshotFacts, 'openids' | 'windowEvents'>>;
  candidates(rule: 'missing' | 'stale', appid: string, snapshotId: string, sinceMs: number): Promise<Candidate[]>;
  /** Per account, the newest complete and loaded snapshot that no run has reconciled (or refused) yet. */
  unreconciled(): Promise<{ appid: string; snapshotId: string }[]>;
  recordRun(run: RunRecord): Promise<void>;
}

export type SnapshotStatus = Omit<SnapshotFacts, 'openids' | 'windowEvents'>;

interface StatusRow {
  complete: number | boolean;
  loaded: number | boolean;
  reason: string;
  t0: string;
  t1: string;
  total: string;
}

export function clickhouseReconcileStore(client: ClickHouseClient, db: string): ReconcileStore {
  const rows = async <T>(query: string, params: Record<string, unknown>): Promise<T[]> =>
    (await client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();

  return {
    async latestEndedSnapshot(appid) {
      const [row] = await rows<{ snapshot_id: string }>(
        `SELECT snapshot_id FROM ${db}.snapshot_status WHERE appid = {appid:String} AND has_end ORDER BY started_at DESC, snapshot_id DESC LIMIT 1`,
        { appid },
      );
      return row?.snapshot_id;
    },

    async snapshotStatus(appid, snapshotId) {
      const [row] = await rows<StatusRow>(
        `SELECT complete, loaded, reason, total, toUnixTimestamp64Milli(started_at) AS t0, toUnixTimestamp64Milli(ended_at) AS t1
        FROM ${db}.snapshot_status WHERE appid = {appid:String} AND snapshot_id = {snapshot_id:String}`,
        { appid, snapshot_id: snapshotId },
      );
      if (row === undefined) return undefined;
      return {
        appid, snapshotId, complete: Boolean(row.complete), loaded: Boolean(row.loaded), reason: row.reason,
        startedAt: Number(row.t0), endedAt: Number(row.t1), total: Number(row.total),
      };
    },

    async snapshotCounts(status, windowMarginMs) {
      // uniqExact(id) rather than count() FINAL: a redelivered event counts once without merging the month.
      const [row] = await rows<{ openids: string; window_events: string }>(
        `SELECT
          (SELECT uniqExact(openid_key) FROM ${db}.snapshot_members WHERE appid = {appid:String} AND snapshot_id = {snapshot_id:String}) AS openids,
          (SELECT uniqExact(id) FROM ${db}.user_events
            WHERE appid = {appid:String} AND source = 'callback'
              AND at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND at <= fromUnixTimestamp64Milli({to:Int64}, 'UTC')) AS window_events`,
        { appid: status.appid, snapshot_id: status.snapshotId, from: status.startedAt - windowMarginMs, to: status.endedAt + windowMarginMs },
      );
      return { openids: Number(row?.openids ?? 0), windowEvents: Number(row?.window_events ?? 0) };
    },

    async candidates(rule, appid, snapshotId, sinceMs) {
      const view = rule === 'missing' ? 'reconcile_missing' : 'reconcile_stale';
      const found = await rows<{ openid: string; in_window: number | boolean }>(
        `SELECT openid, in_window FROM ${db}.${view}(appid = {appid:String}, snapshot_id = {snapshot_id:String}, since_ms = {since_ms:Int64})`,
        { appid, snapshot_id: snapshotId, since_ms: sinceMs },
      );
      return found.map((r) => ({ openid: r.openid, inWindow: Boolean(r.in_window) }));
    },

    async unreconciled() {
      return rows<{ appid: string; snapshotId: string }>(
        `SELECT appid, snapshot_id AS snapshotId FROM (
          SELECT appid, argMax(snapshot_id, started_at) AS snapshot_id FROM ${db}.snapshot_status WHERE complete AND loaded GROUP BY appid
        ) WHERE (appid, snapshot_id) NOT IN (
          SELECT appid, snapshot_id FROM ${db}.reconcile_runs WHERE dry_run = 0 AND status IN ('done', 'refused')
        )`,
        {},
      );
    },

    async recordRun(run) {
      await client.command({
        query: `INSERT INTO ${db}.reconcile_runs
          SELECT {run_id:String}, {appid:String}, {snapshot_id:String}, {trigger:String}, {dry_run:UInt8}, {status:String}, {reason:String},
            fromUnixTimestamp64Milli({started_at:Int64}, 'UTC'), fromUnixTimestamp64Milli({finished_at:Int64}, 'UTC'),
            {snapshot_openids:UInt64}, {followers:UInt64},
            {missing:UInt64}, {missing_in_window:UInt64}, {missing_unconfirmed:UInt64}, {missing_emitted:UInt64},
            {stale:UInt64}, {stale_in_window:UInt64}, {stale_unconfirmed:UInt64}, {stale_emitted:UInt64}`,
        query_params: {
          run_id: run.runId, appid: run.appid, snapshot_id: run.snapshotId, trigger: run.trigger, dry_run: run.dryRun ? 1 : 0,
          status: run.status, reason: run.reason, started_at: run.startedAt, finished_at: run.finishedAt,
          snapshot_openids: run.snapshotOpenids, followers: run.followers,
          missing: run.missing.found, missing_in_window: run.missing.inWindow, missing_unconfirmed: run.missing.unconfirmed, missing_emitted: run.missing.emitted,
          stale: run.stale.found, stale_in_window: run.stale.inWindow, stale_unconfirmed: run.stale.unconfirmed, stale_emitted: run.stale.emitted,
        },
      });
    },
  };
}
