import type http from 'node:http';
import type { Config } from '../../lib/config.ts';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';
import { errorAnswer, postedAccount, type RouteHandler } from '../../lib/http-server.ts';
import type { KafkaGateway, LeaseAttempt, RecordProducer } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';
import type { RoleStarter } from '../../lib/role.ts';
import { Limiter, startScheduler } from '../../lib/schedule.ts';
import { WechatClients, type WechatClient } from '../../lib/wechat/client.ts';
import { clickhouseReconcileStore } from '../reconcile/store.ts';
import { waitForLoaded } from '../reconcile/watermark.ts';
import { StateStore } from './checkpoint.ts';
import { CronDue } from './cron-due.ts';
import { clickhouseKnownOpenids, type KnownOpenids } from './enrich.ts';
import { observedSnapshotter, SnapshotMetrics } from './metrics.ts';
import { runSnapshot, type Progress, type SnapshotResult } from './runner.ts';
import { createSentinel, quotaReader, sentinelRoute, type AccountExclusive } from './sentinel.ts';
import { clickhouseSentinelStore } from './sentinel-store.ts';

export interface SnapshotterOptions {
  readonly config: Config;
  readonly clients: WechatClients;
  readonly kafka: KafkaGateway;
  readonly producer: RecordProducer;
  /** Named to a contender that is refused the account. */
  readonly owner: string;
  readonly logger: Logger;
  /** Undefined where no store is open: no enrichment. */
  readonly known?: KnownOpenids;
  /** Aborted at shutdown: every run stops after its page in flight and keeps its checkpoint. */
  readonly signal?: AbortSignal;
  /** The account's queue, shared with the drift sentinel's calls; one of its own by default. */
  readonly exclusive?: AccountExclusive;
}

/** What one caller adds to one run: its progress, and its own reason to stop (a client that went away). */
export interface SnapshotCall {
  readonly onProgress?: (progress: Progress) => void;
  readonly signal?: AbortSignal;
}

export type Snapshotter = (appid: string, call?: SnapshotCall) => Promise<SnapshotResult>;

/** An account's snapshot lease: a Kafka consumer group of its own, so it holds across machines sharing only the broker. */
export function snapshotLeases(kafka: KafkaGateway, config: Config, owner: string): (appid: string) => Promise<LeaseAttempt> {
  return (appid) => kafka.acquireLease({
    group: `${config.snapshot.leaseGroupPrefix}${appid}`, topic: config.kafka.topics.leases, owner, sessionTimeoutMs: config.snapshot.leaseTtlMs,
  });
}

/**
 * Runs of one account one after another, in arrival order; other accounts' run meanwhile. A snapshot request for
 * an account this process is already snapshotting (its schedule, or another request) waits for that run and then
 * takes its own, like reconciles: the caller asked for followers as of now, which a run that began earlier does
 * not give, and "busy" is kept for a run another process holds. The sentinel's calls queue here too, so they
 * never count a user/get call into the ledger a run is writing.
 */
export function accountQueue(): AccountExclusive {
  const tails = new Map<string, Promise<unknown>>();
  return (appid, fn) => {
    const previous = tails.get(appid) ?? Promise.resolve();
    const result = previous.then(fn);
    const tail = result.catch(() => undefined);
    tails.set(appid, tail);
    void tail.then(() => { if (tails.get(appid) === tail) tails.delete(appid); });
    return result;
  };
}

/** One snapshot of an account with everything the config says; shared by the role, its API route and the CLI command. */
export function snapshotter(options: SnapshotterOptions): Snapshotter {
  const { config } = options;
  const state = new StateStore(config.snapshot.dir);
  const lease = snapshotLeases(options.kafka, config, options.owner);
  const logger = options.logger.child({ role: 'snapshot' });
  const exclusive = options.exclusive ?? accountQueue();
  const run = (appid: string, call: SnapshotCall): Promise<SnapshotResult> => {
    const signals = [options.signal, call.signal].filter((s) => s !== undefined);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    // A caller that went away (or a shutdown) while it waited for the run before it starts nothing.
    signal?.throwIfAborted();
    return runSnapshot(appid, {
      source: options.clients.get(appid),
      producer: options.producer,
      topics: config.kafka.topics,
      state,
      lease,
      settings: config.snapshot,
      logger,
      ...(options.known === undefined ? {} : { known: options.known }),
      ...(signal === undefined ? {} : { signal }),
      ...(call.onProgress === undefined ? {} : { onProgress: call.onProgress }),
    });
  };
  return (appid, call = {}) => exclusive(appid, () => run(appid, call));
}

/** One line of the route's answer: progress while the snapshot runs, then its result (or the error that ended it). */
export type SnapshotStreamLine =
  | { readonly progress: Progress }
  | { readonly result: SnapshotResult }
  | { readonly error: string; readonly code: string };

