import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadRates } from '../../chaos/rates.ts';

test('the average over the whole load and the busiest stretch of at least the window', () => {
  // 0–10 s: 30,000 pushes (3,000/s); 10–40 s: wxsync down, 3,000 pushes (100/s); 40–50 s: 20,000 (2,000/s).
  const marks: [number, number][] = [[0, 0], [5_000, 15_000], [10_000, 30_000], [40_000, 33_000], [45_000, 43_000], [50_000, 53_000]];
  assert.deepEqual(loadRates(marks, 10_000), { seconds: 50, average: 53_000 / 50, busiest: 3_000 });
  // No stretch is as long as the window: nothing to call the busiest.
  assert.deepEqual(loadRates(marks, 60_000), { seconds: 50, average: 1_060, busiest: 0 });
});

test('a load with no round ended measures nothing', () => {
  assert.deepEqual(loadRates([], 10_000), { seconds: 0, average: 0, busiest: 0 });
  assert.deepEqual(loadRates([[7, 0]], 10_000), { seconds: 0, average: 0, busiest: 0 });
});
