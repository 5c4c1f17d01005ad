import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refreshDelay, refreshOutcome, rollupsAsOf, rollupsReadFrom, viewRefresh } from '../../reports/refresh.ts';
import { storeWithEvents } from '../support/event-store.ts';

test('a refresh waits a few seconds, and twice the last one\'s duration after it ended', () => {
  assert.equal(refreshDelay(1000, 3000, Number.NEGATIVE_INFINITY, 0), 3000);
  // The last refresh took 300 s and ended 100 s ago: the next may start 500 s from now.
  assert.equal(refreshDelay(1_000_000, 3000, 900_000, 300_000), 500_000);
  // A quick one long ago: only the delay.
  assert.equal(refreshDelay(1_000_000, 3000, 100_000, 500), 3000);
});

test('a refresh counts only when it began in or after the marked second and succeeded', () => {
  const state = (status: string, lastRefresh: number | null, lastSuccess: number | null, exception = '') => ({ status, lastRefresh, lastSuccess, exception });
  assert.equal(refreshOutcome(state('Scheduled', null, null), 100), 'wait');
  assert.equal(refreshOutcome(state('Scheduled', 99, 99), 100), 'wait', 'began before the mark');
  assert.equal(refreshOutcome(state('Running', 100, 99), 100), 'wait');
  assert.equal(refreshOutcome(state('Scheduled', 100, 100), 100), 'done');
  assert.equal(refreshOutcome(state('Scheduled', 101, 99, 'MEMORY_LIMIT_EXCEEDED'), 100), 'failed');
  assert.equal(refreshOutcome(state('Scheduled', 101, 99), 100), 'wait', 'attempted, not yet recorded either way');
});

test('the rollups are dated by this process\'s refreshes, or by the last one a process recorded, whichever is newer', () => {
  // A process that opened the store afresh: no view refreshed here yet, the last run recorded 1000.
  assert.equal(rollupsReadFrom([null, null, null], 1000), 1000);
  assert.equal(rollupsReadFrom([undefined, 1200, 1200], 1000), 1000, 'one view not refreshed here: the recorded refresh');
  // This process refreshed all three since: the oldest of them.
  assert.equal(rollupsReadFrom([1300, 1301, 1302], 1000), 1300);
  assert.equal(rollupsReadFrom([900, 900, 900], 1000), 1000, 'the recorded one is newer');
  assert.equal(rollupsReadFrom([null, null, null], 0), 0, 'never refreshed anywhere');
});

test('a refresh wxsync waits on is recorded in the store with the second it began reading user_events', async () => {
  const store = await storeWithEvents([]);
  try {
    const [row] = await (await store.clickhouse.query({
      query: `SELECT toUnixTimestamp(max(read_from)) AS seconds, count() AS n FROM ${store.db}.rollup_refreshes`, format: 'JSONEachRow',
    })).json<{ seconds: number; n: string }>();
    const spells = await viewRefresh(store.clickhouse, store.db, 'follow_spells_refresh');
    assert.equal(row?.n, '1');
    assert.equal(row.seconds, spells?.lastRefresh, 'the start of the follow_spells refresh');
    assert.equal(await rollupsAsOf(store.clickhouse, store.db), new Date((spells?.lastSuccess ?? 0) * 1000).toISOString());
  } finally {
    await store.close();
  }
});
