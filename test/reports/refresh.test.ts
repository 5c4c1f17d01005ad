import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refreshDelay, refreshOutcome } from '../../reports/refresh.ts';

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
