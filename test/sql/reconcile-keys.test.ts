import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { routeRecords } from '../../consumers/clickhouse/route.ts';
import { clickHouseWriter } from '../../consumers/clickhouse/sink.ts';
import { createClickHouse, type ClickHouseClient } from '../../lib/clickhouse.ts';
import { loadConfig } from '../../lib/config.ts';
import { encodeSnapshotRecord, type SnapshotRecord } from '../../lib/contracts/snapshot.ts';
import { encodeUserEvent, type UserEvent } from '../../lib/contracts/user-event.ts';
import type { InRecord, RecordProducer } from '../../lib/kafka.ts';
import { silentLogger } from '../../lib/logger.ts';
import { migrate } from '../../lib/migrate.ts';
import type { Candidate } from '../../producers/reconcile/plan.ts';
import { clickhouseReconcileStore, type ReconcileStore } from '../../producers/reconcile/store.ts';
import { callbackEvent, openidOf } from '../support/events.ts';

// The comparison of sql/011 (reconcile_diff, reconcile_openids) and the snapshot_keys view of
// sql/007, over rows loaded by the consumer's own writer, against figures computed by hand:
//
//   user  store (newest event)        snapshot                      expected
//   u0    subscribe 2024-01-01         page 0                        nothing (both agree, outside the window)
//   u1    subscribe 2024-01-01         —                             stale
//   u2    —                            page 0 and page 1 (dup)       missing, once
//   u3    unsubscribe 2024-02-01       page 1                        missing, with the store's order
//   u4    subscribe 2024-01-01         page 2, first fetch only      stale (the re-fetch of page 2 replaced it)
//   u5    —                            page 2, second fetch          missing
//   u6    subscribe at T0 + 10 s       page 0                        live (window user the snapshot agrees on)
//   u7    subscribe at T0 − 30 s       —                             stale, in the window
//   u8    subscribe, then (in another,  —                             nothing: the newer row says gone, the older
//         unmerged part) unsubscribe                                  one's false "stale" is dropped
//   u9    unsubscribe, then (another    page 1                        nothing: likewise, no false "missing"
//         part) subscribe
const DB = 'wx_keys';
const APPID = 'wxkeys0000000001';
const SNAPSHOT = 'wxkeys0000000001:s1';
const T0 = Date.UTC(2026, 0, 10, 12);
const DELTA = 60_000;
const { topics } = loadConfig({}).kafka;
const noDlq: RecordProducer = { send: () => Promise.reject(new Error('nothing is refused here')), close: () => Promise.resolve() };
let offset = 0;
const inRecord = (topic: string, value: Buffer): InRecord => ({ topic, partition: 0, offset: String(offset++), key: null, value, timestamp: '0' });
const u = (n: number): string => openidOf(n);
const seconds = (ms: number): number => ms / 1000;

function page(n: number, openids: readonly number[], fetchedAt: number): SnapshotRecord {
  return { v: 1, kind: 'page', appid: APPID, snapshotId: SNAPSHOT, page: n, cursor: '', nextOpenid: '', total: 6, openids: openids.map(u), fetchedAt };
}

