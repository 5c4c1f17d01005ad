import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { emptyRouted, routeRecords } from '../../consumers/clickhouse/route.ts';
import { clickHouseWriter } from '../../consumers/clickhouse/sink.ts';
import { createClickHouse, type ClickHouseClient } from '../../lib/clickhouse.ts';
import { loadConfig } from '../../lib/config.ts';
import { encodeSnapshotRecord } from '../../lib/contracts/snapshot.ts';
import { encodeUserEvent, type UserEvent } from '../../lib/contracts/user-event.ts';
import type { InRecord, RecordProducer } from '../../lib/kafka.ts';
import { silentLogger } from '../../lib/logger.ts';
import { SQL_DIR, loadMigrations, migrate } from '../../lib/migrate.ts';
import { callbackEvent, openidOf } from '../support/events.ts';

// sql/009, sql/010 and sql/013: in-place upgrades of a store created before issue 11, run by migrate() at start-up.

// The schema of a store created before issue 11: user_events partitioned by month, snapshot_members and
// snapshot_member_pages without fetched_at. Verbatim from sql/002, 005 and 008 as they were.
const OLD_SCHEMA: Readonly<Record<string, string>> = {
  '002_user_events.sql': `
CREATE TABLE IF NOT EXISTS {{db}}.user_events
(
    id String,
    appid LowCardinality(String),
    openid String,
    openid_key UInt64 DEFAULT sipHash64(openid),
    type Enum8('subscribe' = 1, 'unsubscribe' = 2),
    at DateTime64(3, 'UTC'),
    source Enum8('callback' = 1, 'correction' = 2),
    scene String DEFAULT '',
    qr_scene String DEFAULT '',
    ticket String DEFAULT '',
    received_at DateTime64(3, 'UTC'),
    correction_snapshot_id String DEFAULT '',
    correction_rule LowCardinality(String) DEFAULT '',
    ord UInt64,
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (appid, openid_key, id);
`,
  '005_snapshot_members.sql': `
CREATE TABLE IF NOT EXISTS {{db}}.snapshot_members
(
    appid LowCardinality(String),
    snapshot_id String,
    openid_key UInt64 DEFAULT sipHash64(openid),
    openid String,
    page UInt32
)
ENGINE = ReplacingMergeTree
ORDER BY (appid, snapshot_id, openid_key, openid);
`,
  '008_snapshot_member_pages.sql': `
CREATE TABLE IF NOT EXISTS {{db}}.snapshot_member_pages
(
    appid LowCardinality(String),
    snapshot_id String,
    page UInt32,
    openids Array(String)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.snapshot_member_pages_mv TO {{db}}.snapshot_members
(
    appid LowCardinality(String),
    snapshot_id String,
    openid String,
    page UInt32
)
AS SELECT appid, snapshot_id, openid, page
FROM {{db}}.snapshot_member_pages
ARRAY JOIN openids AS openid;
`,
};

const DB = 'wx_old';
const APPID = 'wxupgrade0000001';
const USERS = 8;
const MONTHS = 156;
const { topics } = loadConfig({}).kafka;
const noDlq: RecordProducer = { send: () => Promise.reject(new Error('nothing is refused here')), close: () => Promise.resolve() };
let offset = 0;
const inRecord = (topic: string, value: Buffer): InRecord => ({ topic, partition: 0, offset: String(offset++), key: null, value, timestamp: '0' });

/** One event per user and month, 2013-01 to 2025-12: the last one of each user decides the follower. */
function monthlyEvents(): UserEvent[] {
  const events: UserEvent[] = [];
  for (let month = 0; month < MONTHS; month += 1) {
    for (let user = 0; user < USERS; user += 1) {
      const type = (month + user) % 3 === 0 ? 'unsubscribe' : 'subscribe';
      events.push(callbackEvent(APPID, openidOf(user), type, Date.UTC(2013, month, 1 + user, 12) / 1000, type === 'subscribe' ? { scene: `m${month}` } : {}));
    }
  }
  return events;
}

interface OldStore {
  readonly dir: string;
  readonly client: ClickHouseClient;
  readonly events: UserEvent[];
  readonly followers: unknown[];
  readonly eventsDigest: unknown[];
}

