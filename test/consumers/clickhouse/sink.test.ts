import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { ClickHouseError } from '@clickhouse/client';
import { eventOrder, routeRecords } from '../../../consumers/clickhouse/route.ts';
import { clickHouseWriter } from '../../../consumers/clickhouse/sink.ts';
import { createClickHouse, type ClickHouseClient } from '../../../lib/clickhouse.ts';
import { loadConfig } from '../../../lib/config.ts';
import type { DlqRecord } from '../../../lib/contracts/dlq.ts';
import { correctionEventId } from '../../../lib/contracts/event-id.ts';
import { MAX_MS } from '../../../lib/contracts/fields.ts';
import { encodeSnapshotRecord, type SnapshotRecord } from '../../../lib/contracts/snapshot.ts';
import { encodeUserEvent, type UserEvent } from '../../../lib/contracts/user-event.ts';
import type { InRecord, OutRecord, RecordProducer } from '../../../lib/kafka.ts';
import { silentLogger } from '../../../lib/logger.ts';
import { migrate } from '../../../lib/migrate.ts';
import { T0, callbackEvent, openidOf } from '../../support/events.ts';

const { topics } = loadConfig({}).kafka;
let offset = 0;
const eventIn = (event: UserEvent): InRecord => ({
  topic: topics.userEvents, partition: 0, offset: String(offset++), key: Buffer.from(`${event.appid}:${event.openid}`), value: encodeUserEvent(event), timestamp: '0',
});
const snapshotIn = (record: SnapshotRecord): InRecord => ({
  topic: topics.snapshots, partition: 1, offset: String(offset++), key: null, value: encodeSnapshotRecord(record), timestamp: '0',
});
const page = (n: number, openids: string[], fetchedAt = T0 + n): SnapshotRecord => ({
  v: 1, kind: 'page', appid: 'wxapp', snapshotId: 's1', page: n, cursor: '', nextOpenid: openids.at(-1) ?? '', total: 9, openids, fetchedAt,
});

