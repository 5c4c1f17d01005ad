import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isWxsyncError } from '../../../lib/errors.ts';
import {
  choosePair, compareOptions, explanationWindow, pairKey, pairsToRecord, snapshotState, snapshotsToDrop, summarize,
  type DetailCount, type RetentionEntry, type SnapshotEntry,
} from '../../../producers/reconcile/compare-plan.ts';

const HOUR = 3_600_000;
const BASE = Date.UTC(2026, 0, 1);

function snap(id: string, hour: number, extra: Partial<SnapshotEntry> = {}): SnapshotEntry {
  return {
    snapshotId: id, startedAt: BASE + hour * HOUR, endedAt: BASE + hour * HOUR + 60_000, ended: true, complete: true, loaded: true,
    reason: '', total: 100, openids: 100, ...extra,
  };
}

const rejects = (code: ErrorCode, pattern: RegExp, fn: () => unknown): void => {
  assert.throws(fn, (error: unknown) => isWxsyncError(error, code) && pattern.test(error.message));
};

describe('snapshot history decisions', () => {
  it('tells a snapshot\'s state from its end record and load', () => {
    assert.equal(snapshotState(snap('a', 0, { ended: false, complete: false, loaded: false })), 'running');
    assert.equal(snapshotState(snap('a', 0, { complete: false, reason: 'quota' })), 'incomplete');
    assert.equal(snapshotState(snap('a', 0, { loaded: false })), 'loading');
    assert.equal(snapshotState(snap('a', 0)), 'complete');
  });

  describe('choosePair', () => {
    const list = [
      snap('s1', 0), snap('s2', 1, { complete: false, reason: 'WECHAT_QUOTA_EXHAUSTED: 45009' }), snap('s3', 2), snap('s4', 3),
      snap('s5', 4, { loaded: false }), snap('s6', 5, { ended: false, complete: false, loaded: false }),
    ];
    const pick = (request: { from?: string; to?: string }): string[] => {
      const { from, to } = choosePair('wxa', list, request, 7);
      return [from.snapshotId, to.snapshotId];
    };

    it('defaults to the last two comparable snapshots, skipping incomplete, loading and running ones', () => {
      assert.deepEqual(pick({}), ['s3', 's4']);
      assert.deepEqual(pick({ to: 's3' }), ['s1', 's3']);
      assert.deepEqual(pick({ from: 's1' }), ['s1', 's4']);
      assert.deepEqual(pick({ from: 's1', to: 's3' }), ['s1', 's3']);
    });

    it('refuses unknown ids, the same snapshot twice and reversed ranges as usage errors', () => {
      rejects(ErrorCode.UsageInvalid, /unknown snapshot nope of wxa \(--from\)/, () => pick({ from: 'nope' }));
      rejects(ErrorCode.UsageInvalid, /unknown snapshot nope of wxa \(--to\)/, () => pick({ to: 'nope' }));
      rejects(ErrorCode.UsageInvalid, /both name s3/, () => pick({ from: 's3', to: 's3' }));
      rejects(ErrorCode.UsageInvalid, /--from s4 did not start before --to s1/, () => pick({ from: 's4', to: 's1' }));
    });

    it('refuses snapshots that exist but cannot be read, and too few snapshots, as unavailable', () => {
      rejects(ErrorCode.SnapshotUnavailable, /s2 of wxa is incomplete \(WECHAT_QUOTA_EXHAUSTED: 45009\)/, () => pick({ from: 's2' }));
      rejects(ErrorCode.SnapshotUnavailable, /s5 of wxa is not fully loaded/, () => pick({ to: 's5' }));
      rejects(ErrorCode.SnapshotUnavailable, /s6 of wxa has not ended/, () => pick({ to: 's6' }));
      rejects(ErrorCode.SnapshotUnavailable, /no complete snapshot after s4/, () => pick({ from: 's4' }));
      rejects(ErrorCode.SnapshotUnavailable, /no complete snapshot kept before s1/, () => pick({ to: 's1' }));
      const dropped = [snap('d1', 0, { droppedAt: BASE + 10 * HOUR }), snap('k1', 1), snap('k2', 2)];
      rejects(ErrorCode.SnapshotUnavailable, /d1 of wxa was dropped by retention on 2026-01-01T10:00:00.000Z \(the last 2 complete/, () => choosePair('wxa', dropped, { from: 'd1' }, 2));
      rejects(ErrorCode.SnapshotUnavailable, /no complete snapshot kept before k1/, () => choosePair('wxa', dropped, { to: 'k1' }, 2));
      rejects(ErrorCode.SnapshotUnavailable, /has no complete snapshot to compare/, () => choosePair('wxa', [], {}, 2));
      rejects(ErrorCode.SnapshotUnavailable, /has no complete snapshot kept before s1/, () => choosePair('wxa', [snap('s1', 0)], {}, 2));
    });
  });

  it('checks options as given: snapshot ids by the contract\'s pattern, --list a side', () => {
    assert.deepEqual(compareOptions({ from: 'wxa-20260101T000000Z-0a1b2c3d', list: 'removed' }), { from: 'wxa-20260101T000000Z-0a1b2c3d', list: 'removed' });
    assert.deepEqual(compareOptions({}), {});
    rejects(ErrorCode.UsageInvalid, /--to must be a snapshot id/, () => compareOptions({ to: "x' OR 1=1" }));
    rejects(ErrorCode.UsageInvalid, /--from must be a snapshot id/, () => compareOptions({ from: '' }));
    rejects(ErrorCode.UsageInvalid, /--list must be added or removed/, () => compareOptions({ list: 'both' }));
  });

  it('explains by callbacks from the older snapshot\'s start to the newer one\'s end, widened by δ', () => {
    const pair = { from: snap('a', 0), to: snap('b', 5) };
    assert.deepEqual(explanationWindow(pair, 60_000), { fromMs: BASE - 60_000, toMs: BASE + 5 * HOUR + 120_000 });
  });

  it('adds up the differences: totals, the unexplained share, and groups largest first', () => {
    const counts: DetailCount[] = [
      { side: 'added', explained: true, scene: 'ADD_SCENE_QR_CODE', campaign: 'spring', count: 60 },
      { side: 'added', explained: false, scene: 'ADD_SCENE_QR_CODE', campaign: 'spring', count: 15 },
      { side: 'added', explained: false, scene: 'ADD_SCENE_SEARCH', campaign: '', count: 5 },
      { side: 'removed', explained: true, scene: '', campaign: '', count: 16 },
      { side: 'removed', explained: false, scene: 'ADD_SCENE_QR_CODE', campaign: 'autumn', count: 4 },
    ];
    const summary = summarize(counts);
    assert.deepEqual(summary.added, { total: 80, explained: 60, unexplained: 20 });
    assert.deepEqual(summary.removed, { total: 20, explained: 16, unexplained: 4 });
    assert.equal(summary.unexplainedShare, 24 / 100);
    assert.deepEqual(summary.byScene, [
      { key: 'ADD_SCENE_QR_CODE', added: 75, addedUnexplained: 15, removed: 4, removedUnexplained: 4 },
      { key: '', added: 0, addedUnexplained: 0, removed: 16, removedUnexplained: 0 },
      { key: 'ADD_SCENE_SEARCH', added: 5, addedUnexplained: 5, removed: 0, removedUnexplained: 0 },
    ]);
    assert.deepEqual(summary.byCampaign, [
      { key: 'spring', added: 75, addedUnexplained: 15, removed: 0, removedUnexplained: 0 },
      { key: '', added: 5, addedUnexplained: 5, removed: 16, removedUnexplained: 0 },
      { key: 'autumn', added: 0, addedUnexplained: 0, removed: 4, removedUnexplained: 4 },
    ]);
    const none = summarize([]);
    assert.equal(none.unexplainedShare, null, 'no differences: no share, not 0/0');
    assert.deepEqual([none.added, none.byScene], [{ total: 0, explained: 0, unexplained: 0 }, []]);
  });

  it('records each comparable snapshot up to the one reconciled against the comparable one before it, once', () => {
    const list = [snap('s1', 0), snap('s2', 1, { complete: false }), snap('s3', 2), snap('s4', 3), snap('s5', 4)];
    const pairs = (upTo: string, recorded: string[] = []): string[] =>
      pairsToRecord(list, upTo, new Set(recorded)).map((p) => pairKey(p.from.snapshotId, p.to.snapshotId));
    assert.deepEqual(pairs('s4'), [pairKey('s1', 's3'), pairKey('s3', 's4')]);
    assert.deepEqual(pairs('s4', [pairKey('s1', 's3')]), [pairKey('s3', 's4')]);
    assert.deepEqual(pairs('s1'), [], 'the first snapshot has nothing before it');
    assert.deepEqual(pairs('s2'), [], 'a refused incomplete snapshot has only one comparable snapshot up to it');
    assert.deepEqual(pairs('unknown'), []);
  });

  describe('snapshotsToDrop', () => {
    const held = (s: SnapshotEntry, hasMembers = true): RetentionEntry => ({ ...s, hasMembers });
    const list: RetentionEntry[] = [
      held(snap('old-incomplete', 0, { complete: false })), held(snap('c1', 1)), held(snap('c2', 2)), held(snap('mid-incomplete', 3, { complete: false })),
      held(snap('c3', 4)), held(snap('loading', 5, { loaded: false })), held(snap('c4', 6)), held(snap('running', 7, { ended: false, complete: false, loaded: false })),
    ];
    const drops = (keep: number, entries = list, inUse: string[] = []): string[] => snapshotsToDrop(entries, keep, new Set(inUse)).map((s) => s.snapshotId);

    it('keeps the last `keep` complete snapshots and everything after the oldest of them', () => {
      assert.deepEqual(drops(2), ['old-incomplete', 'c1', 'c2', 'mid-incomplete']);
      assert.deepEqual(drops(3), ['old-incomplete', 'c1']);
      assert.deepEqual(drops(4), ['old-incomplete']);
      assert.deepEqual(drops(5), [], 'fewer complete snapshots than kept: nothing goes');
    });

    it('never drops a snapshot a comparison is reading, nor the newest complete one', () => {
      assert.deepEqual(drops(2, list, ['c1']), ['old-incomplete', 'c2', 'mid-incomplete']);
      const two = [held(snap('a', 0)), held(snap('b', 1))];
      assert.deepEqual(drops(2, two), []);
    });

    it('drops a dropped snapshot again only when members of it are back', () => {
      const dropped = [
        held(snap('gone', 0, { droppedAt: BASE }), false), held(snap('back', 1, { droppedAt: BASE }), true), held(snap('k1', 2)), held(snap('k2', 3)),
      ];
      assert.deepEqual(drops(2, dropped), ['back']);
      assert.deepEqual(drops(2, [held(snap('nobegin', 0, { startedAt: 0 })), held(snap('k1', 2)), held(snap('k2', 3))]), [], 'a snapshot without its begin record is never dropped');
    });
  });
});