/**
 * `POST /api/snapshot/<appid>`: how `wxsync snapshot` runs a snapshot inside a `wxsync run` that holds the
 * embedded store, so the snapshot is enriched from it. Answers newline-delimited JSON (`SnapshotStreamLine`)
 * as the run goes. A client that goes away stops the run like a shutdown: the checkpoint is kept.
 */
export function snapshotRoute(snapshot: Snapshotter, limiter: Limiter, accounts: ReadonlySet<string>): RouteHandler {
  return async (req, res) => {
    const posted = postedAccount(req, res, '/api/snapshot/', accounts);
    if (posted === undefined) return;
    const { appid } = posted;
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort(new WxsyncError(ErrorCode.ApiRequestFailed, 'the client that asked for the snapshot went away'));
    });
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const line = (value: SnapshotStreamLine): void => { if (!res.destroyed) res.write(`${JSON.stringify(value)}\n`); };
    try {
      const result = await limiter.run(() => snapshot(appid, { signal: gone.signal, onProgress: (progress) => { line({ progress }); } }));
      line({ result });
    } catch (error) {
      line(errorAnswer(error));
    }
    res.end();
  };
}

export const startSnapshotRole: RoleStarter = async ({ config, kafka, clickhouse, logger: parent, registry }) => {
  const logger = parent.child({ role: 'snapshot' });
  const abort = new AbortController();
  const clients = new WechatClients({ apiBase: config.wechatApiBase, accounts: config.accounts, logger, signal: abort.signal });
  const producer = await kafka.producer();
  const db = config.clickhouse.database;
  const appids = config.accounts.map((a) => a.appid);
  const accounts = new Set(appids);
  const dues = new Map(config.accounts.flatMap((a) => (a.snapshotCron === undefined ? [] : [[a.appid, new CronDue(a.snapshotCron)] as const])));
  const metrics = new SnapshotMetrics(appids, { registry, dueAt: (appid, nowMs) => dues.get(appid)?.previous(nowMs), overdueGraceMs: config.snapshot.overdueMs });
  const sentinelStore = clickhouseSentinelStore(clickhouse, db);
  try {
    for (const [appid, history] of await sentinelStore.history()) if (accounts.has(appid)) metrics.restore(appid, history);
  } catch (error) {
    logger.warn({ err: error }, 'cannot read the snapshots of earlier runs: the snapshot gauges start from this process\'s runs');
  }
  const state = new StateStore(config.snapshot.dir);
  const source = (appid: string): WechatClient => clients.get(appid);
  const quota = quotaReader({ source, state, dailyQuota: config.snapshot.userGetDailyQuota, metrics, logger, now: Date.now });
  const refreshQuota = (appid: string): Promise<void> => quota(appid).then(() => undefined, (error: unknown) => {
    logger.warn({ appid, err: error }, 'cannot read the user/get quota');
  });
  const exclusive = accountQueue();
  const snapshot = observedSnapshotter(snapshotter({
    config, clients, kafka, producer, owner: 'wxsync run', logger, signal: abort.signal, known: clickhouseKnownOpenids(clickhouse, db), exclusive,
  }), metrics, refreshQuota, abort.signal);
  const limiter = new Limiter(config.snapshot.concurrency);
  const scheduler = startScheduler({
    job: 'snapshot', accounts: config.accounts, cronOf: (a) => a.snapshotCron, limiter, logger, run: (appid) => snapshot(appid),
  });
  const reconcileStore = clickhouseReconcileStore(clickhouse, db);
  const sentinel = createSentinel({
    appids, settings: config.sentinel, source, state, exclusive, quota, store: sentinelStore, metrics, logger, signal: abort.signal,
    snapshot: (appid, call) => limiter.run(() => snapshot(appid, call)),
    pendingReconcile: async (appid) => (await reconcileStore.unreconciled()).find((r) => r.appid === appid)?.snapshotId,
    loaded: (notBefore) => waitForLoaded({
      offsets: kafka, groupId: config.consumer.groupId, topics: [config.kafka.topics.userEvents], notBefore,
      timeoutMs: config.reconcile.loadTimeoutMs, signal: abort.signal,
    }),
  });
  for (const appid of appids) void refreshQuota(appid);
  const requests = new Set<Promise<void>>();
  const route = snapshotRoute(snapshot, limiter, accounts);
  return {
    name: 'snapshot',
    routes: [
      ['/api/snapshot/', (req: http.IncomingMessage, res: http.ServerResponse) => {
        const handled = route(req, res).finally(() => { requests.delete(handled); });
        requests.add(handled);
        return handled;
      }],
      ['/api/sentinel/', sentinelRoute(sentinelStore, accounts)],
    ],
    ready: () => true,
    async stop() {
      // Running snapshots stop after their page in flight and keep their checkpoints for the next start.
      abort.abort();
      await sentinel.stop();
      await scheduler.stop();
      await Promise.all(requests);
      await producer.close();
      clients.close();
    },
  };
};