const query = async <T>(client: ClickHouseClient, sql: string): Promise<T[]> => (await client.query({ query: sql, format: 'JSONEachRow' })).json<T>();
const followersOf = (client: ClickHouseClient): Promise<unknown[]> =>
  query(client, `SELECT openid, subscribed, scene, toString(subscribe_time) AS s, toString(unsubscribe_time) AS u FROM ${DB}.followers_current ORDER BY openid`);
// Every stored column but loaded_at (a duplicate differs from its original only there, and FINAL may keep either).
const digestOf = (client: ClickHouseClient): Promise<unknown[]> => query(client, `
  SELECT count() AS n, uniqExact(id) AS ids, uniqExact(toYYYYMM(at)) AS months, groupBitXor(cityHash64(id, appid, openid, openid_key, type, at, source, scene,
    qr_scene, ticket, received_at, correction_snapshot_id, correction_rule, ord)) AS digest
  FROM ${DB}.user_events FINAL`);

/** A store of the old schema, filled the way the old consumer filled it (no INSERT spanning 100 months). */
async function oldStore(): Promise<OldStore> {
  const sqlDir = mkdtempSync(path.join(tmpdir(), 'wxsync-oldsql-'));
  for (const file of ['001_database.sql', '003_followers.sql', '004_snapshots.sql', '006_user_profiles.sql']) copyFileSync(path.join(SQL_DIR, file), path.join(sqlDir, file));
  for (const [file, text] of Object.entries(OLD_SCHEMA)) writeFileSync(path.join(sqlDir, file), text);
  const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-migrate-'));
  const client = createClickHouse({ target: { kind: 'embedded', path: dir }, database: DB });
  await migrate(client, DB, silentLogger(), sqlDir);
  rmSync(sqlDir, { recursive: true, force: true });

  const events = monthlyEvents();
  const writer = clickHouseWriter(client, DB, noDlq, 'dlq');
  for (let year = 0; year < MONTHS / 12; year += 1) {
    const records = events.slice(year * 12 * USERS, (year + 1) * 12 * USERS).map((e) => inRecord(topics.userEvents, encodeUserEvent(e)));
    await writer.write(routeRecords(records, topics, 1));
  }
  // A redelivered event, a second copy until a merge.
  await writer.write(routeRecords([inRecord(topics.userEvents, encodeUserEvent(events[5] as UserEvent))], topics, 1));
  // A snapshot loaded by the old consumer: members without fetched_at, page rows in `snapshots` with it.
  await client.command({ query: `INSERT INTO ${DB}.snapshot_member_pages (appid, snapshot_id, page, openids) VALUES ('${APPID}', 'old-snap', 0, ['oA', 'oB']), ('${APPID}', 'old-snap', 1, ['oC'])` });
  const pages = routeRecords([0, 1].map((page) => inRecord(topics.snapshots, encodeSnapshotRecord({
    v: 1, kind: 'page', appid: APPID, snapshotId: 'old-snap', page, cursor: '', nextOpenid: '', total: 3, openids: [], fetchedAt: Date.UTC(2024, 0, 1) + page,
  }))), topics, 1);
  await writer.write({ ...emptyRouted(), snapshots: pages.snapshots });

  const [partitioned] = await query<{ partition_key: string }>(client, `SELECT partition_key FROM system.tables WHERE database = '${DB}' AND name = 'user_events'`);
  assert.equal(partitioned?.partition_key, 'toYYYYMM(at)', 'the fixture is a store of the old schema');
  return { dir, client, events, followers: await followersOf(client), eventsDigest: await digestOf(client) };
}

