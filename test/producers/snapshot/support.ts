import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startClickHouseConsumer, type RunningClickHouseConsumer } from '../../../consumers/clickhouse/consumer.ts';
import { topicSpecs } from '../../../lib/topics.ts';
import { createClickHouse, type ClickHouseClient } from '../../../lib/clickhouse.ts';
import { createKafkaGateway, type KafkaGateway } from '../../../lib/kafka.ts';
import { loadConfig } from '../../../lib/config.ts';
import { createLogger } from '../../../lib/logger.ts';
import { migrate } from '../../../lib/migrate.ts';
import { testEnv, waitFor, type TestEnv } from '../../support/env.ts';
import { SimHarness } from '../../lib/wechat/sim-harness.ts';
import type { SimOptions } from '../../../sim/options.ts';

/** The simulator, a config pointing at it, Kafka topics of its own and, when asked, chDB with the consumer running. */
export interface SnapshotHarness {
  readonly sim: SimHarness;
  readonly t: TestEnv;
  readonly kafka: KafkaGateway;
  readonly clickhouse?: ClickHouseClient;
  readonly consumer?: RunningClickHouseConsumer;
  close(): Promise<void>;
}

export async function snapshotHarness(sim: Partial<SimOptions>, withStore: boolean, env: Record<string, string> = {}): Promise<SnapshotHarness> {
  const harness = await SimHarness.start(sim);
  const base = testEnv(env);
  const accountsFile = path.join(base.dataDir, 'accounts.json');
  writeFileSync(accountsFile, JSON.stringify(Array.from({ length: sim.followers?.length ?? 1 }, (_, i) => {
    const a = harness.account(i);
    return { appid: a.appid, secret: a.secret, token: a.token };
  })));
  const fullEnv = { ...base.env, WXSYNC_ACCOUNTS: accountsFile, WECHAT_API_BASE: harness.apiBase };
  const t: TestEnv = { ...base, env: fullEnv, config: loadConfig(fullEnv) };
  const logger = createLogger(t.config.logLevel);
  const kafka = createKafkaGateway(t.config.kafka, logger);
  await kafka.ensureTopics(topicSpecs(t.config));
  let clickhouse: ClickHouseClient | undefined;
  let consumer: RunningClickHouseConsumer | undefined;
  if (withStore) {
    clickhouse = createClickHouse(t.config.clickhouse);
    await migrate(clickhouse, t.config.clickhouse.database, logger);
    consumer = await startClickHouseConsumer({ config: t.config, kafka, clickhouse, logger });
  }
  return {
    sim: harness, t, kafka,
    ...(clickhouse === undefined ? {} : { clickhouse }),
    ...(consumer === undefined ? {} : { consumer }),
    async close() {
      await consumer?.stop();
      await kafka.close();
      await clickhouse?.close();
      await harness.close();
      t.cleanup();
    },
  };
}

export async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<T>();
}

export interface Status { complete: boolean | number; loaded: boolean | number; pages: number; openids: string; total: string; reason: string }

export async function loadedStatus(h: SnapshotHarness, snapshotId: string, timeoutMs = 60_000): Promise<Status> {
  const client = h.clickhouse;
  if (client === undefined) throw new Error('no store');
  const db = h.t.config.clickhouse.database;
  return waitFor(`snapshot ${snapshotId} to be loaded`, timeoutMs, async () => {
    const [row] = await rows<Status>(client, `SELECT complete, loaded, pages, openids, total, reason FROM ${db}.snapshot_status WHERE snapshot_id = '${snapshotId}'`);
    return row !== undefined && Boolean(row.loaded) ? row : undefined;
  }, 250);
}

export async function members(h: SnapshotHarness, snapshotId: string): Promise<string[]> {
  const client = h.clickhouse;
  if (client === undefined) throw new Error('no store');
  const db = h.t.config.clickhouse.database;
  const got = await rows<{ openid: string }>(client, `SELECT DISTINCT openid FROM ${db}.snapshot_members WHERE snapshot_id = '${snapshotId}'`);
  return got.map((r) => r.openid).sort();
}
