import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LogThrottle } from '../../lib/log-throttle.ts';

test('logs the first occurrence, then once per interval with the count since the last line', () => {
  let now = 1000;
  const throttle = new LogThrottle(30_000, () => now);
  const lines: number[] = [];
  const log = (n: number): void => { lines.push(n); };
  throttle.hit(log);
  for (let i = 0; i < 5; i += 1) throttle.hit(log);
  assert.deepEqual(lines, [1]);
  now += 30_000;
  throttle.hit(log);
  assert.deepEqual(lines, [1, 6]);
  now += 29_999;
  throttle.hit(log);
  assert.deepEqual(lines, [1, 6]);
});