/** What every upgraded store must show, whatever state the upgrade started from. */
async function assertUpgraded(store: OldStore): Promise<void> {
  const { client, events } = store;
  const tables = await query<{ name: string; partition_key: string; sorting_key: string }>(client,
    `SELECT name, partition_key, sorting_key FROM system.tables WHERE database = '${DB}' AND name IN ('user_events', 'snapshot_members') ORDER BY name`);
  assert.deepEqual(tables, [
    { name: 'snapshot_members', partition_key: '(appid, snapshot_id)', sorting_key: 'appid, snapshot_id, openid_key, openid, page, fetched_at' },
    { name: 'user_events', partition_key: '', sorting_key: 'appid, openid_key, id' },
  ]);
  const leftovers = await query<{ name: string }>(client, `SELECT name FROM system.tables WHERE database = '${DB}' AND (name LIKE '%\\_by\\_fetch' OR name LIKE '%\\_by\\_snapshot' OR name LIKE '%\\_unpartitioned')`);
  assert.deepEqual(leftovers, []);

  assert.deepEqual(await digestOf(client), store.eventsDigest, 'every event kept, column for column');
  assert.deepEqual(await digestOf(client), [{ ...(store.eventsDigest[0] as object), n: String(events.length), months: String(MONTHS) }]);
  assert.deepEqual(await followersOf(client), store.followers, 'followers untouched: nothing folded twice into another state');

  const members = await query<{ openid: string; page: number; ms: string }>(client,
    `SELECT openid, page, toUnixTimestamp64Milli(fetched_at) AS ms FROM ${DB}.snapshot_members FINAL WHERE snapshot_id = 'old-snap' ORDER BY openid`);
  assert.deepEqual(members.map((m) => `${m.openid}/${m.page}@${Number(m.ms) - Date.UTC(2024, 0, 1)}`), ['oA/0@0', 'oB/0@0', 'oC/1@1'], 'old members carry their page\'s fetchedAt');

  // The new consumer writes into the upgraded store, and each new event is folded into followers exactly once.
  const writer = clickHouseWriter(client, DB, noDlq, 'dlq');
  const late = [
    callbackEvent(APPID, openidOf(100), 'subscribe', Date.UTC(2026, 1, 1) / 1000),
    callbackEvent(APPID, openidOf(0), 'unsubscribe', Date.UTC(2026, 1, 2) / 1000),
    callbackEvent(APPID, openidOf(1), 'subscribe', Date.UTC(2012, 0, 1) / 1000),
  ];
  await writer.write(routeRecords([
    ...late.map((e) => inRecord(topics.userEvents, encodeUserEvent(e))),
    inRecord(topics.snapshots, encodeSnapshotRecord({ v: 1, kind: 'page', appid: APPID, snapshotId: 'new-snap', page: 0, cursor: '', nextOpenid: 'oZ', total: 1, openids: ['oZ'], fetchedAt: Date.UTC(2026, 1, 3) })),
  ], topics, 1));
  const folded = await query<{ openid: string; states: string }>(client,
    `SELECT openid, count() AS states FROM ${DB}.followers WHERE openid IN ('${openidOf(100)}', '${openidOf(0)}') AND last_ord >= ${Date.UTC(2026, 0, 1)} * 4194304 GROUP BY openid ORDER BY openid`);
  assert.deepEqual(folded, [{ openid: openidOf(0), states: '1' }, { openid: openidOf(100), states: '1' }]);
  const now = await query<{ openid: string; subscribed: number }>(client,
    `SELECT openid, subscribed FROM ${DB}.followers_current WHERE openid IN ('${openidOf(100)}', '${openidOf(0)}', '${openidOf(1)}') ORDER BY openid`);
  const lastOf1 = events.filter((e) => e.openid === openidOf(1)).at(-1);
  assert.deepEqual(now, [
    { openid: openidOf(0), subscribed: 0 }, { openid: openidOf(1), subscribed: lastOf1?.type === 'subscribe' ? 1 : 0 }, { openid: openidOf(100), subscribed: 1 },
  ], 'a 2012 event does not beat later ones');
  const [page] = await query<{ ms: string }>(client, `SELECT toUnixTimestamp64Milli(fetched_at) AS ms FROM ${DB}.snapshot_members WHERE snapshot_id = 'new-snap'`);
  assert.equal(page?.ms, String(Date.UTC(2026, 1, 3)));

  // Upgraded, the store runs no more at each start-up than a store created with the new schema.
  assert.equal(await migrate(client, DB, silentLogger()), freshRerunStatements);
}