/** A DLQ producer that keeps what it is sent. */
function dlqSink(): RecordProducer & { readonly sent: DlqRecord[] } {
  const sent: DlqRecord[] = [];
  return {
    sent,
    send(_topic: string, records: readonly OutRecord[]) {
      for (const r of records) sent.push(JSON.parse(r.value.toString()) as DlqRecord);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

interface FakeInsert { readonly table: string; readonly body: string }

/** A client whose inserts fail with `fail(table, body)` when it returns an error, and are recorded otherwise. */
function fakeClient(fail: (table: string, body: string) => Error | undefined): { client: ClickHouseClient; inserts: FakeInsert[]; attempts: FakeInsert[] } {
  const inserts: FakeInsert[] = [];
  const attempts: FakeInsert[] = [];
  const client = {
    async exec(params: { query: string; values: Readable }) {
      const insert = { table: /INSERT INTO db\.(\w+)/.exec(params.query)?.[1] ?? '', body: await text(params.values) };
      attempts.push(insert);
      const error = fail(insert.table, insert.body);
      if (error !== undefined) throw error;
      inserts.push(insert);
      return { stream: Readable.from([]) };
    },
  } as unknown as ClickHouseClient;
  return { client, inserts, attempts };
}

const violated = (): ClickHouseError => new ClickHouseError({ message: "Constraint `poison` for table db.user_events is violated at row 3", code: '469', type: 'VIOLATED_CONSTRAINT' });
const lines = (inserts: readonly FakeInsert[], table: string): string[] => inserts.filter((i) => i.table === table).flatMap((i) => i.body.split('\n').filter((l) => l !== ''));

describe('clickHouseWriter', () => {
  it('stores the members of a page before the page row that makes snapshot_status count it as loaded', async () => {
    const inserts: { query: string; body: string; settings: unknown }[] = [];
    const client = {
      async exec(params: { query: string; values: Readable; clickhouse_settings?: unknown }) {
        inserts.push({ query: params.query, body: await text(params.values), settings: params.clickhouse_settings });
        return { stream: Readable.from([]) };
      },
    } as unknown as ClickHouseClient;
    const noDlq: RecordProducer = { send: () => Promise.reject(new Error('nothing is rejected here')), close: () => Promise.resolve() };
    const record = encodeSnapshotRecord({
      v: 1, kind: 'page', appid: 'wxapp', snapshotId: 's1', page: 0, cursor: '', nextOpenid: 'o-2', total: 2, openids: ['o_1', 'o-2'], fetchedAt: T0 + 7,
    });
    await clickHouseWriter(client, 'db', noDlq, 'dlq').write(
      routeRecords([{ topic: topics.snapshots, partition: 0, offset: '0', key: null, value: record, timestamp: '0' }], topics, T0),
    );
    assert.deepEqual(inserts.map((i) => /INSERT INTO db\.(\w+)/.exec(i.query)?.[1]), ['snapshot_member_pages', 'snapshots']);
    const members = inserts[0];
    assert.equal(members?.body, "wxapp\ts1\t0\t1767225600.007\t['o_1','o-2']\n");
    assert.match(members.query, /\(appid, snapshot_id, page, fetched_at, openids\)/);
    // In the query, not as clickhouse_settings: chDB would SET those for the rest of the session.
    assert.match(members.query, /SETTINGS optimize_on_insert = 0, max_partitions_per_insert_block = 0 FORMAT TabSeparated$/);
    assert.ok(inserts.every((i) => i.settings === undefined));
  });

  it('bisects a set ClickHouse refuses deterministically: the rest loads, the refused record goes to the DLQ whole', async () => {
    const events = Array.from({ length: 100 }, (_, n) => callbackEvent('wxapp', openidOf(n), 'subscribe', T0 / 1000 + n));
    const poison = events[37]?.openid ?? '';
    const { client, inserts, attempts } = fakeClient((table, body) => (table === 'user_events' && body.includes(poison) ? violated() : undefined));
    const dlq = dlqSink();
    const told: DlqRecord[] = [];
    const records = events.map(eventIn);
    await clickHouseWriter(client, 'db', dlq, 'dlq', { now: () => 42, onRefused: (r) => { told.push(...r); } }).write(routeRecords(records, topics, 1));
    const stored = lines(inserts, 'user_events');
    assert.equal(stored.length, 99);
    assert.ok(!stored.some((l) => l.includes(poison)));
    assert.equal(new Set(stored).size, 99, 'each row stored once');
    assert.ok(attempts.length <= 2 * Math.ceil(Math.log2(100)) + 1, `${attempts.length} inserts to isolate one row`);
    assert.equal(dlq.sent.length, 1);
    const refused = dlq.sent[0];
    assert.ok(refused !== undefined);
    assert.equal(refused.code, 'RECORD_REFUSED');
    assert.match(refused.reason, /VIOLATED_CONSTRAINT \(469\): Constraint `poison` for table db\.user_events is violated/);
    assert.deepEqual(refused.source, { topic: topics.userEvents, partition: 0, offset: records[37]?.offset, key: `wxapp:${poison}` });
    assert.equal(Buffer.from(refused.value, 'base64').toString(), records[37]?.value?.toString());
    assert.equal(refused.at, 42);
    assert.deepEqual(told, dlq.sent);
  });

  it('writes no `snapshots` row for a page whose members are refused, and sends that page record once', async () => {
    const records = [snapshotIn(page(0, ['oA', 'oB'])), snapshotIn(page(1, ['oC', 'oPoison'])), snapshotIn(page(2, ['oD']))];
    const { client, inserts } = fakeClient((table, body) => (table === 'snapshot_member_pages' && body.includes('oPoison') ? violated() : undefined));
    const dlq = dlqSink();
    await clickHouseWriter(client, 'db', dlq, 'dlq').write(routeRecords(records, topics, 1));
    assert.deepEqual(lines(inserts, 'snapshot_member_pages').map((l) => l.split('\t')[2]).sort(), ['0', '2']);
    assert.deepEqual(lines(inserts, 'snapshots').map((l) => l.split('\t')[3]).sort(), ['0', '2'], 'page 1 does not count as loaded');
    assert.deepEqual(dlq.sent.map((d) => d.source.offset), [records[1]?.offset]);
  });

  it('retries, never bisects nor dead-letters, a failure that may pass later', async () => {
    for (const error of [
      new ClickHouseError({ message: 'Memory limit (total) exceeded', code: '241', type: 'MEMORY_LIMIT_EXCEEDED' }),
      new ClickHouseError({ message: 'Too many parts (300)', code: '252', type: 'TOO_MANY_PARTS' }),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' }),
    ]) {
      const { client, attempts } = fakeClient(() => error);
      const dlq = dlqSink();
      const routed = routeRecords([0, 1, 2, 3].map((n) => eventIn(callbackEvent('wxapp', openidOf(n), 'subscribe', T0 / 1000 + n))), topics, 1);
      await assert.rejects(clickHouseWriter(client, 'db', dlq, 'dlq').write(routed), { code: 'CLICKHOUSE_FAILED', retriable: true });
      assert.equal(attempts.length, 1, `${error.message}: the whole set is left to the pipeline's retry`);
      assert.equal(dlq.sent.length, 0);
    }
  });

  it('leaves a transient failure met while bisecting to the retry of the whole set', async () => {
    let calls = 0;
    const { client } = fakeClient((table, body) => {
      calls += 1;
      if (calls === 1) return violated();
      if (body.includes(openidOf(3))) return new ClickHouseError({ message: 'Timeout exceeded', code: '159', type: 'TIMEOUT_EXCEEDED' });
      return undefined;
    });
    const dlq = dlqSink();
    const routed = routeRecords([0, 1, 2, 3].map((n) => eventIn(callbackEvent('wxapp', openidOf(n), 'subscribe', T0 / 1000 + n))), topics, 1);
    await assert.rejects(clickHouseWriter(client, 'db', dlq, 'dlq').write(routed), { code: 'CLICKHOUSE_FAILED', retriable: true });
    assert.equal(dlq.sent.length, 0);
  });
});

describe('clickHouseWriter against chDB', () => {
  const database = 'wx_sink';
  let dir: string;
  let client: ClickHouseClient;
  const query = async <T>(sql: string): Promise<T[]> => (await client.query({ query: sql, format: 'JSONEachRow' })).json<T>();

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'wxsync-sink-'));
    client = createClickHouse({ target: { kind: 'embedded', path: dir }, database });
    await migrate(client, database, silentLogger());
  });
  after(async () => {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads events of 156 months in one insert, and stores the latest allowed `at` and its ord exactly', async () => {
    const events = Array.from({ length: 156 }, (_, m) => callbackEvent('wxmonths', openidOf(m % 7), 'subscribe', Date.UTC(2013, m, 1 + (m % 28)) / 1000));
    const last = { ...callbackEvent('wxmonths', openidOf(99), 'subscribe', 0), at: MAX_MS, receivedAt: MAX_MS };
    const dlq = dlqSink();
    await clickHouseWriter(client, database, dlq, 'dlq').write(routeRecords([...events, last].map(eventIn), topics, 1));
    assert.equal(dlq.sent.length, 0);
    const [count] = await query<{ n: string; months: string }>(`SELECT count() AS n, uniqExact(toYYYYMM(at)) AS months FROM ${database}.user_events FINAL WHERE appid = 'wxmonths'`);
    assert.deepEqual(count, { n: '157', months: '157' });
    const [stored] = await query<{ ms: string; ord: string }>(
      `SELECT toUnixTimestamp64Milli(at) AS ms, toString(ord) AS ord FROM ${database}.user_events WHERE openid = '${openidOf(99)}'`);
    assert.deepEqual(stored, { ms: String(MAX_MS), ord: eventOrder(last).toString() });
  });

  it('keeps one row per id when a correction is re-emitted at another `at`, and the later `at` wins in followers', async () => {
    const openid = openidOf(500);
    const id = correctionEventId('snap-a', openid, 'subscribe');
    const correction = (at: number): UserEvent => ({
      v: 1, id, appid: 'wxcorr', openid, type: 'subscribe', at, source: 'correction', receivedAt: T0, correction: { snapshotId: 'snap-a', rule: 'missing' },
    });
    const writer = clickHouseWriter(client, database, dlqSink(), 'dlq');
    await writer.write(routeRecords([eventIn(correction(Date.UTC(2015, 2, 3)))], topics, 1));
    await writer.write(routeRecords([eventIn(correction(Date.UTC(2019, 8, 9)))], topics, 1));
    const [rows] = await query<{ n: string }>(`SELECT count() AS n FROM ${database}.user_events FINAL WHERE id = '${id}'`);
    assert.equal(rows?.n, '1');
    const [follower] = await query<{ ms: string }>(`SELECT toUnixTimestamp64Milli(subscribe_time) AS ms FROM ${database}.followers_current WHERE openid = '${openid}'`);
    assert.equal(follower?.ms, String(Date.UTC(2019, 8, 9)));
  });

  it('keeps the rows of a re-fetched page apart from the earlier fetch, and an exact redelivery collapses', async () => {
    const writer = clickHouseWriter(client, database, dlqSink(), 'dlq');
    const first = snapshotIn(page(0, ['oA', 'oB', 'oC'], T0 + 100));
    await writer.write(routeRecords([first, first], topics, 1));
    await writer.write(routeRecords([first], topics, 1));
    await writer.write(routeRecords([snapshotIn(page(0, ['oA', 'oC', 'oD'], T0 + 5000))], topics, 1));
    const members = await query<{ openid: string; fetched: string }>(
      `SELECT openid, toUnixTimestamp64Milli(fetched_at) AS fetched FROM ${database}.snapshot_members FINAL WHERE snapshot_id = 's1' ORDER BY fetched, openid`);
    assert.deepEqual(members.map((m) => `${m.openid}@${Number(m.fetched) - T0}`), ['oA@100', 'oB@100', 'oC@100', 'oA@5000', 'oC@5000', 'oD@5000']);
    const latest = await query<{ openid: string }>(`
      SELECT openid FROM ${database}.snapshot_members
      WHERE snapshot_id = 's1' AND (page, fetched_at) IN (SELECT page, max(fetched_at) FROM ${database}.snapshot_members WHERE snapshot_id = 's1' GROUP BY page)
      GROUP BY openid ORDER BY openid`);
    assert.deepEqual(latest.map((m) => m.openid), ['oA', 'oC', 'oD'], "a reader taking each page's latest fetch sees WeChat's latest answer");
  });

  it('isolates a row that a real constraint refuses and loads the rest', async () => {
    await client.command({ query: `ALTER TABLE ${database}.user_events ADD CONSTRAINT poison CHECK openid != '${openidOf(777)}'` });
    try {
      const dlq = dlqSink();
      const events = [770, 771, 777, 772].map((n) => callbackEvent('wxpoison', openidOf(n), 'subscribe', T0 / 1000 + n));
      await clickHouseWriter(client, database, dlq, 'dlq').write(routeRecords(events.map(eventIn), topics, 1));
      const stored = await query<{ openid: string }>(`SELECT openid FROM ${database}.followers_current WHERE appid = 'wxpoison' ORDER BY openid`);
      assert.deepEqual(stored.map((r) => r.openid), [770, 771, 772].map(openidOf));
      assert.equal(dlq.sent.length, 1);
      assert.match(dlq.sent[0]?.reason ?? '', /VIOLATED_CONSTRAINT \(469\): Constraint `poison`/);
    } finally {
      await client.command({ query: `ALTER TABLE ${database}.user_events DROP CONSTRAINT poison` });
    }
  });
});
