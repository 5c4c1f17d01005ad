import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import type { UserEvent } from '../../lib/contracts/user-event.ts';
import { campaignsReport, type CampaignsRequest } from '../../reports/campaigns.ts';
import { rawCampaignsReport } from '../../reports/raw-campaigns.ts';
import { beijing, fixtureEvents, storeWithEvents, type EventStore } from '../support/event-store.ts';

// Account wx1, Beijing time (UTC+8), "now" 2026-11-04 12:00. QR = ADD_SCENE_QR_CODE with the campaign named.
// | user | events                                                                                               |
// | a    | 10-01 10:00 subscribe QR camp1, the same push stored twice; still following                         |
// | b    | 11-04 08:00 subscribe QR camp1, stored twice; 09:30 unsubscribe (less than a day old: not eligible)   |
// | c    | 10-20 09:00 subscribe QR camp1; 20:00 unsubscribe, stored twice (lost within 24 h); 10-25 subscribe  |
// |      | QR camp2 again (returning: not a first follow of camp2); still following                             |
// | d    | 09-01 08:00:00.750 subscribe QR camp2 (correction, the initial load); 09-10 08:00:00.250             |
// |      | unsubscribe (correction): 777,600 whole seconds apart                                               |
// | e    | 10-28 12:00 subscribe (search); 12:20 unsubscribe                                                    |
// | f    | 10-05 unsubscribe (never followed in the store: no change); 10-06 subscribe QR camp2; 10-07 a        |
// |      | subscribe correction that agrees (no change); still following                                       |
// | g    | 08-01 10:00 subscribe QR camp1 (before the 12 cohort weeks); 10-30 10:00 unsubscribe: exactly 90 d   |
// | h    | 11-10 subscribe QR camp1: after "now", not counted                                                   |
// | j    | 10-31 23:30 subscribe QR camp3 (10-31 in UTC, week of 10-26 either way); 11-03 23:30 unsubscribe;   |
// |      | 11-04 08:00 subscribe (search, returning); 09:00 unsubscribe (correction): exactly 1 h             |
// | k    | 11-02 00:30 subscribe QR camp2: Monday in Beijing, Sunday in UTC; still following                    |
// | m    | 10-10 10:00 subscribe QR camp1; 10-12 a subscribe correction that agrees; 10-20 10:00 unsubscribe:   |
// |      | the unfollow ends the follow of 10-10, 10 days long                                                  |
// | x    | account wx2: 10-10 subscribe QR camp1; not counted for wx1                                           |
// By hand: camp1 brought a, b, c, g, m (5), 1 still following; camp2 d, f, k (3), 2 still following; camp3 j (1), 0.
const APPID = 'wx1';
const event = fixtureEvents(APPID);
const QR = 'ADD_SCENE_QR_CODE';
const aSubscribe = event('a', 'subscribe', '2026-10-01T10:00', 'callback', QR, 'camp1');
const bSubscribe = event('b', 'subscribe', '2026-11-04T08:00', 'callback', QR, 'camp1');
const cUnsubscribe = event('c', 'unsubscribe', '2026-10-20T20:00', 'callback');
const EVENTS: readonly UserEvent[] = [
  aSubscribe, aSubscribe,
  bSubscribe, bSubscribe,
  event('b', 'unsubscribe', '2026-11-04T09:30', 'callback'),
  event('c', 'subscribe', '2026-10-20T09:00', 'callback', QR, 'camp1'),
  cUnsubscribe, cUnsubscribe,
  event('c', 'subscribe', '2026-10-25T15:00', 'callback', QR, 'camp2'),
  event('d', 'subscribe', '2026-09-01T08:00:00.750', 'correction', QR, 'camp2'),
  event('d', 'unsubscribe', '2026-09-10T08:00:00.250', 'correction'),
  event('e', 'subscribe', '2026-10-28T12:00', 'callback', 'ADD_SCENE_SEARCH'),
  event('e', 'unsubscribe', '2026-10-28T12:20', 'callback'),
  event('f', 'unsubscribe', '2026-10-05T10:00', 'callback'),
  event('f', 'subscribe', '2026-10-06T10:00', 'callback', QR, 'camp2'),
  event('f', 'subscribe', '2026-10-07T10:00', 'correction', 'ADD_SCENE_OTHERS'),
  event('g', 'subscribe', '2026-08-01T10:00', 'callback', QR, 'camp1'),
  event('g', 'unsubscribe', '2026-10-30T10:00', 'callback'),
  event('h', 'subscribe', '2026-11-10T10:00', 'callback', QR, 'camp1'),
  event('j', 'subscribe', '2026-10-31T23:30', 'callback', QR, 'camp3'),
  event('j', 'unsubscribe', '2026-11-03T23:30', 'callback'),
  event('j', 'subscribe', '2026-11-04T08:00', 'callback', 'ADD_SCENE_SEARCH'),
  event('j', 'unsubscribe', '2026-11-04T09:00', 'correction'),
  event('k', 'subscribe', '2026-11-02T00:30', 'callback', QR, 'camp2'),
  event('m', 'subscribe', '2026-10-10T10:00', 'callback', QR, 'camp1'),
  event('m', 'subscribe', '2026-10-12T10:00', 'correction', QR, 'camp1'),
  event('m', 'unsubscribe', '2026-10-20T10:00', 'callback'),
  event('x', 'subscribe', '2026-10-10T10:00', 'callback', QR, 'camp1', 'wx2'),
];
const NOW = beijing('2026-11-04T12:00:00');
const REQUEST: CampaignsRequest = { appid: APPID, nowMs: NOW, tz: 'Asia/Shanghai' };

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