/** Statements a store created with today's schema runs at each later start-up. */
let freshRerunStatements = -1;
async function countFreshRerun(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-migrate-'));
  const client = createClickHouse({ target: { kind: 'embedded', path: dir }, database: DB });
  try {
    await migrate(client, DB, silentLogger());
    freshRerunStatements = await migrate(client, DB, silentLogger());
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the first `count` statements of one migration file, as a start-up that died after them would have. */
async function runPartly(client: ClickHouseClient, file: string, count: number): Promise<void> {
  const migration = (await loadMigrations(DB)).find((m) => m.file === file);
  const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-partsql-'));
  try {
    const text = (migration?.statements ?? []).slice(0, count).map((st) => `${st.when === undefined ? '' : `-- when: ${st.when}\n`}${st.sql};\n`).join('\n');
    writeFileSync(path.join(dir, file), text);
    await migrate(client, DB, silentLogger(), dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('upgrading a store of the old schema', { timeout: 120_000 }, () => {
  before(countFreshRerun);
  const closeStore = async (store: OldStore): Promise<void> => {
    await store.client.close();
    rmSync(store.dir, { recursive: true, force: true });
  };

  it('unpartitions user_events keeping every event of 156 months, gives snapshot_members fetched_at, and keeps folding into followers', async () => {
    const store = await oldStore();
    try {
      await migrate(store.client, DB, silentLogger());
      await assertUpgraded(store);
    } finally {
      await closeStore(store);
    }
  });

  it('keeps sql/011\'s follower_keys complete and folding for a store that had it on the partitioned table', async () => {
    const store = await oldStore();
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-011-'));
    try {
      for (const file of ['007_reconcile.sql', '011_reconcile_keys.sql']) copyFileSync(path.join(SQL_DIR, file), path.join(dir, file));
      await migrate(store.client, DB, silentLogger(), dir);
      const [view] = await query<{ n: string }>(store.client, `SELECT count() AS n FROM system.tables WHERE database = '${DB}' AND name = 'follower_keys_mv'`);
      assert.equal(view?.n, '1', 'the fixture has the view on the partitioned table');
      const keys = async (): Promise<unknown[]> =>
        query(store.client, `SELECT openid_key, toString(last_ord) AS o FROM ${DB}.follower_keys FINAL ORDER BY openid_key`);
      const before = await keys();
      await migrate(store.client, DB, silentLogger());
      assert.deepEqual(await keys(), before);
      await assertUpgraded(store);
      const [fresh] = await query<{ n: string }>(store.client,
        `SELECT count() AS n FROM ${DB}.follower_keys FINAL WHERE openid_key = sipHash64('${openidOf(100)}') AND last_ord >= ${Date.UTC(2026, 1, 1)} * 4194304`);
      assert.equal(fresh?.n, '1', 'an event loaded after the upgrade reaches follower_keys');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await closeStore(store);
    }
  });

  for (const [when, file, count] of [
    ['after a partial copy, with the followers view dropped', '009_user_events_unpartitioned.sql', 4],
    ['after the swap, before the views were made again', '009_user_events_unpartitioned.sql', 6],
    ['after the members\' view was dropped, before their swap', '010_snapshot_members_fetched_at.sql', 5],
    ['after the members\' swap, before their view was made again', '010_snapshot_members_fetched_at.sql', 6],
    ['after the members were copied into partitions, before their view was dropped', '013_snapshot_history.sql', 3],
    ['after the members\' view was dropped, before the partitioned swap', '013_snapshot_history.sql', 4],
    ['after the partitioned swap, before the members\' view was made again', '013_snapshot_history.sql', 5],
  ] as const) {
    it(`finishes at the next start-up an upgrade that died ${when}`, async () => {
      const store = await oldStore();
      try {
        if (file !== '009_user_events_unpartitioned.sql') await runPartly(store.client, '009_user_events_unpartitioned.sql', 99);
        if (file === '013_snapshot_history.sql') await runPartly(store.client, '010_snapshot_members_fetched_at.sql', 99);
        await runPartly(store.client, file, count);
        if (count === 4 && file.startsWith('009')) {
          // Half a copy: the next start-up must start it again rather than swap it in.
          await store.client.command({ query: `TRUNCATE TABLE ${DB}.user_events_unpartitioned` });
          await store.client.command({ query: `INSERT INTO ${DB}.user_events_unpartitioned SELECT * FROM ${DB}.user_events LIMIT 10` });
        }
        await migrate(store.client, DB, silentLogger());
        await assertUpgraded(store);
      } finally {
        await closeStore(store);
      }
    });
  }
});
