import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, sleep } from '../../lib/backoff.ts';

describe('backoff', () => {
  it('doubles from the initial delay up to the cap, with half of it jittered', () => {
    assert.equal(backoffDelay(0, 100, 1000, () => 0), 50);
    assert.equal(backoffDelay(0, 100, 1000, () => 1), 100);
    assert.equal(backoffDelay(3, 100, 1000, () => 1), 800);
    assert.equal(backoffDelay(50, 100, 1000, () => 1), 1000);
    assert.equal(backoffDelay(10_000, 100, 1000, () => 0.5), 750);
  });

  it('sleeps until aborted, without throwing', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => { controller.abort(); }, 10);
    await sleep(10_000, controller.signal);
    assert.ok(Date.now() - started < 1000);
  });
});
