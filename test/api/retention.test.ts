import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { retentionReport, retentionRequest, shapeRetention } from '../../api/retention.ts';
import { userEventRow } from '../../consumers/clickhouse/route.ts';
import { createClickHouse, type ClickHouseClient } from '../../lib/clickhouse.ts';
import type { UserEvent } from '../../lib/contracts/user-event.ts';
import { silentLogger } from '../../lib/logger.ts';
import { migrate } from '../../lib/migrate.ts';
import { campaignsReport } from '../../reports/campaigns.ts';
import { refreshRollups } from '../../reports/refresh.ts';
import { testEnv, type TestEnv } from '../support/env.ts';

// Account wx1, "now" 2026-03-31 12:00 China time (UTC+8). QR = a follow through the campaign's QR code.
// | user | events                                                                                         | days old | lasted |
// | a    | 03-01 12:00 QR camp1; still following                                                         | 30       | –      |
// | b    | 03-20 12:00 QR camp1; 03-22 11:59:59 unsubscribe                                               | 11       | 1      |
// | c    | 03-29 12:00:00.500 QR camp1; 03-30 12:00:00.400 unsubscribe: 86,400 whole seconds crossed       | 1        | 1      |
// | d    | 03-31 11:00 QR camp2; still following                                                         | 0        | –      |
// | e    | 03-10 12:00 QR camp2; 13:00 unsubscribe                                                       | 21       | 0      |
// | f    | 03-01 search, 03-02 unsubscribe, 03-05 QR camp1: a returning follow, not counted               |          |        |
// | g    | 04-02 QR camp1: after now, not counted; h: account wx2, not counted                            |          |        |
// By hand (stayed / eligible), days 0…30:
//   camp1: d0 3/3; d1 3/3 (c lasted a whole day by seconds crossed); d2…d11 1/2 (a, b); d12…d30 1/1 (a).
//   camp2: d0 2/2; d1…d21 0/1 (e); d22…d30 none old enough.
const beijing = (local: string): number => Date.parse(`${local}+08:00`);
const NOW = beijing('2026-03-31T12:00:00');
const QR = 'ADD_SCENE_QR_CODE';
const EVENTS: [openid: string, type: UserEvent['type'], local: string, qrScene?: string, appid?: string][] = [
  ['a', 'subscribe', '2026-03-01T12:00:00', 'camp1'],
  ['b', 'subscribe', '2026-03-20T12:00:00', 'camp1'], ['b', 'unsubscribe', '2026-03-22T11:59:59'],
  ['c', 'subscribe', '2026-03-29T12:00:00.500', 'camp1'], ['c', 'unsubscribe', '2026-03-30T12:00:00.400'],
  ['d', 'subscribe', '2026-03-31T11:00:00', 'camp2'],
  ['e', 'subscribe', '2026-03-10T12:00:00', 'camp2'], ['e', 'unsubscribe', '2026-03-10T13:00:00'],
  ['f', 'subscribe', '2026-03-01T10:00:00'], ['f', 'unsubscribe', '2026-03-02T10:00:00'], ['f', 'subscribe', '2026-03-05T10:00:00', 'camp1'],
  ['g', 'subscribe', '2026-04-02T10:00:00', 'camp1'],
  ['h', 'subscribe', '2026-03-01T12:00:00', 'camp1', 'wx2'],
];

let env: TestEnv;
let clickhouse: ClickHouseClient;
let db: string;

before(async () => {
  env = testEnv();
  clickhouse = createClickHouse(env.config.clickhouse);
  db = env.config.clickhouse.database;
  await migrate(clickhouse, db, silentLogger());
  const origin = { topic: 't', partition: 0, offset: '0', key: null, value: null, timestamp: '0' };
  const values = EVENTS.map(([openid, type, local, qrScene, appid = 'wx1'], i) => {
    const at = beijing(local);
    const row = userEventRow({
      v: 1, id: `e${i}`, appid, openid, type, at, source: 'callback', receivedAt: at + 500, ...(qrScene === undefined ? {} : { scene: QR, qrScene }),
    }, origin);
    // `origin` is where the consumer read the record, not a column.
    return Object.fromEntries(Object.entries(row).filter(([column]) => column !== 'origin'));
  });
  await clickhouse.insert({ table: `${db}.user_events`, values, format: 'JSONEachRow' });
  await refreshRollups(clickhouse, db, { timeoutMs: 60_000 });
});

