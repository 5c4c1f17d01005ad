import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { packageRoot } from '../../lib/config.ts';
import { churnReport } from '../../reports/churn.ts';
import { reportRange } from '../../reports/range.ts';
import { beijing, fixtureEvents, storeWithEvents, type EventStore } from '../support/event-store.ts';

// docs/grafana/wxsync-dashboard.json is for users with a ClickHouse server and Grafana, neither of which runs here:
// every query in it is run against the real schema (Grafana's macros and variables filled in as Grafana would),
// and the daily panels are checked against `wxsync report churn`.
interface Dashboard {
  panels: { title: string; targets: { rawSql: string }[] }[];
  templating: { list: { name: string; query?: string }[] };
}
const dashboard = JSON.parse(readFileSync(path.join(packageRoot, 'docs', 'grafana', 'wxsync-dashboard.json'), 'utf8')) as Dashboard;

const event = fixtureEvents('wx1');
const EVENTS = [
  event('a', 'subscribe', '2026-10-30T10:00', 'callback', 'ADD_SCENE_QR_CODE', 'camp1'),
  event('a', 'unsubscribe', '2026-11-01T09:00', 'correction'),
  event('b', 'subscribe', '2026-11-01T12:00', 'callback', 'ADD_SCENE_SEARCH'),
  event('c', 'subscribe', '2026-11-02T23:30', 'correction', 'ADD_SCENE_QR_CODE', 'camp1'),
];
const FROM = beijing('2026-11-01T00:00');
const TO = beijing('2026-11-04T00:00');

let store: EventStore;
before(async () => { store = await storeWithEvents(EVENTS); });
after(async () => { await store.close(); });

function filled(sql: string): string {
  return sql
    .replaceAll('${database}', store.db)
    .replaceAll('${appid:singlequote}', "'wx1'")
    .replaceAll('${tz}', 'Asia/Shanghai')
    .replace(/\$__timeFilter\(([a-z_]+)\)/g, (_, column: string) => `${column} >= toDateTime(${FROM / 1000}) AND ${column} < toDateTime(${TO / 1000})`);
}

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await store.clickhouse.query({ query: filled(sql), format: 'JSONEachRow' })).json<Record<string, unknown>>();
}

test('every panel and variable query runs on the schema, with nothing left unfilled', async () => {
  const queries = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.rawSql)), ...dashboard.templating.list.flatMap((v) => (v.name === 'appid' && v.query !== undefined ? [v.query] : []))];
  assert.equal(queries.length, 8);
  for (const sql of queries) {
    assert.doesNotMatch(filled(sql), /\$/, sql);
    await rows(sql);
  }
});

test('the daily panels give the figures of wxsync report churn', async () => {
  const report = await churnReport(store.clickhouse, store.db, { appids: ['wx1'], range: reportRange({ from: '2026-11-01', to: '2026-11-03', tz: 'Asia/Shanghai' }, TO) });
  const [daily, followers] = dashboard.panels.map((p) => p.targets[0]?.rawSql ?? '');
  const days = await rows(daily ?? '');
  assert.deepEqual(days.map((d) => [Number(d['follows']), Number(d['unfollows'])]), report.periods.filter((p) => p.follows + p.unfollows > 0).map((p) => [p.follows, p.unfollows]));
  const ends = await rows(followers ?? '');
  assert.deepEqual(ends.map((d) => Number(d['followers'])), report.periods.filter((p) => p.follows + p.unfollows > 0).map((p) => p.followersEnd));
});
