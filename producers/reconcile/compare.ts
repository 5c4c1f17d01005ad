/**
 * Snapshot history in ClickHouse: the comparison of two kept snapshots (sql/013: one key-only pass over both, then
 * lookups over the differences alone), the record of a comparison after each reconcile, retention of snapshot
 * members, and the listing of an account's snapshots. The CLI (directly or through the admin API) and the reconcile
 * role call the same functions with their ClickHouse client. Every value is a bound parameter.
 */
import { randomUUID } from 'node:crypto';
import { queryRows, type ClickHouseClient } from '../../lib/clickhouse.ts';
import type { Config } from '../../lib/config.ts';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import {
  choosePair, explanationWindow, pairKey, pairsToRecord, snapshotState, snapshotsToDrop, summarize,
  type DetailCount, type PairRequest, type Side, type SnapshotEntry, type SnapshotPair, type SnapshotState, type Summary, type Window,
} from './compare-plan.ts';

export interface HistorySettings {
  /** Complete snapshots per account whose members are kept (WXSYNC_SNAPSHOT_KEEP). */
  readonly keep: number;
  /** δ, the reconcile's window margin: widens the explanation window on both sides. */
  readonly windowMarginMs: number;
}

export interface SnapshotRef {
  readonly snapshotId: string;
  readonly startedAt: string;
  readonly endedAt: string;
  /** WeChat's follower count, as the snapshot's last page reported it. */
  readonly total: number;
  /** Openids the snapshot producer published. */
  readonly openids: number;
}

export interface ComparisonReport extends Summary {
  readonly appid: string;
  readonly from: SnapshotRef;
  readonly to: SnapshotRef;
  /** Callbacks with `at` inside it explain a difference. */
  readonly window: { readonly from: string; readonly to: string };
  readonly durationMs: number;
}

export interface DifferenceRow {
  readonly openid: string;
  readonly side: Side;
  readonly explained: boolean;
  readonly scene: string;
  readonly campaign: string;
}

export interface DifferenceList {
  readonly pair: SnapshotPair;
  /**
   * The rows in openid order, a chunk at a time as ClickHouse sends them (never the whole list in memory). Ends
   * with an error, after the rows, if a snapshot was dropped while it was read.
   */
  readonly rows: AsyncGenerator<DifferenceRow[]>;
}

export interface ReconcileResult {
  /** The newest run that was not a dry run: done, refused or failed. */
  readonly status: string;
  readonly reason: string;
  /** Corrections it emitted (missing, stale and live). */
  readonly corrections: number;
  readonly finishedAt: string;
  /** Runs against the snapshot, dry runs aside. */
  readonly runs: number;
}

export interface RecordedComparison {
  readonly fromSnapshotId: string;
  readonly added: number;
  readonly addedUnexplained: number;
  readonly removed: number;
  readonly removedUnexplained: number;
  readonly unexplainedShare: number | null;
  readonly computedAt: string;
}

export interface ListedSnapshot {
  readonly snapshotId: string;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  readonly total: number;
  readonly openids: number;
  readonly state: SnapshotState;
  /** Why it ended incomplete. */
  readonly reason: string;
  /** Whether its members are in the store; its metadata always is. */
  readonly data: 'kept' | 'dropped';
  readonly droppedAt: string | null;
  readonly reconcile: ReconcileResult | null;
  /** The recorded comparison with the complete snapshot before it. */
  readonly comparison: RecordedComparison | null;
}

export interface SnapshotListing {
  readonly appid: string;
  readonly keep: number;
  /** Oldest first. */
  readonly snapshots: readonly ListedSnapshot[];
}

export interface SnapshotHistory {
  list(appid: string): Promise<SnapshotListing>;
  compare(appid: string, request: PairRequest): Promise<ComparisonReport>;
  /** Resolves the pair at once (a bad request throws here); the rows are read as `rows` is iterated. */
  differences(appid: string, request: PairRequest, side: Side): Promise<DifferenceList>;
  /** Records the comparisons missing up to the snapshot just reconciled, then drops what retention allows. */
  afterReconcile(appid: string, snapshotId: string): Promise<void>;
}

