import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CronDue } from '../../../producers/snapshot/cron-due.ts';

// The scheduler (node-cron) reads expressions in the process's time zone, so the figures are local times.
const at = (iso: string): number => new Date(iso).getTime();

describe('CronDue: when the snapshot cron last came due', () => {
  it('finds the latest due time at or before now, then follows the clock', () => {
    const daily = new CronDue('0 3 * * *');
    assert.equal(daily.previous(at('2026-06-01T12:00:00')), at('2026-06-01T03:00:00'));
    assert.equal(daily.previous(at('2026-06-02T02:59:59')), at('2026-06-01T03:00:00'));
    assert.equal(daily.previous(at('2026-06-02T03:00:00')), at('2026-06-02T03:00:00'));
  });

  it('reads six-field expressions to the second', () => {
    assert.equal(new CronDue('*/20 * * * * *').previous(at('2026-06-01T12:00:59.500')), at('2026-06-01T12:00:40'));
  });

  it('gives none for a schedule with no due time in the last month', () => {
    assert.equal(new CronDue('0 0 1 1 *').previous(at('2026-06-01T12:00:00')), undefined);
  });
});
