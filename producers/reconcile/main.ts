import type http from 'node:http';
import { backoffDelay, sleep } from '../../lib/backoff.ts';
import type { ClickHouseClient } from '../../lib/clickhouse.ts';
import type { Config } from '../../lib/config.ts';
import { SNAPSHOT_ID } from '../../lib/contracts/fields.ts';
import { errorAnswer, postedAccount, sendJson } from '../../lib/http-server.ts';
import type { KafkaGateway, RecordProducer } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';
import type { RoleStarter } from '../../lib/role.ts';
import { Limiter, startScheduler } from '../../lib/schedule.ts';
import { WechatClients } from '../../lib/wechat/client.ts';
import { historyFor } from './compare.ts';
import { observedReconciler } from './metrics.ts';
import { createReconciler, type Reconciler } from './runner.ts';
import { clickhouseReconcileStore, lastReconcileRuns, type ReconcileStore } from './store.ts';

export interface ReconcilerContext {
  readonly config: Config;
  readonly kafka: KafkaGateway;
  readonly clickhouse: ClickHouseClient;
  readonly producer: RecordProducer;
  readonly clients: WechatClients;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

/** The reconciler with everything the config says; shared by the role and the CLI command. */
export function reconcilerFor(context: ReconcilerContext): { reconciler: Reconciler; store: ReconcileStore } {
  const { config } = context;
  const store = clickhouseReconcileStore(context.clickhouse, config.clickhouse.database);
  const history = historyFor(config, context.clickhouse, context.logger);
  const reconciler = createReconciler({
    store,
    profiles: (appid) => context.clients.get(appid),
    producer: context.producer,
    offsets: context.kafka,
    settings: config.reconcile,
    topics: config.kafka.topics,
    consumerGroup: config.consumer.groupId,
    batchgetConcurrency: config.snapshot.batchgetConcurrency,
    logger: context.logger.child({ role: 'reconcile' }),
    ...(context.signal === undefined ? {} : { signal: context.signal }),
    afterRun: (appid, snapshotId) => history.afterReconcile(appid, snapshotId),
  });
  return { reconciler, store };
}

/**
 * `POST /api/reconcile/<appid>[?dryRun=1][&snapshot=<id>]`: how `wxsync reconcile` reaches a running
 * process that holds the embedded store. Answers the run's report, 404 for an unknown account.
 */
export function reconcileRoute(reconciler: Reconciler, accounts: ReadonlySet<string>): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  return async (req, res) => {
    const posted = postedAccount(req, res, '/api/reconcile/', accounts);
    if (posted === undefined) return;
    const { appid, query } = posted;
    const snapshotId = query.get('snapshot') ?? undefined;
    if (snapshotId !== undefined && !SNAPSHOT_ID.test(snapshotId)) {
      sendJson(res, 400, { error: `snapshot must match ${SNAPSHOT_ID.source}` });
      return;
    }
    try {
      const report = await reconciler.run({ appid, dryRun: query.get('dryRun') === '1', trigger: 'manual', ...(snapshotId === undefined ? {} : { snapshotId }) });
      sendJson(res, 200, report);
    } catch (error) {
      sendJson(res, 500, errorAnswer(error));
    }
  };
}

export const startReconcileRole: RoleStarter = async ({ config, kafka, clickhouse, logger: parent, registry }) => {
  const logger = parent.child({ role: 'reconcile' });
  const abort = new AbortController();
  const clients = new WechatClients({ apiBase: config.wechatApiBase, accounts: config.accounts, logger, signal: abort.signal });
  const producer = await kafka.producer();
  const built = reconcilerFor({ config, kafka, clickhouse, producer, clients, logger, signal: abort.signal });
  const { store } = built;
  const lastRuns = await lastReconcileRuns(clickhouse, config.clickhouse.database).catch((error: unknown) => {
    logger.warn({ err: error }, 'cannot read the reconcile runs of earlier processes: the reconcile gauges start from this process\'s runs');
    return [];
  });
  const reconciler = observedReconciler(built.reconciler, registry, lastRuns);
  const accounts = new Set(config.accounts.map((a) => a.appid));
  const scheduler = startScheduler({
    job: 'reconcile',
    accounts: config.accounts,
    cronOf: (a) => a.reconcileCron,
    limiter: new Limiter(config.snapshot.concurrency),
    logger,
    run: (appid) => reconciler.run({ appid, dryRun: false, trigger: 'schedule' }),
  });

  // After each complete snapshot is loaded: a failed attempt is retried with backoff, never in a tight loop
  // that would burn the batchget quota.
  const failures = new Map<string, { attempts: number; retryAt: number }>();
  const stopping = (): boolean => abort.signal.aborted;
  const poll = async (): Promise<void> => {
    for (const { appid, snapshotId } of await store.unreconciled()) {
      const failed = failures.get(snapshotId);
      if (!accounts.has(appid) || (failed !== undefined && failed.retryAt > Date.now()) || stopping()) continue;
      try {
        await reconciler.run({ appid, snapshotId, dryRun: false, trigger: 'snapshot' });
        failures.delete(snapshotId);
      } catch (error) {
        const attempts = (failed?.attempts ?? 0) + 1;
        failures.set(snapshotId, { attempts, retryAt: Date.now() + backoffDelay(attempts, config.reconcile.pollMs, 30 * 60_000) });
        if (!stopping()) logger.error({ appid, snapshotId, attempts, err: error }, 'reconcile after a snapshot failed');
      }
    }
  };
  const polling = (async () => {
    while (!stopping()) {
      await poll().catch((error: unknown) => { logger.warn({ err: error }, 'looking for snapshots to reconcile failed'); });
      await sleep(config.reconcile.pollMs, abort.signal);
    }
  })();

  return {
    name: 'reconcile',
    routes: [['/api/reconcile/', reconcileRoute(reconciler, accounts)]],
    ready: () => true,
    async stop() {
      abort.abort();
      await scheduler.stop();
      await polling;
      await producer.close();
      clients.close();
    },
  };
};
