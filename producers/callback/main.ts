import type { RoleStarter } from '../../lib/role.ts';
import { EdgeDedupe } from './dedupe.ts';
import { createCallbackHandler } from './http.ts';
import { createCallbackMetrics } from './metrics.ts';
import { Publisher, type Outcome } from './publisher.ts';
import { Spool, createSpoolMetrics } from './spool.ts';
import { accountKeys } from './verify.ts';

/** Ids remembered at most, whatever the window: ~100 bytes each. */
const DEDUPE_MAX_IDS = 200_000;

export const startCallbackRole: RoleStarter = async ({ config, kafka, logger: parent, registry }) => {
  const logger = parent.child({ role: 'callback' });
  const settings = config.callback;
  const accounts = new Map(config.accounts.map((account) => [account.appid, accountKeys(account)]));
  // The counters exist before the spool opens, since opening is where corrupt records are found.
  const opened: { spool?: Spool } = {};
  const spoolMetrics = createSpoolMetrics(registry, () => opened.spool);
  const spool = await Spool.open(settings.spoolDir, logger, { maxBytes: settings.spoolMaxBytes, metrics: spoolMetrics });
  opened.spool = spool;
  let producer;
  try {
    // Lazily: WeChat's pushes arrive whether or not the broker is up, and the spool keeps them until it is.
    producer = await kafka.producer({ connectLazily: true });
  } catch (error) {
    await spool.close();
    throw error;
  }
  const metrics = createCallbackMetrics(registry, () => spool.depth);
  const publisher = new Publisher({ producer, topic: config.kafka.topics.userEvents, spool, produceTimeoutMs: settings.produceTimeoutMs, logger, metrics });
  publisher.start();
  const handler = createCallbackHandler({
    accounts,
    maxClockSkewMs: settings.maxClockSkewMs,
    bodyMaxBytes: settings.bodyMaxBytes,
    publish: (record) => publisher.publish(record),
    dedupe: new EdgeDedupe<Outcome>(settings.dedupeWindowMs, DEDUPE_MAX_IDS),
    metrics,
    logger,
  });
  logger.info({ accounts: accounts.size, spool: settings.spoolDir, spooled: spool.depth }, 'callback role started');
  return {
    name: 'callback',
    publicRoutes: [['/wechat/', handler]],
    ready: () => true,
    async stop() {
      await publisher.stop();
      await producer.close();
      await spool.close();
    },
  };
};
