import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { routeRecords } from '../../../consumers/clickhouse/route.ts';
import { clickHouseWriter } from '../../../consumers/clickhouse/sink.ts';
import { createClickHouse, type ClickHouseClient } from '../../../lib/clickhouse.ts';
import { loadConfig } from '../../../lib/config.ts';
import { encodeSnapshotRecord, type SnapshotRecord } from '../../../lib/contracts/snapshot.ts';
import { encodeUserEvent, type UserEvent } from '../../../lib/contracts/user-event.ts';
import { ErrorCode, isWxsyncError } from '../../../lib/errors.ts';
import type { InRecord, RecordProducer } from '../../../lib/kafka.ts';
import { silentLogger } from '../../../lib/logger.ts';
import { migrate } from '../../../lib/migrate.ts';
import { snapshotHistory, type DifferenceRow, type SnapshotHistory } from '../../../producers/reconcile/compare.ts';
import { callbackEvent, openidOf } from '../../support/events.ts';

// The comparison in ClickHouse (sql/013 and compare.ts) over rows loaded by the consumer's own writer, against
// figures worked out by hand. δ = 60 s; s1 ran 10:00–10:10 on day 1, s3 10:00–10:10 on day 2 (s2, between, ended
// incomplete), so a callback explains a difference from 09:59 on day 1 to 10:11 on day 2.
//
//   user  s1   s3          events                                                        expected
//   u0    yes  yes         —                                                             no difference
//   u1    yes  —           subscribe long ago (QR spring); callback unsubscribe day 1    removed, explained, QR / spring
//   u2    yes  yes (twice) —                                                             no difference (on two pages of s1)
//   u3    yes  —           callback subscribe 2025 (no scene); correction unsubscribe    removed, unexplained ('' / '')
//   u4    yes  —           callback unsubscribe 30 s before s1 began (inside δ)          removed, explained ('' / '')
//   u5    —    yes         callback subscribe day 1 evening (QR autumn)                  added, explained, QR / autumn
//   u6    —    yes         correction subscribe (ADD_SCENE_SEARCH)                       added, unexplained, SEARCH / ''
//   u7    —    yes         callback subscribes 2 h before s1 (QR winter) and after s3    added, unexplained, QR / winter
//   u9    —    first fetch of a page s3 fetched again                                   no difference (not in the latest fetch)
const DB = 'wx_compare';
const APPID = 'wxcompare0000001';
const DAY1 = Date.UTC(2026, 2, 1, 10);
const DAY2 = DAY1 + 24 * 3_600_000;
const MIN = 60_000;
const { topics } = loadConfig({}).kafka;
const noDlq: RecordProducer = { send: () => Promise.reject(new Error('nothing is refused here')), close: () => Promise.resolve() };
let offset = 0;
const inRecord = (topic: string, value: Buffer): InRecord => ({ topic, partition: 0, offset: String(offset++), key: null, value, timestamp: '0' });
const u = (n: number): string => openidOf(n);
const seconds = (ms: number): number => ms / 1000;

function snapshotRecords(id: string, t0: number, pages: readonly (readonly number[])[], options: { complete?: boolean; refetch?: readonly number[] } = {}): SnapshotRecord[] {
  const records: SnapshotRecord[] = [{ v: 1, kind: 'begin', appid: APPID, snapshotId: id, startedAt: t0 }];
  const total = new Set(pages.flat()).size;
  pages.forEach((openids, page) => {
    if (page === pages.length - 1 && options.refetch !== undefined) {
      records.push({ v: 1, kind: 'page', appid: APPID, snapshotId: id, page, cursor: '', nextOpenid: '', total, openids: options.refetch.map(u), fetchedAt: t0 + 1000 });
    }
    records.push({ v: 1, kind: 'page', appid: APPID, snapshotId: id, page, cursor: '', nextOpenid: '', total, openids: openids.map(u), fetchedAt: t0 + 2000 + page });
  });
  const complete = options.complete ?? true;
  records.push({
    v: 1, kind: 'end', appid: APPID, snapshotId: id, complete, pages: pages.length, openids: total, total, startedAt: t0, endedAt: t0 + 10 * MIN,
    ...(complete ? {} : { reason: 'WECHAT_QUOTA_EXHAUSTED: quota' }),
  });
  return records;
}

