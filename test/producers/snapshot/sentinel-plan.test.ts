import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quotaResetAt } from '../../../producers/snapshot/plan.ts';
import { checkInterval, checkWindow, driftDecision, outcomeText, overdueSeconds } from '../../../producers/snapshot/sentinel-plan.ts';

const HOUR = 3600_000;
const MIN = 60_000;
// 14:00 Beijing time (06:00 UTC): the quota resets in 10 h, at 16:00 UTC.
const T = Date.UTC(2026, 5, 1, 6, 0, 0);

describe('sentinel plan: the interval, adapted to the user/get quota', () => {
  it('knows when the quota day ends: midnight Beijing time', () => {
    assert.equal(quotaResetAt(T), Date.UTC(2026, 5, 1, 16, 0, 0));
    assert.equal(quotaResetAt(Date.UTC(2026, 5, 1, 15, 59, 59, 999)), Date.UTC(2026, 5, 1, 16, 0, 0));
    assert.equal(quotaResetAt(Date.UTC(2026, 5, 1, 16, 0, 0)), Date.UTC(2026, 5, 2, 16, 0, 0), 'at midnight a new day starts');
  });

  it('keeps the configured interval while spare calls abound', () => {
    // 25,001 followers: 4 calls kept for the snapshot + 2 margin; 494 spare over 10 h = one per 72.9 s < 15 min.
    assert.deepEqual(checkInterval({ nowMs: T, configuredMs: 15 * MIN, remaining: 500, lastTotal: 25_001 }), { kind: 'check', intervalMs: 15 * MIN, spare: 494 });
  });

  it('spreads the spare calls evenly until the reset when they are few', () => {
    // 10 left, 6 kept: 4 spare over 10 h → one check every 2.5 h.
    assert.deepEqual(checkInterval({ nowMs: T, configuredMs: 15 * MIN, remaining: 10, lastTotal: 25_001 }), { kind: 'check', intervalMs: 2.5 * HOUR, spare: 4 });
    // No crawl yet: 1 call (the empty list's answer) + 2 kept; 7 spare over 10 h → 5,142,858 ms (rounded up).
    assert.deepEqual(checkInterval({ nowMs: T, configuredMs: 15 * MIN, remaining: 10, lastTotal: undefined }), { kind: 'check', intervalMs: 5_142_858, spare: 7 });
  });

  it('skips the check when every call left is the snapshot\'s', () => {
    const skipped = checkInterval({ nowMs: T, configuredMs: 15 * MIN, remaining: 6, lastTotal: 25_001 });
    assert.ok(skipped.kind === 'skip');
    assert.match(skipped.reason, /only 6 user\/get calls left today, 6 kept for a snapshot of ~25001 followers/);
    assert.equal(checkInterval({ nowMs: T, configuredMs: 15 * MIN, remaining: 0, lastTotal: 0 }).kind, 'skip');
  });
});

describe('sentinel plan: drift', () => {
  it('treats every event dated in a second the call touched as in flight', () => {
    assert.deepEqual(checkWindow(T + 400, T + 700), { beforeMs: T, untilMs: T + 999 });
    assert.deepEqual(checkWindow(T + 900, T + 1_200), { beforeMs: T, untilMs: T + 1_999 });
  });

  it('calls a difference drift only beyond the users in flight, either way', () => {
    assert.deepEqual(driftDecision({ wechatTotal: 1000, storeCount: 1000, inFlight: 0 }), { result: 'equal', drift: 0 });
    assert.deepEqual(driftDecision({ wechatTotal: 1003, storeCount: 1000, inFlight: 3 }), { result: 'equal', drift: 3 });
    assert.deepEqual(driftDecision({ wechatTotal: 997, storeCount: 1000, inFlight: 3 }), { result: 'equal', drift: -3 });
    assert.deepEqual(driftDecision({ wechatTotal: 1004, storeCount: 1000, inFlight: 3 }), { result: 'drift', drift: 4 });
    assert.deepEqual(driftDecision({ wechatTotal: 850, storeCount: 1000, inFlight: 0 }), { result: 'drift', drift: -150 });
  });

  it('says how the correction ended', () => {
    const done = { status: 'done', reason: '', corrections: 150 };
    assert.equal(outcomeText({ reconcile: done, waitedS: 40, recheck: { result: 'equal', drift: 0 } }), 'reconciled: 150 corrections; store = WeChat');
    assert.equal(outcomeText({ reconcile: done, waitedS: 40, recheck: { result: 'drift', drift: 7 } }), 'reconciled: 150 corrections; store ≠ WeChat (drift 7)');
    assert.equal(outcomeText({ reconcile: done, waitedS: 40, recheck: { result: 'failed', reason: 'WeChat said -1' } }), 'reconciled: 150 corrections; the check after it failed: WeChat said -1');
    assert.equal(outcomeText({ reconcile: done, waitedS: 40, recheck: undefined }), 'reconciled: 150 corrections');
    assert.equal(outcomeText({ reconcile: { status: 'refused', reason: 'stale share 9% > 5%', corrections: 0 }, waitedS: 40, recheck: undefined }), 'reconcile refused: stale share 9% > 5%');
    assert.equal(outcomeText({ reconcile: undefined, waitedS: 1800, recheck: undefined }), 'no reconcile within 1800 s');
  });
});

describe('sentinel plan: the scheduled snapshot overdue', () => {
  const due = Date.UTC(2026, 5, 1, 3, 0, 0);
  it('counts from the due time plus the grace, until a snapshot completes after the due time', () => {
    const started = due - 7 * 86_400_000;
    assert.equal(overdueSeconds(due + 30 * MIN, due, HOUR, undefined, started), 0, 'inside the grace');
    assert.equal(overdueSeconds(due + HOUR + 90_000, due, HOUR, undefined, started), 90);
    assert.equal(overdueSeconds(due + HOUR + 90_000, due, HOUR, due - 86_400_000 + 20 * MIN, started), 90, 'yesterday\'s snapshot does not count');
    assert.equal(overdueSeconds(due + 5 * HOUR, due, HOUR, due + 20 * MIN, started), 0, 'completed after the due time');
    assert.equal(overdueSeconds(due + 5 * HOUR, undefined, HOUR, undefined, started), 0, 'no schedule');
    assert.equal(overdueSeconds(due + 5 * HOUR, due, HOUR, undefined, due + 4 * HOUR), 0, 'a new installation: due before the role started');
    assert.equal(overdueSeconds(due + 5 * HOUR, due, HOUR, due - 86_400_000, due + 4 * HOUR), 4 * 3600, 'a restart does not excuse an account that had snapshots');
  });
});