/**
 * Snapshots that a comparison of this process is reading, per store (one ClickHouse client per process and store):
 * retention leaves them alone. Another process sharing a ClickHouse server cannot see these; a comparison then finds
 * a snapshot dropped under it by its mark (see assertKept), never reports it as complete.
 */
const readers = new WeakMap<ClickHouseClient, Map<string, number>>();

function readersOf(client: ClickHouseClient): Map<string, number> {
  let map = readers.get(client);
  if (map === undefined) {
    map = new Map();
    readers.set(client, map);
  }
  return map;
}

const readerKey = (appid: string, snapshotId: string): string => `${appid}\n${snapshotId}`;
const iso = (ms: number): string => new Date(ms).toISOString();

interface EntryRow {
  snapshot_id: string;
  t0: string;
  t1: string;
  has_end: number | boolean;
  complete: number | boolean;
  loaded: number | boolean;
  reason: string;
  total: string;
  openids: string;
  dropped: string;
}

export function snapshotHistory(client: ClickHouseClient, db: string, settings: HistorySettings, logger: Logger, now: () => number = Date.now): SnapshotHistory {
  const rows = <T>(query: string, params: Record<string, unknown>): Promise<T[]> => queryRows<T>(client, query, params);
  const inUse = readersOf(client);

  /** The account's snapshots in start order, each with the time retention dropped it, if it did. */
  const entriesOf = async (appid: string): Promise<SnapshotEntry[]> => {
    const found = await rows<EntryRow>(
      `SELECT s.snapshot_id AS snapshot_id, toUnixTimestamp64Milli(s.started_at) AS t0, toUnixTimestamp64Milli(s.ended_at) AS t1,
          s.has_end AS has_end, s.complete AS complete, s.loaded AS loaded, s.reason AS reason, s.total AS total, s.openids AS openids,
          toUnixTimestamp64Milli(d.dropped_at) AS dropped
        FROM ${db}.snapshot_status AS s
        LEFT JOIN (
          SELECT snapshot_id, min(dropped_at) AS dropped_at FROM ${db}.snapshot_drops WHERE appid = {appid:String} GROUP BY snapshot_id
        ) AS d ON s.snapshot_id = d.snapshot_id
        WHERE s.appid = {appid:String}
        ORDER BY s.started_at, s.snapshot_id
        SETTINGS join_use_nulls = 0`,
      { appid },
    );
    return found.map((r) => ({
      snapshotId: r.snapshot_id, startedAt: Number(r.t0), endedAt: Number(r.t1), ended: Boolean(r.has_end), complete: Boolean(r.complete),
      loaded: Boolean(r.loaded), reason: r.reason, total: Number(r.total), openids: Number(r.openids),
      ...(Number(r.dropped) > 0 ? { droppedAt: Number(r.dropped) } : {}),
    }));
  };

  const pin = (appid: string, ids: readonly string[]): (() => void) => {
    for (const id of ids) inUse.set(readerKey(appid, id), (inUse.get(readerKey(appid, id)) ?? 0) + 1);
    return () => {
      for (const id of ids) {
        const left = (inUse.get(readerKey(appid, id)) ?? 1) - 1;
        if (left === 0) inUse.delete(readerKey(appid, id));
        else inUse.set(readerKey(appid, id), left);
      }
    };
  };

  /** ⚑ Retention marks a snapshot before it drops its members: a mark found after reading means the read may be partial. */
  const assertKept = async (appid: string, pair: SnapshotPair): Promise<void> => {
    const dropped = await rows<{ snapshot_id: string }>(
      `SELECT DISTINCT snapshot_id FROM ${db}.snapshot_drops WHERE appid = {appid:String} AND snapshot_id IN ({from:String}, {to:String})`,
      { appid, from: pair.from.snapshotId, to: pair.to.snapshotId },
    );
    if (dropped.length > 0) {
      throw new WxsyncError(ErrorCode.SnapshotUnavailable, `snapshot ${dropped.map((d) => d.snapshot_id).join(' and ')} of ${appid} was dropped by retention while it was compared; the comparison is void`);
    }
  };

  /** Writes the pair's differing keys into a work partition, runs `work` over it, checks the pair was kept throughout, drops the partition. */
  async function* withDifferences<T>(appid: string, pair: SnapshotPair, work: (runId: string) => AsyncGenerator<T>): AsyncGenerator<T> {
    const runId = randomUUID();
    const release = pin(appid, [pair.from.snapshotId, pair.to.snapshotId]);
    try {
      await client.command({
        query: `INSERT INTO ${db}.snapshot_compare_keys (run_id, side, openid_key)
          SELECT {run_id:String}, side, openid_key FROM ${db}.snapshot_diff(appid = {appid:String}, from_id = {from_id:String}, to_id = {to_id:String})`,
        query_params: { run_id: runId, appid, from_id: pair.from.snapshotId, to_id: pair.to.snapshotId },
      });
      yield* work(runId);
      await assertKept(appid, pair);
    } finally {
      release();
      await client.command({ query: `ALTER TABLE ${db}.snapshot_compare_keys DROP PARTITION {run_id:String}`, query_params: { run_id: runId } })
        .catch((error: unknown) => { logger.warn({ err: error, runId }, 'cannot drop a comparison\'s work partition (its TTL will)'); });
    }
  }

  const windowParams = (appid: string, runId: string, window: Window): Record<string, unknown> =>
    ({ appid, run_id: runId, window_from_ms: window.fromMs, window_to_ms: window.toMs });

  async function* detailCounts(appid: string, runId: string, window: Window): AsyncGenerator<DetailCount[]> {
    const found = await rows<{ side: Side; explained: number; scene: string; campaign: string; n: string }>(
      `SELECT side, explained, scene, campaign, count() AS n
        FROM ${db}.snapshot_compare_details(appid = {appid:String}, run_id = {run_id:String}, window_from_ms = {window_from_ms:Int64}, window_to_ms = {window_to_ms:Int64})
        GROUP BY side, explained, scene, campaign`,
      windowParams(appid, runId, window),
    );
    yield found.map((r) => ({ side: r.side, explained: Boolean(r.explained), scene: r.scene, campaign: r.campaign, count: Number(r.n) }));
  }

  const ref = (s: SnapshotEntry): SnapshotRef => ({ snapshotId: s.snapshotId, startedAt: iso(s.startedAt), endedAt: iso(s.endedAt), total: s.total, openids: s.openids });

  const comparePair = async (appid: string, pair: SnapshotPair): Promise<ComparisonReport> => {
    const started = now();
    const window = explanationWindow(pair, settings.windowMarginMs);
    const counts: DetailCount[] = [];
    for await (const chunk of withDifferences(appid, pair, (runId) => detailCounts(appid, runId, window))) counts.push(...chunk);
    return {
      appid, from: ref(pair.from), to: ref(pair.to), window: { from: iso(window.fromMs), to: iso(window.toMs) },
      ...summarize(counts), durationMs: now() - started,
    };
  };

  const record = async (appid: string, pair: SnapshotPair): Promise<void> => {
    const report = await comparePair(appid, pair);
    const groups = (prefix: string, list: Summary['byScene']): Record<string, unknown> => ({
      [`${prefix}_keys`]: list.map((g) => g.key),
      [`${prefix}_added`]: list.map((g) => g.added),
      [`${prefix}_added_unexplained`]: list.map((g) => g.addedUnexplained),
      [`${prefix}_removed`]: list.map((g) => g.removed),
      [`${prefix}_removed_unexplained`]: list.map((g) => g.removedUnexplained),
    });
    const zipped = (prefix: string): string =>
      `arrayZip({${prefix}_keys:Array(String)}, {${prefix}_added:Array(UInt64)}, {${prefix}_added_unexplained:Array(UInt64)}, {${prefix}_removed:Array(UInt64)}, {${prefix}_removed_unexplained:Array(UInt64)})`;
    const window = explanationWindow(pair, settings.windowMarginMs);
    await client.command({
      query: `INSERT INTO ${db}.snapshot_comparisons (appid, from_snapshot_id, to_snapshot_id, from_started_at, to_ended_at, window_from, window_to,
          added, added_unexplained, removed, removed_unexplained, by_scene, by_campaign, computed_at, duration_ms)
        SELECT {appid:String}, {from_id:String}, {to_id:String}, fromUnixTimestamp64Milli({from_started:Int64}, 'UTC'), fromUnixTimestamp64Milli({to_ended:Int64}, 'UTC'),
          fromUnixTimestamp64Milli({window_from:Int64}, 'UTC'), fromUnixTimestamp64Milli({window_to:Int64}, 'UTC'),
          {added:UInt64}, {added_unexplained:UInt64}, {removed:UInt64}, {removed_unexplained:UInt64}, ${zipped('scene')}, ${zipped('campaign')},
          fromUnixTimestamp64Milli({computed:Int64}, 'UTC'), {duration:UInt64}`,
      query_params: {
        appid, from_id: pair.from.snapshotId, to_id: pair.to.snapshotId, from_started: pair.from.startedAt, to_ended: pair.to.endedAt,
        window_from: window.fromMs, window_to: window.toMs,
        added: report.added.total, added_unexplained: report.added.unexplained, removed: report.removed.total, removed_unexplained: report.removed.unexplained,
        ...groups('scene', report.byScene), ...groups('campaign', report.byCampaign), computed: now(), duration: report.durationMs,
      },
    });
    logger.info({
      appid, from: pair.from.snapshotId, to: pair.to.snapshotId, added: report.added.total, removed: report.removed.total,
      unexplained: report.added.unexplained + report.removed.unexplained, durationMs: report.durationMs,
    }, 'snapshot comparison recorded');
  };

  interface RecordedRow {
    from_snapshot_id: string;
    to_snapshot_id: string;
    added: string;
    added_unexplained: string;
    removed: string;
    removed_unexplained: string;
    computed: string;
  }
  const recordedOf = (appid: string): Promise<RecordedRow[]> => rows<RecordedRow>(
    `SELECT from_snapshot_id, to_snapshot_id, added, added_unexplained, removed, removed_unexplained, toUnixTimestamp64Milli(computed_at) AS computed
      FROM ${db}.snapshot_comparisons FINAL WHERE appid = {appid:String} ORDER BY computed_at`,
    { appid },
  );

  const prune = async (appid: string): Promise<void> => {
    const entries = await entriesOf(appid);
    const held = new Set((await rows<{ snapshot_id: string }>(
      `SELECT snapshot_id FROM ${db}.snapshot_status WHERE appid = {appid:String}
        AND partitionId(appid, snapshot_id) IN (
          SELECT partition_id FROM system.parts WHERE database = {db:String} AND table = 'snapshot_members' AND active
        )`,
      { appid, db },
    )).map((r) => r.snapshot_id));
    const reading = new Set(entries.map((e) => e.snapshotId).filter((id) => inUse.has(readerKey(appid, id))));
    for (const s of snapshotsToDrop(entries.map((e) => ({ ...e, hasMembers: held.has(e.snapshotId) })), settings.keep, reading)) {
      // A comparison that began since the list was read keeps its snapshot until the next reconcile.
      if (inUse.has(readerKey(appid, s.snapshotId))) continue;
      const params = { appid, snapshot_id: s.snapshotId };
      if (s.droppedAt === undefined) {
        await client.command({ query: `INSERT INTO ${db}.snapshot_drops (appid, snapshot_id, dropped_at) SELECT {appid:String}, {snapshot_id:String}, now64(3)`, query_params: params });
      }
      await client.command({ query: `ALTER TABLE ${db}.snapshot_members DROP PARTITION ({appid:String}, {snapshot_id:String})`, query_params: params });
      logger.info({ appid, snapshotId: s.snapshotId, state: snapshotState(s), keep: settings.keep }, 'snapshot members dropped by retention');
    }
  };

  return {
    async list(appid) {
      const [entries, runs, recorded] = await Promise.all([
        entriesOf(appid),
        rows<{ snapshot_id: string; status: string; reason: string; corrections: string; finished: string; runs: string }>(
          `SELECT snapshot_id, argMax(status, started_at) AS status, argMax(reason, started_at) AS reason,
              argMax(missing_emitted + stale_emitted + live_emitted, started_at) AS corrections,
              toUnixTimestamp64Milli(argMax(finished_at, started_at)) AS finished, count() AS runs
            FROM ${db}.reconcile_runs WHERE appid = {appid:String} AND dry_run = 0 GROUP BY snapshot_id`,
          { appid },
        ),
        recordedOf(appid),
      ]);
      const runOf = new Map(runs.map((r) => [r.snapshot_id, r]));
      // Oldest computed first, so the newest recorded comparison of each snapshot wins.
      const comparisonOf = new Map(recorded.map((r) => [r.to_snapshot_id, r]));
      return {
        appid,
        keep: settings.keep,
        snapshots: entries.map((s): ListedSnapshot => {
          const run = runOf.get(s.snapshotId);
          const c = comparisonOf.get(s.snapshotId);
          const differences = c === undefined ? 0 : Number(c.added) + Number(c.removed);
          return {
            snapshotId: s.snapshotId,
            startedAt: s.startedAt > 0 ? iso(s.startedAt) : null,
            endedAt: s.ended ? iso(s.endedAt) : null,
            total: s.total,
            openids: s.openids,
            state: snapshotState(s),
            reason: s.reason,
            data: s.droppedAt === undefined ? 'kept' : 'dropped',
            droppedAt: s.droppedAt === undefined ? null : iso(s.droppedAt),
            reconcile: run === undefined ? null : {
              status: run.status, reason: run.reason, corrections: Number(run.corrections), finishedAt: iso(Number(run.finished)), runs: Number(run.runs),
            },
            comparison: c === undefined ? null : {
              fromSnapshotId: c.from_snapshot_id, added: Number(c.added), addedUnexplained: Number(c.added_unexplained),
              removed: Number(c.removed), removedUnexplained: Number(c.removed_unexplained),
              unexplainedShare: differences === 0 ? null : (Number(c.added_unexplained) + Number(c.removed_unexplained)) / differences,
              computedAt: iso(Number(c.computed)),
            },
          };
        }),
      };
    },

    async compare(appid, request) {
      return comparePair(appid, choosePair(appid, await entriesOf(appid), request, settings.keep));
    },

    async differences(appid, request, side) {
      const pair = choosePair(appid, await entriesOf(appid), request, settings.keep);
      const window = explanationWindow(pair, settings.windowMarginMs);
      const list = async function* (runId: string): AsyncGenerator<DifferenceRow[]> {
        const result = await client.query({
          query: `SELECT openid, side, explained, scene, campaign
            FROM ${db}.snapshot_compare_list(appid = {appid:String}, run_id = {run_id:String}, window_from_ms = {window_from_ms:Int64},
              window_to_ms = {window_to_ms:Int64}, side = {side:String}, snapshot_id = {snapshot_id:String})
            ORDER BY openid`,
          query_params: { ...windowParams(appid, runId, window), side, snapshot_id: side === 'added' ? pair.to.snapshotId : pair.from.snapshotId },
          format: 'JSONEachRow',
        });
        for await (const chunk of result.stream<{ openid: string; side: Side; explained: number; scene: string; campaign: string }>()) {
          yield chunk.map((row) => {
            const r = row.json();
            return { openid: r.openid, side: r.side, explained: Boolean(r.explained), scene: r.scene, campaign: r.campaign };
          });
        }
      };
      return { pair, rows: withDifferences(appid, pair, list) };
    },

    async afterReconcile(appid, snapshotId) {
      const [entries, recorded] = await Promise.all([entriesOf(appid), recordedOf(appid)]);
      const done = new Set(recorded.map((r) => pairKey(r.from_snapshot_id, r.to_snapshot_id)));
      for (const pair of pairsToRecord(entries, snapshotId, done)) await record(appid, pair);
      await prune(appid);
    },
  };
}

/** The history of the store `client` reaches, with the settings of the config: what the roles and the CLI use. */
export function historyFor(config: Config, client: ClickHouseClient, logger: Logger): SnapshotHistory {
  return snapshotHistory(client, config.clickhouse.database, { keep: config.snapshot.keep, windowMarginMs: config.reconcile.windowMarginMs }, logger.child({ component: 'snapshot-history' }));
}
