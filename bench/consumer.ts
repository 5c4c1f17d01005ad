/**
 * npm run bench:consumer [-- --events 1m]
 * Events/s from Kafka into ClickHouse through the real consumer, next to a ceiling measured in the same
 * run: the same records consumed by kafkajs alone, decoding nothing and writing nowhere.
 */
import { parseArgs } from 'node:util';
import { startClickHouseConsumer } from '../consumers/clickhouse/consumer.ts';
import { topicSpecs } from '../lib/topics.ts';
import { createClickHouse } from '../lib/clickhouse.ts';
import { callbackEventId } from '../lib/contracts/event-id.ts';
import { encodeUserEvent, userEventKey, type UserEvent } from '../lib/contracts/user-event.ts';
import { createKafkaGateway, type KafkaGateway, type OutRecord } from '../lib/kafka.ts';
import { createLogger } from '../lib/logger.ts';
import { migrate } from '../lib/migrate.ts';
import { caughtUp } from '../test/support/events.ts';
import { testEnv, waitFor } from '../test/support/env.ts';
import { parseCount, peakRssMb, report } from './support.ts';

const { values } = parseArgs({ options: { events: { type: 'string' }, users: { type: 'string' } } });
const total = parseCount(values.events, 1_000_000);
const users = parseCount(values.users, 200_000);

const t = testEnv({
  WXSYNC_EVENTS_PARTITIONS: '12', WXSYNC_LOG_LEVEL: 'warn',
  WXSYNC_BATCH_MAX_ROWS: process.env['WXSYNC_BATCH_MAX_ROWS'] ?? '50000', WXSYNC_BATCH_MAX_MS: process.env['WXSYNC_BATCH_MAX_MS'] ?? '1000',
});
const logger = createLogger('warn');
const kafka = createKafkaGateway(t.config.kafka, logger);
const topic = t.config.kafka.topics.userEvents;

async function produce(): Promise<void> {
  const base = Date.UTC(2026, 0, 1) / 1000;
  const producer = await kafka.producer();
  const chunk = 20_000;
  for (let i = 0; i < total; i += chunk) {
    const records: OutRecord[] = [];
    for (let n = i; n < Math.min(total, i + chunk); n += 1) {
      const openid = `o${(n % users).toString(36).padStart(27, '0')}`;
      const type = Math.floor(n / users) % 2 === 0 ? 'subscribe' : 'unsubscribe';
      const seconds = base + n;
      const event: UserEvent = {
        v: 1, id: callbackEventId('wxbench000000001', openid, seconds, type), appid: 'wxbench000000001', openid, type,
        at: seconds * 1000, source: 'callback', receivedAt: seconds * 1000 + 3, ...(n % 10 === 0 ? { qrScene: String(n % 97), ticket: 'gQH47joAAAAAAAAAASxodHRw' } : {}),
      };
      records.push({ key: userEventKey(event), value: encodeUserEvent(event) });
    }
    await producer.send(topic, records);
  }
  await producer.close();
}

async function ceiling(gateway: KafkaGateway): Promise<number> {
  const consumer = await gateway.consumer({ groupId: `${t.config.consumer.groupId}-ceiling`, fromBeginning: true, concurrency: 64 });
  let seen = 0;
  const started = Date.now();
  await consumer.run([topic], (batch) => { seen += batch.records.length; return Promise.resolve(); });
  await waitFor('the ceiling consumer to read everything', 600_000, () => (seen >= total ? true : undefined), 20);
  const seconds = (Date.now() - started) / 1000;
  await consumer.close();
  return total / seconds;
}

try {
  await kafka.ensureTopics(topicSpecs(t.config));
  const producedAt = Date.now();
  await produce();
  report('produced (setup, not measured)', total / ((Date.now() - producedAt) / 1000), 'events/s', `${total.toLocaleString('en-US')} events, ${users.toLocaleString('en-US')} users, 12 partitions`);

  const clickhouse = createClickHouse(t.config.clickhouse);
  await migrate(clickhouse, t.config.clickhouse.database, logger);
  const rssBefore = peakRssMb();
  const started = Date.now();
  // CPU of this process (kafkajs, the consumer, chDB's threads) during the load: steadier than events/s on a shared machine.
  const cpuBefore = process.cpuUsage();
  let writeMs = 0;
  const consumer = await startClickHouseConsumer({
    config: t.config, kafka, clickhouse, logger,
    wrapWriter: (writer) => ({
      async write(routed) {
        const at = performance.now();
        await writer.write(routed);
        writeMs += performance.now() - at;
      },
    }),
  });
  await waitFor('the consumer to commit everything', 1_800_000, async () => (await caughtUp(kafka, t.config.consumer.groupId, [topic])) || undefined, 100);
  const seconds = (Date.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const rate = total / seconds;
  const rss = peakRssMb();
  await consumer.stop();
  const [check] = await (await clickhouse.query({ query: `SELECT uniqExact(id) AS ids FROM ${t.config.clickhouse.database}.user_events`, format: 'JSONEachRow' })).json<{ ids: string }>();
  if (Number(check?.ids) !== total) throw new Error(`expected ${total} events in ClickHouse, found ${check?.ids ?? 'none'}`);
  await clickhouse.close();

  const ceilingRate = await ceiling(kafka);
  report('consumer: Kafka -> ClickHouse', rate, 'events/s', `${seconds.toFixed(1)} s for ${total.toLocaleString('en-US')} (goal >= 100,000/s)`);
  report('CPU time of the process during the load', (cpuSeconds / total) * 1e6, 'CPU-s per 1M events', `${(cpuSeconds / seconds).toFixed(2)} cores busy on average`);
  report('share of the run spent inside store writes', (writeMs / 1000 / seconds) * 100, '%', `${consumer.stats.flushes} flushes`);
  report('ceiling: kafkajs consume only', ceilingRate, 'events/s');
  report('consumer / ceiling', (rate / ceilingRate) * 100, '%');
  report('peak RSS of the bench process', rss, 'MB', `(${rssBefore.toFixed(0)} MB before the consumer started)`);
} finally {
  await kafka.close();
  t.cleanup();
}
