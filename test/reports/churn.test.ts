import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import type { UserEvent } from '../../lib/contracts/user-event.ts';
import { churnReport, type ChurnRequest } from '../../reports/churn.ts';
import { reportRange } from '../../reports/range.ts';
import { rawChurnReport } from '../../reports/raw.ts';
import { beijing, fixtureEvents, storeWithEvents, type EventStore } from '../support/event-store.ts';

// Account wx1, Beijing time (UTC+8). Reported: 2026-11-01 to 2026-11-03.
// | user | events                                                                                   |
// | a    | 10-30 10:00 subscribe (callback, search); 11-01 09:00 unsubscribe (correction: push lost) |
// | b    | 11-01 12:00 subscribe (callback, QR camp1), the same push stored twice; 11-02 08:00 unsubscribe |
// | c    | 11-02 23:30 subscribe (callback, QR camp1)                                               |
// | d    | 11-01 10:00 unsubscribe (never followed in the store: no change); 11-03 01:00 subscribe  |
// |      | (profile card); 02:00 unsubscribe; 05:00 subscribe again (search): returning             |
// | e    | 11-03 00:30 subscribe (QR camp2): 11-02 in UTC, 11-03 in Beijing                         |
// | f    | 10-01 08:00 subscribe (correction: the initial load), still following                    |
// Followers before 11-01: a, f = 2.
// | day   | follows (first, returning) | unfollows | net | followers end | unfollow rate | recovered   |
// | 11-01 | 1 (1, 0): b                | 1: a      | 0   | 2             | 1/2           | 1 of 2      |
// | 11-02 | 1 (1, 0): c                | 1: b      | 0   | 2             | 1/2           | 0 of 2      |
// | 11-03 | 3 (2, 1): e, d, d again    | 1: d      | 2   | 4             | 1/2           | 0 of 4      |
// | total | 5 (4, 1)                   | 3         | 2   | 4             | 3/2           | 1 of 8      |
const APPID = 'wx1';
const event = fixtureEvents(APPID);
const bSubscribe = event('b', 'subscribe', '2026-11-01T12:00', 'callback', 'ADD_SCENE_QR_CODE', 'camp1');
const EVENTS: readonly UserEvent[] = [
  event('a', 'subscribe', '2026-10-30T10:00', 'callback', 'ADD_SCENE_SEARCH'),
  event('a', 'unsubscribe', '2026-11-01T09:00', 'correction'),
  bSubscribe, bSubscribe,
  event('b', 'unsubscribe', '2026-11-02T08:00', 'callback'),
  event('c', 'subscribe', '2026-11-02T23:30', 'callback', 'ADD_SCENE_QR_CODE', 'camp1'),
  event('d', 'unsubscribe', '2026-11-01T10:00', 'callback'),
  event('d', 'subscribe', '2026-11-03T01:00', 'callback', 'ADD_SCENE_PROFILE_CARD'),
  event('d', 'unsubscribe', '2026-11-03T02:00', 'callback'),
  event('d', 'subscribe', '2026-11-03T05:00', 'callback', 'ADD_SCENE_SEARCH'),
  event('e', 'subscribe', '2026-11-03T00:30', 'callback', 'ADD_SCENE_QR_CODE', 'camp2'),
  event('f', 'subscribe', '2026-10-01T08:00', 'correction'),
];
const NOW = beijing('2026-11-04T12:00');

let store: EventStore;
let clickhouse: ClickHouseClient;
let db: string;

before(async () => {
  store = await storeWithEvents(EVENTS);
  ({ clickhouse, db } = store);
});

after(async () => {
  await store.close();
});

function request(by: 'day' | 'week' | 'hour', split?: 'scene' | 'campaign'): ChurnRequest {
  return { appids: [APPID], range: reportRange({ from: '2026-11-01', to: '2026-11-03', by, tz: 'Asia/Shanghai' }, NOW), split };
}

const figures = (follows: number, first: number, unfollows: number, start: number, recoveredFollows: number, recoveredUnfollows: number) => ({
  follows, firstFollows: first, returningFollows: follows - first, unfollows, net: follows - unfollows,
  followersStart: start, followersEnd: start + follows - unfollows, unfollowRate: start === 0 ? null : unfollows / start,
  recoveredFollows, recoveredUnfollows,
  recoveredShare: follows + unfollows === 0 ? null : (recoveredFollows + recoveredUnfollows) / (follows + unfollows),
});

test('daily churn equals the figures computed by hand', async () => {
  const report = await churnReport(clickhouse, db, request('day'));
  assert.deepEqual(report.periods, [
    { period: '2026-11-01', ...figures(1, 1, 1, 2, 0, 1) },
    { period: '2026-11-02', ...figures(1, 1, 1, 2, 0, 0) },
    { period: '2026-11-03', ...figures(3, 2, 1, 2, 0, 0) },
  ]);
  assert.deepEqual(report.total, figures(5, 4, 3, 2, 0, 1));
  assert.equal(report.total.recoveredShare, 1 / 8);
  assert.ok(report.rollupsAsOf !== null);
});

test('split by campaign: a follow counts under its QR code, an unfollow under the code of the follow it ends', async () => {
  const report = await churnReport(clickhouse, db, request('day', 'campaign'));
  assert.deepEqual(report.splits.map((s) => [s.key, s.total]), [
    ['', figures(2, 1, 2, 2, 0, 1)],
    ['camp1', figures(2, 2, 1, 0, 0, 0)],
    ['camp2', figures(1, 1, 0, 0, 0, 0)],
  ]);
  assert.deepEqual(report.splits[1]?.periods.map((p) => [p.period, p.followersEnd, p.unfollowRate]), [['2026-11-01', 1, null], ['2026-11-02', 1, 1], ['2026-11-03', 1, 0]]);
});

test('every bucket is listed, zeros where nothing happened', async () => {
  const report = await churnReport(clickhouse, db, request('hour'));
  assert.equal(report.periods.length, 72);
  assert.deepEqual(report.periods.filter((p) => p.follows + p.unfollows > 0).map((p) => p.period), [
    '2026-11-01 09:00', '2026-11-01 12:00', '2026-11-02 08:00', '2026-11-02 23:00', '2026-11-03 00:00', '2026-11-03 01:00', '2026-11-03 02:00', '2026-11-03 05:00',
  ]);
  assert.deepEqual(report.periods[0], { period: '2026-11-01 00:00', ...figures(0, 0, 0, 2, 0, 0) });
});

test('the rollups give what the raw event log gives, by every bucket and split', async () => {
  for (const by of ['hour', 'day', 'week'] as const) {
    for (const split of [undefined, 'scene', 'campaign'] as const) {
      const rollup = await churnReport(clickhouse, db, request(by, split));
      assert.deepEqual(await rawChurnReport(clickhouse, db, request(by, split), rollup.rollupsAsOf), rollup, `${by} ${split ?? ''}`);
    }
  }
});
