import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClickHouseError } from '@clickhouse/client';
import { startClickHouseConsumer, type RunningClickHouseConsumer } from '../../../consumers/clickhouse/consumer.ts';
import { startConsumerRole } from '../../../consumers/clickhouse/main.ts';
import type { RoutedWriter } from '../../../consumers/clickhouse/sink.ts';
import { createClickHouse, type ClickHouseClient } from '../../../lib/clickhouse.ts';
import type { DlqRecord } from '../../../lib/contracts/dlq.ts';
import { encodeSnapshotRecord, snapshotKey } from '../../../lib/contracts/snapshot.ts';
import type { UserEvent } from '../../../lib/contracts/user-event.ts';
import { createKafkaGateway, type KafkaGateway, type OutRecord } from '../../../lib/kafka.ts';
import { createLogger } from '../../../lib/logger.ts';
import { createRegistry } from '../../../lib/metrics.ts';
import { migrate } from '../../../lib/migrate.ts';
import { Rng } from '../../../sim/random.ts';
import { topicSpecs } from '../../../lib/topics.ts';
import { T0, callbackEvent, caughtUp, eventRecord, openidOf, produceAll } from '../../support/events.ts';
import { testEnv, waitFor, type TestEnv } from '../../support/env.ts';

const APPID = 'wxtest0000000001';

interface Harness {
  readonly t: TestEnv;
  readonly kafka: KafkaGateway;
  readonly clickhouse: ClickHouseClient;
  consumer?: RunningClickHouseConsumer;
}

async function harness(overrides: Record<string, string> = {}): Promise<Harness> {
  const t = testEnv(overrides);
  const logger = createLogger(t.config.logLevel);
  const kafka = createKafkaGateway(t.config.kafka, logger);
  await kafka.ensureTopics(topicSpecs(t.config));
  const clickhouse = createClickHouse(t.config.clickhouse);
  await migrate(clickhouse, t.config.clickhouse.database, logger);
  return { t, kafka, clickhouse };
}

async function start(h: Harness, wrapWriter?: (w: RoutedWriter) => RoutedWriter): Promise<RunningClickHouseConsumer> {
  const consumer = await startClickHouseConsumer({
    config: h.t.config, kafka: h.kafka, clickhouse: h.clickhouse, logger: createLogger(h.t.config.logLevel),
    ...(wrapWriter === undefined ? {} : { wrapWriter }),
  });
  h.consumer = consumer;
  return consumer;
}

async function teardown(h: Harness): Promise<void> {
  await h.consumer?.stop();
  await h.kafka.close();
  await h.clickhouse.close();
  h.t.cleanup();
}

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  const result = await client.query({ query, format: 'JSONEachRow' });
  return result.json<T>();
}

async function waitCaughtUp(h: Harness, timeoutMs: number): Promise<void> {
  const { topics } = h.t.config.kafka;
  await waitFor('the consumer to commit every record', timeoutMs,
    async () => (await caughtUp(h.kafka, h.t.config.consumer.groupId, [topics.userEvents, topics.snapshots, topics.userProfiles])) || undefined, 250);
}

async function dlqOf(h: Harness, atLeast: number): Promise<DlqRecord[]> {
  return waitFor(`${atLeast} records in the DLQ`, 30_000, async () => {
    const records = (await h.kafka.readAll(h.t.config.kafka.topics.dlq, 30_000)).map((r) => JSON.parse(r.value?.toString() ?? '') as DlqRecord);
    return records.length >= atLeast ? records : undefined;
  }, 250);
}

