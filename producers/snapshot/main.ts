import type { Config } from '../../lib/config.ts';
import type { RecordProducer } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';
import type { RoleStarter } from '../../lib/role.ts';
import { startScheduler } from '../../lib/schedule.ts';
import { WechatClients } from '../../lib/wechat/client.ts';
import { StateStore } from './checkpoint.ts';
import { clickhouseKnownOpenids, type KnownOpenids } from './enrich.ts';
import { runSnapshot, type Progress, type SnapshotResult } from './runner.ts';

export interface SnapshotterOptions {
  readonly config: Config;
  readonly clients: WechatClients;
  readonly producer: RecordProducer;
  readonly logger: Logger;
  readonly known?: KnownOpenids;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: Progress) => void;
}

/** One snapshot of an account with everything the config says; shared by the role and the CLI command. */
export function snapshotter(options: SnapshotterOptions): (appid: string) => Promise<SnapshotResult> {
  const { config } = options;
  const state = new StateStore(config.snapshot.dir);
  return (appid) => runSnapshot(appid, {
    source: options.clients.get(appid),
    producer: options.producer,
    topics: config.kafka.topics,
    state,
    settings: config.snapshot,
    logger: options.logger.child({ role: 'snapshot' }),
    ...(options.known === undefined ? {} : { known: options.known }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
}

export const startSnapshotRole: RoleStarter = async ({ config, kafka, clickhouse, logger }) => {
  const abort = new AbortController();
  const clients = new WechatClients({ apiBase: config.wechatApiBase, accounts: config.accounts, logger, signal: abort.signal });
  const producer = await kafka.producer();
  const snapshot = snapshotter({
    config, clients, producer, logger, signal: abort.signal, known: clickhouseKnownOpenids(clickhouse, config.clickhouse.database),
  });
  const scheduler = startScheduler({
    job: 'snapshot', accounts: config.accounts, cronOf: (a) => a.snapshotCron, concurrency: config.snapshot.concurrency, logger, run: snapshot,
  });
  return {
    name: 'snapshot',
    ready: () => true,
    async stop() {
      // Running snapshots stop after their page in flight and keep their checkpoints for the next start.
      abort.abort();
      await scheduler.stop();
      await producer.close();
      clients.close();
    },
  };
};
