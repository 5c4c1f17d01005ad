import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventOrder, routeRecords, routedSize } from '../../../consumers/clickhouse/route.ts';
import { correctionEventId } from '../../../lib/contracts/event-id.ts';
import { encodeSnapshotRecord } from '../../../lib/contracts/snapshot.ts';
import { MAX_MS, MIN_MS } from '../../../lib/contracts/fields.ts';
import { encodeUserEvent, type UserEvent } from '../../../lib/contracts/user-event.ts';
import { loadConfig } from '../../../lib/config.ts';
import type { InRecord } from '../../../lib/kafka.ts';
import { T0, callbackEvent } from '../../support/events.ts';

const { topics } = loadConfig({}).kafka;
const record = (topic: string, value: Buffer | null, offset = '0'): InRecord => ({ topic, partition: 0, offset, key: null, value, timestamp: '0' });

describe('eventOrder', () => {
  const subscribe = callbackEvent('wxapp', 'oUser', 'subscribe', T0 / 1000);
  const unsubscribe = callbackEvent('wxapp', 'oUser', 'unsubscribe', T0 / 1000);
  const correction: UserEvent = {
    ...subscribe, id: correctionEventId('s1', 'oUser', 'subscribe'), source: 'correction', correction: { snapshotId: 's1', rule: 'missing' },
  };

  it('orders by time first', () => {
    assert.ok(eventOrder({ ...subscribe, at: subscribe.at + 1 }) > eventOrder(unsubscribe));
    assert.ok(eventOrder({ ...correction, at: subscribe.at + 1 }) > eventOrder(unsubscribe));
  });

  it('lets a real event win a tie with a correction, and orders equal times deterministically', () => {
    assert.ok(eventOrder(subscribe) > eventOrder({ ...correction, type: 'unsubscribe', receivedAt: correction.receivedAt + 60_000 }));
    assert.ok(eventOrder(unsubscribe) > eventOrder(subscribe));
    assert.equal(eventOrder(subscribe), eventOrder({ ...subscribe }));
  });

  it('orders two events of the same second by arrival: leaving and coming back within one second', () => {
    const leave = { ...unsubscribe, receivedAt: unsubscribe.at + 974 };
    const comeBack = { ...subscribe, receivedAt: subscribe.at + 989 };
    assert.ok(eventOrder(comeBack) > eventOrder(leave));
    assert.ok(eventOrder({ ...leave, receivedAt: comeBack.receivedAt + 1 }) > eventOrder(comeBack));
  });

  it('clamps arrivals far from `at` instead of letting them reach into the time bits', () => {
    const skewed = eventOrder({ ...subscribe, receivedAt: subscribe.at - 3_600_000 });
    const late = eventOrder({ ...subscribe, receivedAt: subscribe.at + 86_400_000 });
    assert.ok(skewed < late);
    assert.ok(late < eventOrder({ ...subscribe, at: subscribe.at + 1, receivedAt: subscribe.at + 1 }));
    assert.ok(eventOrder({ ...unsubscribe, at: Date.UTC(2109, 0, 1), receivedAt: Date.UTC(2109, 0, 2) }) < 2n ** 64n);
  });

  it('is strictly increasing in `at` over the whole range the contract allows, edges included, and fits a UInt64', () => {
    // The highest order at one instant (a callback arriving late, an unsubscribe) stays below the lowest of the next ms.
    const highest = (at: number): bigint => eventOrder({ at, source: 'callback', type: 'unsubscribe', receivedAt: at + 86_400_000 });
    const lowest = (at: number): bigint => eventOrder({ at, source: 'correction', type: 'subscribe', receivedAt: at - 86_400_000 });
    for (const at of [MIN_MS, MIN_MS + 1, Date.UTC(2026, 0, 1), MAX_MS - 2, MAX_MS - 1]) {
      assert.ok(lowest(at) < highest(at));
      assert.ok(highest(at) < lowest(at + 1), `ord increases from ${new Date(at).toISOString()} to the next ms`);
    }
    assert.ok(highest(MAX_MS) < 2n ** 64n, 'the latest allowed event does not wrap');
    assert.ok(lowest(MIN_MS) > 0n);
  });
});

