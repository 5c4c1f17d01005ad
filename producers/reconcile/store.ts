/**
 * What the reconcile job reads from and writes to ClickHouse: snapshot facts, the two anti-join views
 * (sql/007_reconcile.sql) and the run log. Every value is a bound parameter.
 */
import { queryRows, type ClickHouseClient } from '../../lib/clickhouse.ts';
import type { CorrectionRule } from '../../lib/contracts/user-event.ts';
import type { Candidate, SnapshotFacts } from './plan.ts';

export interface RuleCounts {
  /** Differences between the snapshot and the store. */
  readonly found: number;
  /** Of those, users with an event at or after T0 − δ: confirmed live instead (counted under `live`). */
  readonly inWindow: number;
  /** Outside the window: batchget no longer confirmed the difference. */
  readonly unconfirmed: number;
  /** Outside the window: confirmed, but the correction could not be ordered after the store's newest event. */
  readonly skipped: number;
  readonly emitted: number;
}

/** Users with an event in the window, each confirmed live (batchget at the confirmation time). */
export interface LiveCounts {
  readonly checked: number;
  /** WeChat's answer contradicted the store: corrected. */
  readonly emitted: number;
  /** It contradicted the store but could not be ordered after the store's newest event: left, counted. */
  readonly skipped: number;
}

/** How many rows of each kind a run's comparison found, before any is confirmed. */
export interface CandidateCounts {
  readonly missing: { readonly found: number; readonly inWindow: number };
  readonly stale: { readonly found: number; readonly inWindow: number };
  /** Window users the snapshot and the store agree on: confirmed live all the same. */
  readonly live: number;
}

export interface CompareRequest {
  readonly runId: string;
  readonly appid: string;
  readonly snapshotId: string;
  /** T0 − δ, epoch ms. */
  readonly sinceMs: number;
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
  readonly live: LiveCounts;
  /** Subscribe corrections at T0 because WeChat's subscribe_time was absent or outside the contract. */
  readonly fallbackTimes: number;
}

export interface ReconcileStore {
  /** The newest snapshot of the account that has an `end` record, complete or not. */
  latestEndedSnapshot(appid: string): Promise<string | undefined>;
  snapshotStatus(appid: string, snapshotId: string): Promise<SnapshotStatus | undefined>;
  /** The snapshot's distinct openids, and the callback events from T0 − δ to T1 + δ (the churn seen while it ran). */
  snapshotCounts(status: SnapshotStatus, windowMarginMs: number): Promise<Pick<SnapshotFacts, 'openids' | 'windowEvents'>>;
  /**
   * ⚑ Compares the whole snapshot with the store at once (one pass over both key sets) and keeps every
   * difference and every window user, with openids, in the run's work tables.
   */
  compare(request: CompareRequest): Promise<CandidateCounts>;
  /** The run's candidates, `pageSize` at a time: memory stays bounded whatever their count. */
  candidatePages(request: CompareRequest, pageSize: number): AsyncGenerator<Candidate[]>;
  /** Drops the run's work tables' partition. */
  forget(runId: string): Promise<void>;
  /** Per account, the newest complete and loaded snapshot that no run has reconciled (or refused) yet. */
  unreconciled(): Promise<{ appid: string; snapshotId: string }[]>;
  recordRun(run: RunRecord): Promise<void>;
}

/** What an account's newest real run (not a dry run) did. */
export interface LastRun {
  readonly appid: string;
  readonly status: string;
  /** Of the newest done run; undefined when none is done. `first`: it is the account's only done run, its import. */
  readonly done?: { readonly corrections: number; readonly snapshotOpenids: number; readonly first: boolean };
}