test('the campaigns report from the raw event log equals the one from the rollups', async () => {
  const rollup = await campaignsReport(clickhouse, db, REQUEST);
  assert.ok(rollup.rollupsAsOf !== null);
  assert.deepEqual(await rawCampaignsReport(clickhouse, db, REQUEST, rollup.rollupsAsOf), rollup);
});

test('its figures are the ones computed by hand', async () => {
  const report = await rawCampaignsReport(clickhouse, db, REQUEST, null);
  assert.deepEqual(report.campaigns.map((c) => [c.campaign, c.brought, c.stillFollowing, c.lostWithin24h, c.medianSecondsToUnfollow]), [
    // camp1: b 5,400 s, c 39,600, m 864,000, g 7,776,000: the median lies halfway between c and m.
    ['camp1', 5, 1, 1, 451_800],
    ['camp2', 3, 2, 0, 777_600],
    ['camp3', 1, 0, 0, 259_200],
  ]);
  const [camp1] = report.campaigns;
  assert.ok(camp1 !== undefined);
  assert.deepEqual(camp1.retention.map((r) => [r.days, r.eligible, r.stayed]), [[1, 4, 3], [7, 4, 3], [30, 2, 2], [90, 1, 1]]);
  assert.equal(camp1.lostWithin24hShare, 1 / 4);
  assert.deepEqual(report.timeToUnfollow.map((b) => b.unfollows), [1, 3, 1, 2, 0, 1, 0]);
  // Weeks of first campaign follows since 08-17 (12 Mondays): 08-31 (d), 09-28 (a), 10-05 (f, m), 10-19 (c), 10-26 (j), 11-02 (b, k).
  assert.deepEqual(report.cohorts.map((c) => [c.week, c.followers]), [
    ['2026-08-31', 1], ['2026-09-28', 1], ['2026-10-05', 2], ['2026-10-19', 1], ['2026-10-26', 1], ['2026-11-02', 2],
  ]);
  // c: gone after 11 h, 15 days ago: still there in week 0, gone in weeks 1 and 2, week 3 not reached yet.
  assert.deepEqual(report.cohorts[3]?.shares.slice(0, 4), [1, 0, 0, null]);
});