function correction(openid: string, type: 'subscribe' | 'unsubscribe', at: number, extra: Partial<UserEvent> = {}): UserEvent {
  return {
    v: 1, id: `${openid.slice(-8)}${type === 'subscribe' ? 'aaaa' : 'bbbb'}`.padStart(32, '0'), appid: APPID, openid, type, at, source: 'correction',
    receivedAt: at, correction: { snapshotId: 's3', rule: type === 'subscribe' ? 'missing' : 'stale' }, ...extra,
  };
}

async function collect(rows: AsyncGenerator<DifferenceRow[]>): Promise<DifferenceRow[]> {
  const all: DifferenceRow[] = [];
  for await (const chunk of rows) all.push(...chunk);
  return all;
}

const rejects = (code: ErrorCode, pattern: RegExp) => (error: unknown): boolean => isWxsyncError(error, code) && pattern.test(error.message);

describe('snapshot comparison, history and retention in ClickHouse (sql/013)', () => {
  let dir: string;
  let client: ClickHouseClient;
  let history: SnapshotHistory;
  let write: (records: InRecord[]) => Promise<void>;
  const snapshot = (records: SnapshotRecord[]): InRecord[] => records.map((r) => inRecord(topics.snapshots, encodeSnapshotRecord(r)));
  const events = (list: UserEvent[]): InRecord[] => list.map((e) => inRecord(topics.userEvents, encodeUserEvent(e)));
  const query = async <T>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> =>
    (await client.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<T>();
  const membersOf = async (snapshotId: string): Promise<number> =>
    Number((await query<{ n: string }>(`SELECT count() AS n FROM ${DB}.snapshot_members WHERE snapshot_id = {id:String}`, { id: snapshotId }))[0]?.n);

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'wxsync-compare-'));
    client = createClickHouse({ target: { kind: 'embedded', path: dir }, database: DB });
    await migrate(client, DB, silentLogger());
    history = snapshotHistory(client, DB, { keep: 2, windowMarginMs: MIN }, silentLogger());
    const writer = clickHouseWriter(client, DB, noDlq, 'dlq');
    write = async (records) => { await writer.write(routeRecords(records, topics, 1)); };
    const longAgo = seconds(Date.UTC(2025, 0, 1));
    await write([
      ...events([
        callbackEvent(APPID, u(0), 'subscribe', longAgo),
        callbackEvent(APPID, u(1), 'subscribe', longAgo, { scene: 'ADD_SCENE_QR_CODE', qrScene: 'spring' }),
        callbackEvent(APPID, u(1), 'unsubscribe', seconds(DAY1 + 60 * MIN)),
        callbackEvent(APPID, u(1), 'unsubscribe', seconds(DAY1 + 60 * MIN)),
        callbackEvent(APPID, u(2), 'subscribe', longAgo),
        callbackEvent(APPID, u(3), 'subscribe', longAgo),
        correction(u(3), 'unsubscribe', DAY2),
        callbackEvent(APPID, u(4), 'unsubscribe', seconds(DAY1 - 30_000)),
        callbackEvent(APPID, u(5), 'subscribe', seconds(DAY1 + 10 * 60 * MIN), { scene: 'ADD_SCENE_QR_CODE', qrScene: 'autumn' }),
        correction(u(6), 'subscribe', DAY1 + 5 * 60 * MIN, { scene: 'ADD_SCENE_SEARCH' }),
        callbackEvent(APPID, u(7), 'subscribe', seconds(DAY1 - 120 * MIN), { scene: 'ADD_SCENE_QR_CODE', qrScene: 'winter' }),
        callbackEvent(APPID, u(7), 'subscribe', seconds(DAY2 + 12 * MIN), { scene: 'ADD_SCENE_QR_CODE', qrScene: 'later' }),
      ]),
      ...snapshot(snapshotRecords('s1', DAY1, [[0, 1, 2], [2, 3, 4]])),
      ...snapshot(snapshotRecords('s2', DAY1 + 120 * MIN, [[0]], { complete: false })),
      ...snapshot(snapshotRecords('s3', DAY2, [[0, 2, 5], [6, 7]], { refetch: [6, 7, 9] })),
    ]);
  });
  after(async () => {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('compares the last two complete snapshots: added and removed, explained or not, by scene and campaign', async () => {
    const report = await history.compare(APPID, {});
    assert.deepEqual([report.from.snapshotId, report.to.snapshotId], ['s1', 's3'], 's2 ended incomplete: skipped');
    assert.deepEqual(report.window, { from: new Date(DAY1 - MIN).toISOString(), to: new Date(DAY2 + 11 * MIN).toISOString() });
    assert.deepEqual(report.added, { total: 3, explained: 1, unexplained: 2 });
    assert.deepEqual(report.removed, { total: 3, explained: 2, unexplained: 1 });
    assert.equal(report.unexplainedShare, 0.5);
    assert.deepEqual(report.byScene, [
      { key: 'ADD_SCENE_QR_CODE', added: 2, addedUnexplained: 1, removed: 1, removedUnexplained: 0 },
      { key: '', added: 0, addedUnexplained: 0, removed: 2, removedUnexplained: 1 },
      { key: 'ADD_SCENE_SEARCH', added: 1, addedUnexplained: 1, removed: 0, removedUnexplained: 0 },
    ]);
    assert.deepEqual(report.byCampaign, [
      { key: '', added: 1, addedUnexplained: 1, removed: 2, removedUnexplained: 1 },
      { key: 'autumn', added: 1, addedUnexplained: 0, removed: 0, removedUnexplained: 0 },
      { key: 'spring', added: 0, addedUnexplained: 0, removed: 1, removedUnexplained: 0 },
      { key: 'winter', added: 1, addedUnexplained: 1, removed: 0, removedUnexplained: 0 },
    ]);
    assert.deepEqual([report.from.total, report.to.total], [5, 5]);
    const work = await query<{ n: string }>(`SELECT count() AS n FROM ${DB}.snapshot_compare_keys`);
    assert.equal(work[0]?.n, '0', 'the work partition is dropped');
  });

  it('lists either side in openid order with the same flags', async () => {
    const added = await history.differences(APPID, {}, 'added');
    assert.deepEqual(await collect(added.rows), [
      { openid: u(5), side: 'added', explained: true, scene: 'ADD_SCENE_QR_CODE', campaign: 'autumn' },
      { openid: u(6), side: 'added', explained: false, scene: 'ADD_SCENE_SEARCH', campaign: '' },
      { openid: u(7), side: 'added', explained: false, scene: 'ADD_SCENE_QR_CODE', campaign: 'winter' },
    ]);
    const removed = await history.differences(APPID, { from: 's1', to: 's3' }, 'removed');
    assert.deepEqual((await collect(removed.rows)).map((r) => [r.openid, r.explained, r.scene, r.campaign]), [
      [u(1), true, 'ADD_SCENE_QR_CODE', 'spring'], [u(3), false, '', ''], [u(4), true, '', ''],
    ]);
  });

  it('refuses what cannot be compared before reading anything', async () => {
    await assert.rejects(history.compare(APPID, { from: 's2' }), rejects(ErrorCode.SnapshotUnavailable, /s2 of wxcompare0000001 is incomplete/));
    await assert.rejects(history.compare(APPID, { from: 's3', to: 's1' }), rejects(ErrorCode.UsageInvalid, /did not start before/));
    await assert.rejects(history.differences(APPID, { to: 'nope' }, 'added'), rejects(ErrorCode.UsageInvalid, /unknown snapshot nope/));
    await assert.rejects(history.compare('wxother', {}), rejects(ErrorCode.SnapshotUnavailable, /no complete snapshot/));
  });

  it('records the comparison after a reconcile once, keeps the last two complete snapshots and lists dropped ones as dropped', async () => {
    await history.afterReconcile(APPID, 's3');
    await history.afterReconcile(APPID, 's3');
    const recorded = await query<{ from_snapshot_id: string; added: string; added_unexplained: string; removed: string; removed_unexplained: string; by_campaign: unknown[] }>(
      `SELECT from_snapshot_id, added, added_unexplained, removed, removed_unexplained, by_campaign FROM ${DB}.snapshot_comparisons WHERE to_snapshot_id = 's3'`);
    assert.equal(recorded.length, 1, 'recorded once');
    assert.deepEqual(recorded[0], {
      from_snapshot_id: 's1', added: '3', added_unexplained: '2', removed: '3', removed_unexplained: '1',
      by_campaign: [['', 1, 1, 2, 1], ['autumn', 1, 0, 0, 0], ['spring', 0, 0, 1, 0], ['winter', 1, 1, 0, 0]]
        .map(([key, ...n]) => ({ key, added: String(n[0]), added_unexplained: String(n[1]), removed: String(n[2]), removed_unexplained: String(n[3]) })),
    });
    assert.equal(await membersOf('s1'), 6, 'two complete snapshots, both kept');

    await write(snapshot(snapshotRecords('s4', DAY2 + 24 * 60 * MIN, [[0, 2, 5, 6, 7, 8]])));
    await history.afterReconcile(APPID, 's4');
    assert.deepEqual([await membersOf('s1'), await membersOf('s2'), await membersOf('s3') > 0, await membersOf('s4')], [0, 0, true, 6]);
    const listing = await history.list(APPID);
    assert.deepEqual(listing.snapshots.map((s) => [s.snapshotId, s.state, s.data, s.comparison?.fromSnapshotId ?? null]), [
      ['s1', 'complete', 'dropped', null], ['s2', 'incomplete', 'dropped', null], ['s3', 'complete', 'kept', 's1'], ['s4', 'complete', 'kept', 's3'],
    ]);
    assert.equal(listing.snapshots[1]?.reason, 'WECHAT_QUOTA_EXHAUSTED: quota');
    assert.deepEqual(listing.snapshots[3]?.comparison, {
      fromSnapshotId: 's3', added: 1, addedUnexplained: 1, removed: 0, removedUnexplained: 0, unexplainedShare: 1,
      computedAt: listing.snapshots[3]?.comparison?.computedAt,
    });
    assert.equal(listing.keep, 2);
    await assert.rejects(history.compare(APPID, { from: 's1' }), rejects(ErrorCode.SnapshotUnavailable, /s1 of wxcompare0000001 was dropped by retention/));
    assert.deepEqual([(await history.compare(APPID, {})).added.total], [1]);

    // A page of s1 redelivered after the drop brings members back: the next retention drops them again.
    await write(snapshot(snapshotRecords('s1', DAY1, [[0, 1, 2]]).filter((r) => r.kind === 'page')));
    assert.equal(await membersOf('s1'), 3);
    await history.afterReconcile(APPID, 's4');
    assert.equal(await membersOf('s1'), 0);
    const drops = await query<{ n: string }>(`SELECT count() AS n FROM ${DB}.snapshot_drops FINAL WHERE snapshot_id = 's1'`);
    assert.equal(drops[0]?.n, '1');
  });

  it('never drops a snapshot a comparison is reading, and voids a comparison whose snapshot another process dropped', async () => {
    await write(snapshot(snapshotRecords('s5', DAY2 + 48 * 60 * MIN, [[0, 2, 5, 6, 8]])));
    const reading = await history.differences(APPID, { from: 's3', to: 's5' }, 'removed');
    const first = await reading.rows.next();
    assert.deepEqual(first.done === true ? [] : first.value.map((r) => r.openid), [u(7)]);
    await history.afterReconcile(APPID, 's5');
    assert.ok(await membersOf('s3') > 0, 's3 is being read: kept');
    assert.equal((await reading.rows.next()).done, true);
    await history.afterReconcile(APPID, 's5');
    assert.equal(await membersOf('s3'), 0, 'dropped once the reading ended');

    // Another process's retention (its readers are not this one's) marks s4 while this process compares it.
    const another = await history.differences(APPID, { from: 's4', to: 's5' }, 'removed');
    await another.rows.next();
    await client.command({ query: `INSERT INTO ${DB}.snapshot_drops (appid, snapshot_id, dropped_at) VALUES ('${APPID}', 's4', now64(3))` });
    await assert.rejects(another.rows.next(), rejects(ErrorCode.SnapshotUnavailable, /s4 of wxcompare0000001 was dropped by retention while it was compared/));
  });
});