/** Per account, its newest real reconcile run: read at start for the reconcile gauges. */
export async function lastReconcileRuns(client: ClickHouseClient, db: string): Promise<LastRun[]> {
  const found = await (await client.query({
    query: `SELECT appid, argMax(status, finished_at) AS last_status,
      argMaxIf(missing_emitted + stale_emitted + live_emitted, finished_at, status = 'done') AS corrections,
      argMaxIf(snapshot_openids, finished_at, status = 'done') AS snapshot_openids, countIf(status = 'done') AS done_runs
    FROM ${db}.reconcile_runs WHERE dry_run = 0 AND status IN ('done', 'refused', 'failed') GROUP BY appid`,
    format: 'JSONEachRow',
  })).json<{ appid: string; last_status: string; corrections: string; snapshot_openids: string; done_runs: string }>();
  return found.map((r) => ({
    appid: r.appid, status: r.last_status,
    ...(Number(r.done_runs) > 0 ? { done: { corrections: Number(r.corrections), snapshotOpenids: Number(r.snapshot_openids), first: Number(r.done_runs) === 1 } } : {}),
  }));
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
  const rows = <T>(query: string, params: Record<string, unknown>): Promise<T[]> => queryRows<T>(client, query, params);

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
      // Distinct openids by reading the keys in their stored order with LIMIT 1 BY: about half the time of
      // uniqExact's hash set at 10M. Events by uniqExact(id) rather than count() FINAL: a redelivered event
      // counts once without merging the table.
      const [row] = await rows<{ openids: string; window_events: string }>(
        `SELECT
          (SELECT count() FROM (
            SELECT openid_key FROM ${db}.snapshot_keys(appid = {appid:String}, snapshot_id = {snapshot_id:String}) ORDER BY openid_key LIMIT 1 BY openid_key
          )) AS openids,
          (SELECT uniqExact(id) FROM ${db}.user_events
            WHERE appid = {appid:String} AND source = 'callback'
              AND at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND at <= fromUnixTimestamp64Milli({to:Int64}, 'UTC')) AS window_events`,
        { appid: status.appid, snapshot_id: status.snapshotId, from: status.startedAt - windowMarginMs, to: status.endedAt + windowMarginMs },
      );
      return { openids: Number(row?.openids ?? 0), windowEvents: Number(row?.window_events ?? 0) };
    },

    async compare({ runId, appid, snapshotId, sinceMs }) {
      const params = { run_id: runId, appid, snapshot_id: snapshotId, since_ms: sinceMs };
      const windowKeys = `SELECT openid_key FROM ${db}.window_keys(appid = {appid:String}, since_ms = {since_ms:Int64})`;
      await client.command({
        query: `INSERT INTO ${db}.reconcile_keys (run_id, rule, openid_key, in_window)
          SELECT {run_id:String}, rule, openid_key, openid_key IN (${windowKeys})
          FROM ${db}.reconcile_diff(appid = {appid:String}, snapshot_id = {snapshot_id:String})`,
        query_params: params,
      });
      await client.command({
        query: `INSERT INTO ${db}.reconcile_keys (run_id, rule, openid_key, in_window)
          SELECT {run_id:String}, 'live', openid_key, 1 FROM (${windowKeys})
          WHERE openid_key NOT IN (SELECT openid_key FROM ${db}.reconcile_keys WHERE run_id = {run_id:String})`,
        query_params: params,
      });
      await client.command({
        query: `INSERT INTO ${db}.reconcile_candidates (run_id, seq, rule, openid, in_window, store_ord)
          SELECT {run_id:String}, rowNumberInAllBlocks(), rule, openid, in_window, store_ord
          FROM ${db}.reconcile_openids(appid = {appid:String}, snapshot_id = {snapshot_id:String}, run_id = {run_id:String})`,
        query_params: params,
      });
      const counted = await rows<{ rule: CorrectionRule; in_window: number; n: string }>(
        `SELECT rule, in_window, count() AS n FROM ${db}.reconcile_candidates WHERE run_id = {run_id:String} GROUP BY rule, in_window`,
        params,
      );
      const count = (rule: CorrectionRule, inWindow?: boolean): number => counted
        .filter((r) => r.rule === rule && (inWindow === undefined || Boolean(r.in_window) === inWindow))
        .reduce((sum, r) => sum + Number(r.n), 0);
      return {
        missing: { found: count('missing'), inWindow: count('missing', true) },
        stale: { found: count('stale'), inWindow: count('stale', true) },
        live: count('live'),
      };
    },

    async *candidatePages({ runId }, pageSize) {
      for (let from = 0; ; from += pageSize) {
        const page = await rows<{ rule: CorrectionRule; openid: string; in_window: number; store_ord: string }>(
          `SELECT rule, openid, in_window, store_ord FROM ${db}.reconcile_candidates
          WHERE run_id = {run_id:String} AND seq >= {from:UInt64} AND seq < {to:UInt64} ORDER BY seq`,
          { run_id: runId, from, to: from + pageSize },
        );
        if (page.length === 0) return;
        yield page.map((r) => ({ rule: r.rule, openid: r.openid, inWindow: Boolean(r.in_window), storeOrd: BigInt(r.store_ord) }));
        if (page.length < pageSize) return;
      }
    },

    async forget(runId) {
      for (const table of ['reconcile_keys', 'reconcile_candidates']) {
        await client.command({ query: `ALTER TABLE ${db}.${table} DROP PARTITION {run_id:String}`, query_params: { run_id: runId } });
      }
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
        query: `INSERT INTO ${db}.reconcile_runs (run_id, appid, snapshot_id, trigger, dry_run, status, reason, started_at, finished_at,
            snapshot_openids, followers, missing, missing_in_window, missing_unconfirmed, missing_emitted,
            stale, stale_in_window, stale_unconfirmed, stale_emitted, live_checked, live_emitted, live_skipped, fallback_times,
            missing_skipped, stale_skipped)
          SELECT {run_id:String}, {appid:String}, {snapshot_id:String}, {trigger:String}, {dry_run:UInt8}, {status:String}, {reason:String},
            fromUnixTimestamp64Milli({started_at:Int64}, 'UTC'), fromUnixTimestamp64Milli({finished_at:Int64}, 'UTC'),
            {snapshot_openids:UInt64}, {followers:UInt64},
            {missing:UInt64}, {missing_in_window:UInt64}, {missing_unconfirmed:UInt64}, {missing_emitted:UInt64},
            {stale:UInt64}, {stale_in_window:UInt64}, {stale_unconfirmed:UInt64}, {stale_emitted:UInt64},
            {live_checked:UInt64}, {live_emitted:UInt64}, {live_skipped:UInt64}, {fallback_times:UInt64},
            {missing_skipped:UInt64}, {stale_skipped:UInt64}`,
        query_params: {
          run_id: run.runId, appid: run.appid, snapshot_id: run.snapshotId, trigger: run.trigger, dry_run: run.dryRun ? 1 : 0,
          status: run.status, reason: run.reason, started_at: run.startedAt, finished_at: run.finishedAt,
          snapshot_openids: run.snapshotOpenids, followers: run.followers,
          missing: run.missing.found, missing_in_window: run.missing.inWindow, missing_unconfirmed: run.missing.unconfirmed, missing_emitted: run.missing.emitted,
          stale: run.stale.found, stale_in_window: run.stale.inWindow, stale_unconfirmed: run.stale.unconfirmed, stale_emitted: run.stale.emitted,
          live_checked: run.live.checked, live_emitted: run.live.emitted, live_skipped: run.live.skipped, fallback_times: run.fallbackTimes,
          missing_skipped: run.missing.skipped, stale_skipped: run.stale.skipped,
        },
      });
    },
  };
}