describe('routeRecords', () => {
  it('routes each topic to its rows and rejects what does not decode, record by record', () => {
    const event = callbackEvent('wxapp', 'oUser', 'subscribe', T0 / 1000, { qrScene: '7' });
    const page = encodeSnapshotRecord({ v: 1, kind: 'page', appid: 'wxapp', snapshotId: 's1', page: 2, cursor: 'a', nextOpenid: 'o2', total: 9, openids: ['o1', 'o2'], fetchedAt: T0 });
    const routed = routeRecords([
      record(topics.userEvents, encodeUserEvent(event)),
      record(topics.userEvents, Buffer.from('garbage'), '1'),
      record(topics.snapshots, page, '2'),
      record('elsewhere', Buffer.from('{}'), '3'),
    ], topics, 5);
    const [row, ...others] = routed.userEvents;
    assert.ok(row !== undefined && others.length === 0);
    assert.equal(row.qr_scene, '7');
    assert.equal(row.ord, eventOrder(event).toString());
    assert.deepEqual(routed.snapshotMembers.map(({ origin, ...row }) => [origin.offset, row]),
      [['2', { appid: 'wxapp', snapshot_id: 's1', page: 2, fetched_at: T0, openids: ['o1', 'o2'] }]]);
    assert.equal(routed.snapshots[0]?.origin, routed.snapshotMembers[0]?.origin, 'both rows of a page keep the record they came from');
    assert.equal(row.origin.offset, '0');
    assert.equal(routed.snapshots[0]?.page_openids, 2);
    assert.deepEqual(routed.dlq.map((d) => [d.source.offset, d.code]), [['1', 'RECORD_UNDECODABLE'], ['3', 'RECORD_INVALID']]);
    assert.equal(routedSize(routed), 1 + 1 + 2 + 2);
  });

  it('routes a page as one member row holding its openids, and the empty end-of-list page as a snapshots row only', () => {
    const page = (n: number, openids: string[]): InRecord => record(topics.snapshots, encodeSnapshotRecord({
      v: 1, kind: 'page', appid: 'wxapp', snapshotId: 's1', page: n, cursor: 'a', nextOpenid: openids.at(-1) ?? '', total: 3, openids, fetchedAt: T0,
    }), String(n));
    const routed = routeRecords([page(0, ['o1', 'o2']), page(1, ['o3']), page(2, [])], topics, 5);
    assert.deepEqual(routed.snapshotMembers.map((m) => [m.page, m.openids]), [[0, ['o1', 'o2']], [1, ['o3']]]);
    assert.deepEqual(routed.snapshots.map((r) => [r.page, r.page_openids]), [[0, 2], [1, 1], [2, 0]]);
    assert.equal(routedSize(routed), 3 + 3, 'batch sizes count openids, not pages');
  });

  it('refuses an event beyond the contract\'s timestamp bound (before 2100), to the DLQ', () => {
    const event = callbackEvent('wxapp', 'oUser', 'subscribe', T0 / 1000);
    const at = (ms: number): InRecord => record(topics.userEvents, Buffer.from(JSON.stringify({ ...event, at: ms, receivedAt: ms })));
    const routed = routeRecords([at(MAX_MS), at(MAX_MS + 1), at(Date.UTC(2150, 0, 1)), at(MIN_MS - 1)], topics, 5);
    assert.equal(routed.userEvents.length, 1);
    assert.equal(routed.userEvents[0]?.at, MAX_MS);
    assert.deepEqual(routed.dlq.map((d) => d.code), ['RECORD_INVALID', 'RECORD_INVALID', 'RECORD_INVALID']);
    assert.match(routed.dlq[0]?.reason ?? '', /\bat must be an integer/);
    assert.throws(() => encodeUserEvent({ ...event, at: MAX_MS + 1 }), { code: 'RECORD_INVALID' }, 'and no producer publishes one');
  });

  it('is pure: the same records route to the same rows', () => {
    const records = [record(topics.userEvents, encodeUserEvent(callbackEvent('wxapp', 'o1', 'unsubscribe', T0 / 1000)))];
    assert.deepEqual(routeRecords(records, topics, 1), routeRecords(records, topics, 1));
  });
});