/** The record a DLQ entry holds, decoded. */
function originalOf(dlq: DlqRecord): Record<string, unknown> {
  return JSON.parse(Buffer.from(dlq.value, 'base64').toString()) as Record<string, unknown>;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

function seeded(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.float();
}

describe('consumers/clickhouse against Kafka and chDB', { timeout: 240_000 }, () => {
  describe('100k events with 5% duplicates, out of order per user', () => {
    let h: Harness;
    const users = 20_000;
    const expected = new Map<string, { subscribed: boolean; subscribeAt: number }>();
    let distinctIds = 0;

    before(async () => {
      h = await harness({ WXSYNC_BATCH_MAX_ROWS: '20000' });
      const random = seeded(42);
      const events: UserEvent[] = [];
      for (let u = 0; u < users; u += 1) {
        const openid = openidOf(u);
        const count = 1 + Math.floor(random() * 9);
        let subscribed = false;
        let subscribeAt = 0;
        const mine: UserEvent[] = [];
        for (let k = 0; k < count; k += 1) {
          const type = k % 2 === 0 ? 'subscribe' : 'unsubscribe';
          const seconds = T0 / 1000 + u + k * 100_000;
          mine.push(callbackEvent(APPID, openid, type, seconds, type === 'subscribe' ? { scene: `s${k}` } : {}));
          subscribed = type === 'subscribe';
          if (subscribed) subscribeAt = seconds * 1000;
        }
        expected.set(openid, { subscribed, subscribeAt });
        events.push(...shuffle(mine, random));
      }
      distinctIds = events.length;
      const duplicates = Math.round(events.length * 0.05);
      for (let d = 0; d < duplicates; d += 1) {
        const at = Math.floor(random() * events.length);
        events.splice(at, 0, events[Math.floor(random() * events.length)] as UserEvent);
      }
      await produceAll(h.kafka, h.t.config.kafka.topics.userEvents, events.map(eventRecord));
      assert.ok(events.length >= 95_000, `generated ${events.length} events`);
      await start(h);
      await waitCaughtUp(h, 180_000);
    });
    after(async () => { await teardown(h); });

    it('gives exactly the expected followers state', async () => {
      const db = h.t.config.clickhouse.database;
      const got = await rows<{ openid: string; subscribed: number | boolean; subscribe_ms: string }>(h.clickhouse,
        `SELECT openid, subscribed, toUnixTimestamp64Milli(subscribe_time) AS subscribe_ms FROM ${db}.followers_current WHERE appid = '${APPID}'`);
      assert.equal(got.length, users);
      let mismatches = 0;
      for (const row of got) {
        const want = expected.get(row.openid);
        if (want === undefined || want.subscribed !== Boolean(row.subscribed) || want.subscribeAt !== Number(row.subscribe_ms)) mismatches += 1;
      }
      assert.equal(mismatches, 0);
    });

    it('keeps no duplicate event ids', async () => {
      const db = h.t.config.clickhouse.database;
      const [stats] = await rows<{ n: string; ids: string }>(h.clickhouse, `SELECT count() AS n, uniqExact(id) AS ids FROM ${db}.user_events FINAL`);
      assert.equal(Number(stats?.ids), distinctIds);
      assert.equal(Number(stats?.n), distinctIds);
    });
  });

  describe('poison records', () => {
    let h: Harness;
    before(async () => { h = await harness(); });
    after(async () => { await teardown(h); });

    it('sends an undecodable or invalid record to the DLQ with its reason while its neighbours load', async () => {
      const { topics } = h.t.config.kafka;
      const good = [0, 1, 2, 3].map((n) => callbackEvent(APPID, openidOf(900 + n), 'subscribe', T0 / 1000 + n));
      const [g0, g1, g2, g3] = good.map(eventRecord) as [OutRecord, OutRecord, OutRecord, OutRecord];
      const invalid = { ...good[0], openid: 'bad openid with spaces', id: 'nothex' };
      const oversized = Buffer.alloc(300 * 1024, 0x61);
      const sameKey = g0.key;
      await produceAll(h.kafka, topics.userEvents, [
        g0,
        { key: sameKey, value: Buffer.from('{not json') },
        g1,
        { key: sameKey, value: Buffer.from(JSON.stringify(invalid)) },
        { key: sameKey, value: Buffer.from(JSON.stringify({ ...good[0], v: 99 })) },
        g2,
        { key: sameKey, value: oversized },
        g3,
      ], 1);
      await produceAll(h.kafka, topics.snapshots, [
        { key: 'x', value: Buffer.from(JSON.stringify({ v: 1, kind: 'page', appid: APPID, snapshotId: 's1', page: 0, total: 1, openids: ['ok', 'not ok!'], fetchedAt: T0 })) },
        { key: snapshotKey({ appid: APPID, snapshotId: 's1' }), value: encodeSnapshotRecord({ v: 1, kind: 'begin', appid: APPID, snapshotId: 's1', startedAt: T0 }) },
      ], 1);
      await start(h);
      await waitCaughtUp(h, 60_000);

      const db = h.t.config.clickhouse.database;
      const loaded = await rows<{ openid: string }>(h.clickhouse, `SELECT openid FROM ${db}.user_events FINAL ORDER BY openid`);
      assert.deepEqual(loaded.map((r) => r.openid), good.map((e) => e.openid).sort());
      const begins = await rows<{ n: string }>(h.clickhouse, `SELECT count() AS n FROM ${db}.snapshots FINAL WHERE kind = 'begin'`);
      assert.equal(Number(begins[0]?.n), 1);

      const dlq = (await h.kafka.readAll(topics.dlq, 30_000)).map((r) => JSON.parse(r.value?.toString() ?? '') as DlqRecord);
      assert.equal(dlq.length, 5);
      const codes = dlq.map((d) => `${d.source.topic === topics.userEvents ? 'e' : 's'}:${d.code}`).sort();
      assert.deepEqual(codes, ['e:RECORD_INVALID', 'e:RECORD_UNDECODABLE', 'e:RECORD_UNDECODABLE', 'e:RECORD_UNDECODABLE', 's:RECORD_INVALID']);
      for (const d of dlq) {
        assert.ok(d.reason.length > 0);
        assert.ok(d.valueBytes > 0);
      }
      const big = dlq.find((d) => d.valueBytes === oversized.length);
      assert.ok(big?.truncated, 'an oversized record is kept truncated in the DLQ');
      assert.match(dlq.find((d) => d.reason.includes('openid'))?.reason ?? '', /openid/);
    });
  });

  describe('snapshots', () => {
    let h: Harness;
    before(async () => { h = await harness(); });
    after(async () => { await teardown(h); });

    it('loads begin, every page and end (redelivered twice) into one loaded snapshot with its members', async () => {
      const { topics } = h.t.config.kafka;
      const base = { v: 1, appid: APPID, snapshotId: 'snap-1' } as const;
      const openids = Array.from({ length: 25_001 }, (_, n) => openidOf(n));
      const pages = [0, 1, 2].map((page) => openids.slice(page * 10_000, (page + 1) * 10_000));
      const records = [
        encodeSnapshotRecord({ ...base, kind: 'begin', startedAt: T0 }),
        ...pages.map((ids, page) => encodeSnapshotRecord({
          ...base, kind: 'page', page, cursor: page === 0 ? '' : openids[page * 10_000 - 1] ?? '', nextOpenid: ids.at(-1) ?? '',
          total: openids.length, openids: ids, fetchedAt: T0 + page,
        })),
        encodeSnapshotRecord({ ...base, kind: 'page', page: 3, cursor: openids.at(-1) ?? '', nextOpenid: '', total: openids.length, openids: [], fetchedAt: T0 + 3 }),
        encodeSnapshotRecord({ ...base, kind: 'end', complete: true, pages: 4, openids: openids.length, total: openids.length, startedAt: T0, endedAt: T0 + 9 }),
      ].map((value) => ({ key: snapshotKey(base), value }));
      await produceAll(h.kafka, topics.snapshots, [...records, ...records]);
      await start(h);
      await waitCaughtUp(h, 60_000);
      const db = h.t.config.clickhouse.database;
      const [status] = await rows<Record<string, unknown>>(h.clickhouse,
        `SELECT loaded, complete, pages, pages_loaded, total, toUnixTimestamp64Milli(started_at) AS t0, toUnixTimestamp64Milli(ended_at) AS t1 FROM ${db}.snapshot_status WHERE snapshot_id = 'snap-1'`);
      assert.deepEqual(status, { loaded: 1, complete: 1, pages: 4, pages_loaded: '4', total: '25001', t0: String(T0), t1: String(T0 + 9) });
      const [members] = await rows<{ n: string; distinct_keys: string }>(h.clickhouse,
        `SELECT count() AS n, uniqExact(openid_key) AS distinct_keys FROM ${db}.snapshot_members FINAL WHERE snapshot_id = 'snap-1'`);
      assert.deepEqual(members, { n: '25001', distinct_keys: '25001' });
      const [setting] = await rows<{ value: string }>(h.clickhouse, "SELECT value FROM system.settings WHERE name = 'optimize_on_insert'");
      assert.equal(setting?.value, '1', 'the settings of the members insert stayed with that insert');
    });
  });

  describe('insert failures', () => {
    let h: Harness;
    before(async () => { h = await harness({ WXSYNC_BATCH_MAX_ROWS: '500', WXSYNC_BATCH_MAX_MS: '50' }); });
    after(async () => { await teardown(h); });

    it('delay but lose nothing, and nothing is committed past a failed batch meanwhile', async () => {
      const { topics } = h.t.config.kafka;
      const events = Array.from({ length: 5000 }, (_, n) => callbackEvent(APPID, openidOf(n), 'subscribe', T0 / 1000 + n));
      await produceAll(h.kafka, topics.userEvents, events.slice(0, 2500).map(eventRecord));
      let failing = true;
      let failures = 0;
      const consumer = await start(h, (writer) => ({
        async write(routed) {
          if (failing) {
            failures += 1;
            throw new Error('injected insert failure');
          }
          await writer.write(routed);
        },
      }));
      await waitFor('several failed attempts', 30_000, () => (failures >= 5 ? true : undefined));
      const committed = await h.kafka.committedOffsets(h.t.config.consumer.groupId, topics.userEvents);
      const committedWhileFailing = [...committed.values()].some((o) => o !== '-1' && o !== '0');
      await produceAll(h.kafka, topics.userEvents, events.slice(2500).map(eventRecord));
      failing = false;
      await waitCaughtUp(h, 60_000);
      assert.equal(committedWhileFailing, false);
      assert.ok(consumer.stats.retries >= 5);
      const db = h.t.config.clickhouse.database;
      const [count] = await rows<{ n: string }>(h.clickhouse, `SELECT uniqExact(id) AS n FROM ${db}.user_events`);
      assert.equal(Number(count?.n), events.length);
    });
  });

  describe('a record ClickHouse refuses though it passed its contract', () => {
    let h: Harness;
    before(async () => { h = await harness(); });
    after(async () => { await teardown(h); });

    it('loads every other row of its set, sends it alone to the DLQ with ClickHouse\'s message, and commits', async () => {
      const { topics } = h.t.config.kafka;
      const db = h.t.config.clickhouse.database;
      const poison = openidOf(4242);
      await h.clickhouse.command({ query: `ALTER TABLE ${db}.user_events ADD CONSTRAINT poison CHECK openid != '${poison}'` });
      await h.clickhouse.command({ query: `ALTER TABLE ${db}.snapshot_members ADD CONSTRAINT poison_member CHECK openid != '${poison}'` });
      const events = Array.from({ length: 300 }, (_, n) => callbackEvent(APPID, n === 150 ? poison : openidOf(n), 'subscribe', T0 / 1000 + n));
      await produceAll(h.kafka, topics.userEvents, events.map(eventRecord), 1000);
      const base = { v: 1, appid: APPID, snapshotId: 'snap-p' } as const;
      const page = (n: number, openids: string[]): OutRecord => ({ key: snapshotKey(base), value: encodeSnapshotRecord({
        ...base, kind: 'page', page: n, cursor: '', nextOpenid: openids.at(-1) ?? '', total: 5, openids, fetchedAt: T0 + n,
      }) });
      await produceAll(h.kafka, topics.snapshots, [
        { key: snapshotKey(base), value: encodeSnapshotRecord({ ...base, kind: 'begin', startedAt: T0 }) },
        page(0, [openidOf(1), openidOf(2)]), page(1, [openidOf(3), poison]), page(2, [openidOf(5)]), page(3, []),
        { key: snapshotKey(base), value: encodeSnapshotRecord({ ...base, kind: 'end', complete: true, pages: 4, openids: 5, total: 5, startedAt: T0, endedAt: T0 + 9 }) },
      ]);
      const consumer = await start(h);
      await waitCaughtUp(h, 60_000);

      const [loaded] = await rows<{ n: string }>(h.clickhouse, `SELECT count() AS n FROM ${db}.followers_current WHERE appid = '${APPID}'`);
      assert.equal(Number(loaded?.n), 299);
      const dlq = await dlqOf(h, 2);
      assert.equal(dlq.length, 2);
      const event = dlq.find((d) => d.source.topic === topics.userEvents);
      const member = dlq.find((d) => d.source.topic === topics.snapshots);
      assert.ok(event !== undefined && member !== undefined);
      assert.equal(event.code, 'RECORD_REFUSED');
      assert.match(event.reason, /VIOLATED_CONSTRAINT \(469\): Constraint `poison`/);
      assert.equal(event.source.key, `${APPID}:${poison}`);
      assert.equal(originalOf(event)['openid'], poison);
      assert.match(member.reason, /Constraint `poison_member`/);
      assert.equal(originalOf(member)['page'], 1, 'the whole page record');
      // The refused page's members are not there, so its `snapshots` row must not be either: the snapshot is not loaded.
      const [status] = await rows<Record<string, unknown>>(h.clickhouse, `SELECT loaded, pages_loaded FROM ${db}.snapshot_status WHERE snapshot_id = 'snap-p'`);
      assert.deepEqual(status, { loaded: 0, pages_loaded: '3' });
      assert.equal(consumer.stats.dlq, 2);
    });
  });

  describe('acceptance: a stream of 156 months with a poison record in it', () => {
    let h: Harness;
    before(async () => { h = await harness(); });
    after(async () => { await teardown(h); });

    it('loads every follower, sends the poison to the DLQ, and keeps flowing', async () => {
      const { topics } = h.t.config.kafka;
      const db = h.t.config.clickhouse.database;
      const poison = openidOf(999_999);
      await h.clickhouse.command({ query: `ALTER TABLE ${db}.user_events ADD CONSTRAINT poison CHECK openid != '${poison}'` });
      const users = 9;
      const latest = new Map<string, number>();
      const events: UserEvent[] = [];
      for (let month = 0; month < 156; month += 1) {
        for (let user = 0; user < users; user += 1) {
          const seconds = Date.UTC(2013, month, 1 + user * 3, user) / 1000;
          events.push(callbackEvent(APPID, openidOf(user), 'subscribe', seconds, { scene: `m${month}` }));
          latest.set(openidOf(user), seconds * 1000);
        }
      }
      events.splice(700, 0, callbackEvent(APPID, poison, 'subscribe', Date.UTC(2019, 5, 1) / 1000));
      assert.ok(events.length >= 1200);
      await produceAll(h.kafka, topics.userEvents, events.map(eventRecord));
      await start(h);
      await waitCaughtUp(h, 60_000);

      const followers = await rows<{ openid: string; subscribed: number; ms: string; scene: string }>(h.clickhouse,
        `SELECT openid, subscribed, toUnixTimestamp64Milli(subscribe_time) AS ms, scene FROM ${db}.followers_current WHERE appid = '${APPID}' ORDER BY openid`);
      assert.deepEqual(followers.map((f) => [f.openid, f.subscribed, Number(f.ms), f.scene]),
        [...latest].sort(([a], [b]) => a.localeCompare(b)).map(([openid, ms]) => [openid, 1, ms, 'm155']));
      const [stored] = await rows<{ n: string; months: string }>(h.clickhouse,
        `SELECT count() AS n, uniqExact(toYYYYMM(at)) AS months FROM ${db}.user_events FINAL WHERE appid = '${APPID}'`);
      assert.deepEqual(stored, { n: String(events.length - 1), months: '156' });
      const dlq = await dlqOf(h, 1);
      assert.deepEqual(dlq.map((d) => [d.code, originalOf(d)['openid']]), [['RECORD_REFUSED', poison]]);

      // Records produced afterwards are loaded and committed: nothing is stuck behind the poison.
      const later = [100, 101, 102].map((n) => callbackEvent(APPID, openidOf(n), 'subscribe', Date.UTC(2026, 0, 5) / 1000 + n));
      await produceAll(h.kafka, topics.userEvents, later.map(eventRecord));
      await waitCaughtUp(h, 30_000);
      const [count] = await rows<{ n: string }>(h.clickhouse, `SELECT count() AS n FROM ${db}.followers_current WHERE appid = '${APPID}'`);
      assert.equal(Number(count?.n), users + later.length);
    });
  });

  describe('a transient ClickHouse failure', () => {
    let h: Harness;
    before(async () => { h = await harness({ WXSYNC_CONSUMER_STALL_S: '1', WXSYNC_BATCH_MAX_MS: '50' }); });
    after(async () => { await teardown(h); });

    it('is retried, never sent to the DLQ; the role reports not ready and stalled meanwhile, and recovers', async () => {
      const { topics } = h.t.config.kafka;
      let failing = true;
      let failures = 0;
      // A client whose inserts fail as a server out of memory would: a code outside the deterministic list.
      const flaky = new Proxy(h.clickhouse, {
        get(target, property) {
          const value: unknown = Reflect.get(target, property);
          if (property === 'exec') {
            return (params: Parameters<ClickHouseClient['exec']>[0]) => {
              if (failing) {
                failures += 1;
                return Promise.reject(new ClickHouseError({ message: 'Memory limit (total) exceeded', code: '241', type: 'MEMORY_LIMIT_EXCEEDED' }));
              }
              return target.exec(params);
            };
          }
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
      const registry = createRegistry();
      const role = await startConsumerRole({ config: h.t.config, kafka: h.kafka, clickhouse: flaky, logger: createLogger(h.t.config.logLevel), registry });
      try {
        const events = Array.from({ length: 50 }, (_, n) => callbackEvent(APPID, openidOf(n), 'subscribe', T0 / 1000 + n));
        await produceAll(h.kafka, topics.userEvents, events.map(eventRecord));
        await waitFor('the consumer to join and fail a few writes', 30_000, () => (failures >= 3 ? true : undefined));
        await waitFor('the stall to be reported', 10_000, () => (role.ready() ? undefined : true), 50);
        const metrics = await registry.metrics();
        assert.match(metrics, /^wxsync_consumer_stalled 1$/m);
        assert.ok(Number(/^wxsync_consumer_seconds_since_write (\S+)$/m.exec(metrics)?.[1]) > 1);
        failing = false;
        await waitCaughtUp(h, 30_000);
        await waitFor('the role to be ready again', 5000, () => (role.ready() ? true : undefined), 50);
        assert.match(await registry.metrics(), /^wxsync_consumer_stalled 0$/m);
        assert.match(await registry.metrics(), /^wxsync_consumer_write_retries_total [1-9]/m);
        const db = h.t.config.clickhouse.database;
        const [count] = await rows<{ n: string }>(h.clickhouse, `SELECT uniqExact(id) AS n FROM ${db}.user_events`);
        assert.equal(Number(count?.n), events.length);
        assert.deepEqual(await h.kafka.endOffsets(topics.dlq), new Map([[0, '0']]), 'nothing dead-lettered');
      } finally {
        await role.stop();
      }
    });
  });
});
