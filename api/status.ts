/**
 * `GET /api/status`: the pipeline's health in one small answer, what the dashboard polls every few seconds.
 * - consumer lag: per topic the consumer reads, the records published but not yet committed by its group (it
 *   commits only after ClickHouse took the rows), from the broker; null while the broker does not answer;
 * - the consumer's stall and the callback spool, from this process's metrics (null without that role here);
 * - per account, from the store: the last snapshot (age, result), the last reconcile run (status, corrections by
 *   rule) and the last recorded comparison of two snapshots; the drift sentinel's last check (sentinel_checks);
 * - the alerts this process has firing (null without the alerts role here);
 * - `version`, which changes whenever a figure the dashboard charts can have changed (a rollup refresh, a
 *   snapshot, a reconcile, a comparison): the page re-reads its reports only then. The consumer refreshes the
 *   rollups after its writes (reports/refresh.ts), so while data flows the version moves with it.
 */
import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import type { Config } from '../lib/config.ts';
import { errorAnswer, sendJson, type Routes } from '../lib/http-server.ts';
import type { KafkaGateway } from '../lib/kafka.ts';
import type { Logger } from '../lib/logger.ts';
import type { Registry } from '../lib/metrics.ts';
import type { ListedSnapshot, RecordedComparison, SnapshotHistory, SnapshotListing } from '../producers/reconcile/compare.ts';
import type { SnapshotState } from '../producers/reconcile/compare-plan.ts';
import { clickhouseSentinelStore, type SentinelRow, type SentinelStore } from '../producers/snapshot/sentinel-store.ts';
import { rollupsAsOf } from '../reports/refresh.ts';
import { getQuery } from './get.ts';
import { reconcileRuns, type ReconcileRun } from './reconciles.ts';

/** A broker that does not answer within this leaves the lag unknown rather than holding the answer. */
const KAFKA_TIMEOUT_MS = 3000;

export interface LastSnapshot {
  readonly snapshotId: string;
  readonly state: SnapshotState;
  /** Why it ended incomplete; '' otherwise. */
  readonly reason: string;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  /** Seconds since it ended (since it started, while it runs). */
  readonly ageSeconds: number | null;
  readonly total: number;
  readonly openids: number;
}

/** The account's newest reconcile run (reconciles.ts), and how long ago it finished. */
export type LastReconcile = ReconcileRun & { readonly ageSeconds: number };

/** The drift sentinel's newest check of an account, and what came of the snapshot it started, once reported. */
export interface SentinelHealth {
  readonly checkedAt: string;
  readonly result: 'equal' | 'drift' | 'failed';
  readonly wechatTotal: number;
  readonly storeCount: number;
  readonly inFlight: number;
  readonly drift: number;
  readonly action: string;
  readonly ageSeconds: number;
  /** The newest outcome the sentinel recorded after this check (e.g. 'reconciled: 3 corrections; store = WeChat'); null while none. */
  readonly outcome: string | null;
}

export interface AccountHealth {
  readonly appid: string;
  readonly lastSnapshot: LastSnapshot | null;
  readonly lastReconcile: LastReconcile | null;
  readonly lastComparison: (RecordedComparison & { readonly snapshotId: string }) | null;
  readonly sentinel: SentinelHealth | null;
}

export interface FiringAlert {
  readonly kind: string;
  /** '' for a process-wide alert. */
  readonly appid: string;
}

export interface StatusAnswer {
  readonly now: string;
  readonly version: string;
  readonly rollups: { readonly asOf: string | null };
  readonly kafkaReachable: boolean;
  readonly consumer: {
    readonly group: string;
    /** Records not yet loaded, all topics together; null while the broker does not answer. */
    readonly lag: number | null;
    readonly lagByTopic: { readonly events: number; readonly snapshots: number; readonly profiles: number } | null;
    readonly stalled: boolean | null;
    readonly secondsSinceWrite: number | null;
  };
  readonly spool: { readonly depth: number | null; readonly bytes: number | null };
  readonly accounts: readonly AccountHealth[];
  /** The alerts firing in this process; null when the alerts role does not run here. */
  readonly alerts: readonly FiringAlert[] | null;
}

