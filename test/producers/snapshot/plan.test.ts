import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  advance, endRecord, initialCheckpoint, ledgerFor, neededCalls, newSnapshotId, quotaDay, quotaDecision, remainingCalls, startDecision,
} from '../../../producers/snapshot/plan.ts';
import { encodeSnapshotRecord } from '../../../lib/contracts/snapshot.ts';

const T = Date.UTC(2026, 5, 1, 12, 0, 0);

describe('snapshot plan', () => {
  it('counts one call per 10,000 followers plus the end-of-list answer', () => {
    assert.equal(neededCalls(0), 1);
    assert.equal(neededCalls(1), 2);
    assert.equal(neededCalls(20_000), 3);
    assert.equal(neededCalls(25_001), 4);
    assert.equal(neededCalls(25_001, 2), 2);
    assert.equal(neededCalls(25_001, 9), 1);
  });

  it('refuses a crawl that cannot finish on the quota left, with a clear message', () => {
    assert.deepEqual(quotaDecision('wxa', 25_001, 0, 4), { ok: true, needed: 4 });
    const refused = quotaDecision('wxa', 25_001, 0, 3);
    assert.equal(refused.ok, false);
    assert.ok(!refused.ok);
    assert.match(refused.message, /wxa.*25001 followers need 4 user\/get calls.*only 3 left today/);
    assert.equal(quotaDecision('wxa', undefined, 0, 0).ok, true, 'an unknown size is tried');
    assert.equal(remainingCalls({ day: 'd', calls: 498 }, 500, undefined), 2);
    assert.equal(remainingCalls({ day: 'd', calls: 498 }, 500, 7), 7, "WeChat's own figure wins");
  });

  it('counts calls per Beijing-time day, carrying the follower estimate over', () => {
    assert.equal(quotaDay(Date.UTC(2026, 5, 1, 15, 59)), '2026-06-01');
    assert.equal(quotaDay(Date.UTC(2026, 5, 1, 16, 0)), '2026-06-02');
    const ledger = { day: '2026-06-01', calls: 40, lastTotal: 9 };
    assert.equal(ledgerFor(ledger, T), ledger);
    assert.deepEqual(ledgerFor(ledger, T + 86_400_000), { day: '2026-06-02', calls: 0, lastTotal: 9 });
  });

  it('resumes a young checkpoint and abandons an old one with the reason', () => {
    const cp = { ...initialCheckpoint('wxa', 's1', T), page: 2, updatedAt: T };
    assert.deepEqual(startDecision(undefined, T, 1000), { kind: 'fresh' });
    assert.deepEqual(startDecision(cp, T + 1000, 1000), { kind: 'resume', checkpoint: cp });
    const old = startDecision(cp, T + 5000, 1000);
    assert.ok(old.kind === 'abandon');
    assert.match(old.reason, /abandoned: .*page 2/);
  });

  it('gives a valid end record, complete only without a reason', () => {
    let cp = initialCheckpoint('wxa', newSnapshotId('wxa', T, () => 0.5), T);
    assert.equal(cp.snapshotId, 'wxa-20260601T120000Z-80000000');
    cp = advance(cp, { page: 0, nextOpenid: 'o1', total: 3, count: 3 }, T + 1);
    cp = advance(cp, { page: 1, nextOpenid: '', total: 3, count: 0 }, T + 2);
    const end = endRecord(cp, { complete: true }, T + 3);
    assert.deepEqual({ complete: end.complete, pages: end.pages, openids: end.openids, total: end.total }, { complete: true, pages: 2, openids: 3, total: 3 });
    encodeSnapshotRecord(end);
    const bad = endRecord(cp, { complete: true, reason: 'WECHAT_QUOTA_EXHAUSTED: 45009' }, T + 3);
    assert.equal(bad.complete, false);
    assert.equal(bad.reason, 'WECHAT_QUOTA_EXHAUSTED: 45009');
  });
});