describe('the reconcile comparison in ClickHouse (sql/007, sql/011)', () => {
  let dir: string;
  let client: ClickHouseClient;
  let store: ReconcileStore;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'wxsync-keys-'));
    client = createClickHouse({ target: { kind: 'embedded', path: dir }, database: DB });
    await migrate(client, DB, silentLogger());
    store = clickhouseReconcileStore(client, DB);
    const writer = clickHouseWriter(client, DB, noDlq, 'dlq');
    const jan = seconds(Date.UTC(2024, 0, 1));
    const events: UserEvent[] = [
      callbackEvent(APPID, u(0), 'subscribe', jan), callbackEvent(APPID, u(1), 'subscribe', jan),
      callbackEvent(APPID, u(3), 'subscribe', jan), callbackEvent(APPID, u(3), 'unsubscribe', seconds(Date.UTC(2024, 1, 1))),
      callbackEvent(APPID, u(4), 'subscribe', jan), callbackEvent(APPID, u(6), 'subscribe', seconds(T0 + 10_000)),
      callbackEvent(APPID, u(7), 'subscribe', seconds(T0 - 30_000)),
      callbackEvent(APPID, u(8), 'subscribe', jan), callbackEvent(APPID, u(9), 'unsubscribe', jan),
    ];
    // Each user's newer event in a part of its own, kept unmerged: the comparison reads follower_keys as stored.
    const later = [callbackEvent(APPID, u(8), 'unsubscribe', seconds(Date.UTC(2024, 2, 1))), callbackEvent(APPID, u(9), 'subscribe', seconds(Date.UTC(2024, 2, 1)))];
    const snapshot: SnapshotRecord[] = [
      { v: 1, kind: 'begin', appid: APPID, snapshotId: SNAPSHOT, startedAt: T0 },
      page(0, [0, 2, 6], T0 + 1000), page(1, [2, 3, 9], T0 + 2000),
      // Page 2 fetched, then fetched again after a crash, WeChat answering differently the second time.
      page(2, [4], T0 + 3000), page(2, [5], T0 + 9000),
      { v: 1, kind: 'end', appid: APPID, snapshotId: SNAPSHOT, complete: true, pages: 3, openids: 6, total: 6, startedAt: T0, endedAt: T0 + 10_000 },
    ];
    await client.command({ query: `SYSTEM STOP MERGES ${DB}.follower_keys` });
    await writer.write(routeRecords([
      ...events.map((e) => inRecord(topics.userEvents, encodeUserEvent(e))),
      ...snapshot.map((r) => inRecord(topics.snapshots, encodeSnapshotRecord(r))),
    ], topics, 1));
    await writer.write(routeRecords(later.map((e) => inRecord(topics.userEvents, encodeUserEvent(e))), topics, 1));
  });
  after(async () => {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads each page\'s latest fetch alone', async () => {
    const rows = await (await client.query({
      query: `SELECT DISTINCT openid FROM ${DB}.snapshot_keys(appid = {appid:String}, snapshot_id = {sid:String}) ORDER BY openid`,
      query_params: { appid: APPID, sid: SNAPSHOT }, format: 'JSONEachRow',
    })).json<{ openid: string }>();
    assert.deepEqual(rows.map((r) => r.openid), [0, 2, 3, 5, 6, 9].map(u).sort());
  });

  it('finds every difference and every window user once, with the store\'s newest order', async () => {
    const parts = await (await client.query({ query: `SELECT count() AS n FROM system.parts WHERE database = '${DB}' AND table = 'follower_keys' AND active`, format: 'JSONEachRow' })).json<{ n: string }>();
    assert.ok(Number(parts[0]?.n) >= 2, 'u8 and u9 have rows in two unmerged parts');
    const request = { runId: 'run-1', appid: APPID, snapshotId: SNAPSHOT, sinceMs: T0 - DELTA };
    const counts = await store.compare(request);
    assert.deepEqual(counts, { missing: { found: 3, inWindow: 0 }, stale: { found: 3, inWindow: 1 }, live: 1 });
    const candidates: Candidate[] = [];
    for await (const p of store.candidatePages(request, 2)) candidates.push(...p);
    const seen = candidates.map((c) => [c.openid, c.rule, c.inWindow, c.storeOrd === 0n ? 'none' : (c.storeOrd & 1n) === 1n ? 'gone' : 'following'])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    assert.deepEqual(seen, [
      [u(1), 'stale', false, 'following'],
      [u(2), 'missing', false, 'none'],
      [u(3), 'missing', false, 'gone'],
      [u(4), 'stale', false, 'following'],
      [u(5), 'missing', false, 'none'],
      [u(6), 'live', true, 'following'],
      [u(7), 'stale', true, 'following'],
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
    const possible = await (await client.query({ query: `SELECT DISTINCT openid_key FROM ${DB}.reconcile_keys WHERE run_id = 'run-1'`, format: 'JSONEachRow' })).json();
    assert.equal(possible.length, 9, 'the key-only pass also offered u8 and u9, whose older rows differ: dropped above');
    await store.forget(request.runId);
    const left = await (await client.query({ query: `SELECT count() AS n FROM ${DB}.reconcile_candidates`, format: 'JSONEachRow' })).json<{ n: string }>();
    assert.equal(Number(left[0]?.n), 0, 'a finished run leaves no work rows');
  });
});
