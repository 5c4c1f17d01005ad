import type http from 'node:http';
import type { Config } from '../../lib/config.ts';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';
import { errorAnswer, postedAccount, type RouteHandler } from '../../lib/http-server.ts';
import type { KafkaGateway, LeaseAttempt, RecordProducer } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';
import type { RoleStarter } from '../../lib/role.ts';
import { Limiter, startScheduler } from '../../lib/schedule.ts';
import { WechatClients } from '../../lib/wechat/client.ts';
import { StateStore } from './checkpoint.ts';
import { clickhouseKnownOpenids, type KnownOpenids } from './enrich.ts';
import { runSnapshot, type Progress, type SnapshotResult } from './runner.ts';

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

/** One snapshot of an account with everything the config says; shared by the role, its API route and the CLI command. */
export function snapshotter(options: SnapshotterOptions): Snapshotter {
  const { config } = options;
  const state = new StateStore(config.snapshot.dir);
  const lease = snapshotLeases(options.kafka, config, options.owner);
  const logger = options.logger.child({ role: 'snapshot' });
  // A request for an account this process is already snapshotting (its schedule, or another request) waits for
  // that run and then takes its own, like reconciles: the caller asked for followers as of now, which a run that
  // began earlier does not give, and "busy" is kept for a run another process holds.
  const tails = new Map<string, Promise<unknown>>();
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
  return (appid, call = {}) => {
    const previous = tails.get(appid) ?? Promise.resolve();
    const result = previous.then(() => run(appid, call));
    const tail = result.catch(() => undefined);
    tails.set(appid, tail);
    void tail.then(() => { if (tails.get(appid) === tail) tails.delete(appid); });
    return result;
  };
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

export const startSnapshotRole: RoleStarter = async ({ config, kafka, clickhouse, logger }) => {
  const abort = new AbortController();
  const clients = new WechatClients({ apiBase: config.wechatApiBase, accounts: config.accounts, logger, signal: abort.signal });
  const producer = await kafka.producer();
  const snapshot = snapshotter({
    config, clients, kafka, producer, owner: 'wxsync run', logger, signal: abort.signal, known: clickhouseKnownOpenids(clickhouse, config.clickhouse.database),
  });
  const limiter = new Limiter(config.snapshot.concurrency);
  const scheduler = startScheduler({
    job: 'snapshot', accounts: config.accounts, cronOf: (a) => a.snapshotCron, limiter, logger, run: (appid) => snapshot(appid),
  });
  const requests = new Set<Promise<void>>();
  const route = snapshotRoute(snapshot, limiter, new Set(config.accounts.map((a) => a.appid)));
  return {
    name: 'snapshot',
    routes: [['/api/snapshot/', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const handled = route(req, res).finally(() => { requests.delete(handled); });
      requests.add(handled);
      return handled;
    }]],
    ready: () => true,
    async stop() {
      // Running snapshots stop after their page in flight and keep their checkpoints for the next start.
      abort.abort();
      await scheduler.stop();
      await Promise.all(requests);
      await producer.close();
      clients.close();
    },
  };
};