after(async () => {
  await clickhouse.close();
  env.cleanup();
});

test('the share still following by days since following is the one computed by hand', async () => {
  const report = await retentionReport(clickhouse, db, { appid: 'wx1', days: 30, nowMs: NOW });
  assert.equal(report.asOf, new Date(NOW).toISOString());
  assert.ok(report.rollupsAsOf !== null);
  const days = (from: number, to: number, stayed: number, eligible: number): [number, number, number][] =>
    Array.from({ length: to - from + 1 }, (_, i) => [from + i, stayed, eligible]);
  assert.deepEqual(report.campaigns.map((c) => [c.campaign, c.brought, c.retention.map((r) => [r.day, r.stayed, r.eligible])]), [
    ['camp1', 3, [...days(0, 1, 3, 3), ...days(2, 11, 1, 2), ...days(12, 30, 1, 1)]],
    ['camp2', 2, [...days(0, 0, 2, 2), ...days(1, 21, 0, 1), ...days(22, 30, 0, 0)]],
  ]);
  assert.deepEqual(report.campaigns[0]?.retention[2], { day: 2, eligible: 2, stayed: 1, share: 0.5 });
  assert.deepEqual(report.campaigns[1]?.retention[22], { day: 22, eligible: 0, stayed: 0, share: null });
});

test('it says what report campaigns says after 1, 7 and 30 days, and brought', async () => {
  const [retention, campaigns] = await Promise.all([
    retentionReport(clickhouse, db, { appid: 'wx1', days: 30, nowMs: NOW }),
    campaignsReport(clickhouse, db, { appid: 'wx1', nowMs: NOW, tz: 'Asia/Shanghai' }),
  ]);
  const mine = retention.campaigns.map((c) => [c.campaign, c.brought, [1, 7, 30].map((d) => {
    const r = c.retention[d];
    return r === undefined ? undefined : { days: r.day, eligible: r.eligible, stayed: r.stayed, share: r.share };
  })]);
  assert.deepEqual(mine, campaigns.campaigns.map((c) => [c.campaign, c.brought, c.retention.filter((r) => r.days !== 90)]));
});

test('shaping: cumulative counts, largest campaign first, ties by name', () => {
  const report = shapeRetention('wx1', 2, NOW, [
    { campaign: 'b', age: 3, lasted: 3, n: 2 },
    { campaign: 'a', age: 3, lasted: 0, n: 1 },
    { campaign: 'a', age: 1, lasted: 3, n: 1 },
  ], null);
  assert.deepEqual(report.campaigns.map((c) => [c.campaign, c.brought, c.retention.map((r) => r.share)]), [
    ['a', 2, [1, 0.5, 0]],
    ['b', 2, [1, 1, 1]],
  ]);
});

test('a request names a configured account and at most a year of days', () => {
  const config = { ...env.config, accounts: [{ appid: 'wx1', secret: 's', token: 't' }] };
  assert.deepEqual(retentionRequest(new URLSearchParams('appid=wx1'), config), { appid: 'wx1', days: 30 });
  assert.deepEqual(retentionRequest(new URLSearchParams('appid=wx1&days=365'), config), { appid: 'wx1', days: 365 });
  for (const [query, message] of [
    ['', /give an appid/], ['appid=wx9', /unknown account wx9/], ['appid=wx1&days=0', /days must be/], ['appid=wx1&days=366', /days must be/],
    ['appid=wx1&days=x', /days must be/], ['appid=wx1&from=2026-01-01', /unknown parameter "from"/],
  ] as const) {
    assert.throws(() => retentionRequest(new URLSearchParams(query), config), (error: Error & { code?: string }) => error.code === 'USAGE_INVALID' && message.test(error.message), query);
  }
});