/** Records of a topic the group has not committed: per partition the end offset minus the committed one (none: all). */
export function consumerLag(ends: ReadonlyMap<number, string>, committed: ReadonlyMap<number, string>): number {
  let lag = 0n;
  for (const [partition, end] of ends) {
    const done = BigInt(committed.get(partition) ?? '-1');
    const behind = BigInt(end) - (done < 0n ? 0n : done);
    if (behind > 0n) lag += behind;
  }
  return Number(lag);
}

const secondsSince = (iso: string | null, nowMs: number): number | null => (iso === null ? null : Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000)));

/**
 * Enough of the sentinel's newest rows to hold its last check: a check that starts a snapshot is followed by at most
 * one outcome row, so the newest check is among the newest two, and a few more cover outcomes that came late.
 */
const SENTINEL_ROWS = 10;

/** The newest check (equal, drift or failed) of the sentinel's newest rows (newest first), and a later outcome. */
export function sentinelHealth(rows: readonly SentinelRow[], nowMs: number): SentinelHealth | null {
  const at = rows.findIndex((r) => r.result !== 'outcome');
  const check = rows[at];
  if (check === undefined || check.result === 'outcome') return null;
  const later = rows.slice(0, at).find((r) => r.result === 'outcome' && r.checkedAt > check.checkedAt);
  return {
    checkedAt: new Date(check.checkedAt).toISOString(), result: check.result, wechatTotal: check.wechatTotal, storeCount: check.storeCount,
    inFlight: check.inFlight, drift: check.drift, action: check.action, ageSeconds: Math.max(0, Math.round((nowMs - check.checkedAt) / 1000)),
    outcome: later?.outcome ?? null,
  };
}

/** The newest snapshot and recorded comparison of an account's listing (oldest first), its newest reconcile run and sentinel check. */
export function accountHealth(listing: SnapshotListing, lastRun: ReconcileRun | undefined, sentinelRows: readonly SentinelRow[], nowMs: number): AccountHealth {
  const last = listing.snapshots.at(-1);
  const compared = listing.snapshots.filter((s): s is ListedSnapshot & { comparison: RecordedComparison } => s.comparison !== null).at(-1);
  return {
    appid: listing.appid,
    lastSnapshot: last === undefined ? null : {
      snapshotId: last.snapshotId, state: last.state, reason: last.reason, startedAt: last.startedAt, endedAt: last.endedAt,
      ageSeconds: secondsSince(last.endedAt ?? last.startedAt, nowMs), total: last.total, openids: last.openids,
    },
    lastReconcile: lastRun === undefined ? null : { ...lastRun, ageSeconds: secondsSince(lastRun.finishedAt, nowMs) ?? 0 },
    lastComparison: compared === undefined ? null : { snapshotId: compared.snapshotId, ...compared.comparison },
    sentinel: sentinelHealth(sentinelRows, nowMs),
  };
}

/**
 * Changes whenever a figure the dashboard reads from reports or snapshot history can have changed; nothing else.
 * The sentinel's checks and the alerts are not in it: the page draws them from every answer, re-reading no report.
 */
export function statusVersion(asOf: string | null, accounts: readonly AccountHealth[]): string {
  const parts = accounts.map((a) => [a.appid, a.lastSnapshot?.snapshotId, a.lastSnapshot?.state, a.lastReconcile?.runId, a.lastComparison?.computedAt].join(' '));
  return createHash('sha256').update([asOf, ...parts].join('\n')).digest('base64url').slice(0, 16);
}

async function gauge(registry: Registry, name: string): Promise<number | null> {
  return (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? null;
}

/** The `wxsync_alerts_firing` series at 1, by kind then account; null when the alerts role did not register the gauge here. */
export async function firingAlerts(registry: Registry): Promise<FiringAlert[] | null> {
  const metric = registry.getSingleMetric('wxsync_alerts_firing');
  if (metric === undefined) return null;
  return (await metric.get()).values.filter((v) => v.value === 1)
    .map((v) => ({ kind: String(v.labels['kind'] ?? ''), appid: String(v.labels['appid'] ?? '') }))
    .sort((a, b) => a.kind.localeCompare(b.kind) || a.appid.localeCompare(b.appid));
}

function within<T>(ms: number, work: Promise<T>): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => { timer = setTimeout(() => { resolve(null); }, ms); });
  return Promise.race([work.catch(() => null), timeout]).finally(() => { clearTimeout(timer); });
}

export interface StatusDeps {
  readonly config: Config;
  readonly clickhouse: ClickHouseClient;
  readonly kafka: Pick<KafkaGateway, 'reachable' | 'endOffsets' | 'committedOffsets'>;
  readonly registry: Registry;
  readonly history: Pick<SnapshotHistory, 'list'>;
  /** The sentinel's records; by default read from `clickhouse`. */
  readonly sentinel?: Pick<SentinelStore, 'recent'>;
  readonly logger: Logger;
  readonly now?: () => number;
}

export async function pipelineStatus(deps: StatusDeps): Promise<StatusAnswer> {
  const { config, kafka, registry } = deps;
  const { topics } = config.kafka;
  const group = config.consumer.groupId;
  const lagOf = async (topic: string): Promise<number> => consumerLag(await kafka.endOffsets(topic), await kafka.committedOffsets(group, topic));
  const kafkaReachable = await kafka.reachable();
  const sentinel = deps.sentinel ?? clickhouseSentinelStore(deps.clickhouse, config.clickhouse.database);
  const [lagByTopic, listings, asOf, stalled, secondsSinceWrite, depth, bytes, alerts] = await Promise.all([
    kafkaReachable
      ? within(KAFKA_TIMEOUT_MS, (async () => ({ events: await lagOf(topics.userEvents), snapshots: await lagOf(topics.snapshots), profiles: await lagOf(topics.userProfiles) }))())
      : null,
    Promise.all(config.accounts.map(async (a) => ({
      listing: await deps.history.list(a.appid),
      lastRun: (await reconcileRuns(deps.clickhouse, config.clickhouse.database, [a.appid], 1)).runs[0],
      sentinelRows: await sentinel.recent(a.appid, SENTINEL_ROWS),
    }))),
    rollupsAsOf(deps.clickhouse, config.clickhouse.database),
    gauge(registry, 'wxsync_consumer_stalled'),
    gauge(registry, 'wxsync_consumer_seconds_since_write'),
    gauge(registry, 'wxsync_callback_spool_depth'),
    gauge(registry, 'wxsync_callback_spool_bytes'),
    firingAlerts(registry),
  ]);
  const nowMs = (deps.now ?? Date.now)();
  const accounts = listings.map(({ listing, lastRun, sentinelRows }) => accountHealth(listing, lastRun, sentinelRows, nowMs));
  return {
    now: new Date(nowMs).toISOString(),
    version: statusVersion(asOf, accounts),
    rollups: { asOf },
    kafkaReachable,
    consumer: {
      group,
      lag: lagByTopic === null ? null : lagByTopic.events + lagByTopic.snapshots + lagByTopic.profiles,
      lagByTopic,
      stalled: stalled === null ? null : stalled === 1,
      secondsSinceWrite,
    },
    spool: { depth, bytes },
    accounts,
    alerts,
  };
}

/** `GET /api/status`. */
export function statusRoutes(deps: StatusDeps): Routes {
  return [['/api/status', async (req, res) => {
    if (getQuery(req, res, '/api/status') === undefined) return;
    try {
      sendJson(res, 200, await pipelineStatus(deps));
    } catch (error) {
      deps.logger.error({ err: error }, 'status request failed');
      sendJson(res, 500, errorAnswer(error));
    }
  }]];
}
