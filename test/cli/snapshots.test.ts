import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatListing } from '../../cli/snapshots.ts';
import type { ListedSnapshot, SnapshotListing } from '../../producers/reconcile/compare.ts';

// The command itself runs against a store, directly and through `wxsync run`, in compare.test.ts.
const base: ListedSnapshot = {
  snapshotId: 's1', startedAt: '2026-03-01T10:00:00.000Z', endedAt: '2026-03-01T10:10:00.000Z', total: 1_000_000, openids: 1_000_000,
  state: 'complete', reason: '', data: 'dropped', droppedAt: '2026-03-09T10:12:00.000Z', reconcile: null, comparison: null,
};
const LISTING: SnapshotListing = {
  appid: 'wxa',
  keep: 7,
  snapshots: [
    base,
    { ...base, snapshotId: 's2', startedAt: '2026-03-01T22:00:00.000Z', endedAt: '2026-03-01T22:01:00.000Z', state: 'incomplete', reason: 'WECHAT_QUOTA_EXHAUSTED: 45009', data: 'kept', droppedAt: null },
    {
      ...base, snapshotId: 's3', startedAt: '2026-03-02T10:00:00.000Z', endedAt: '2026-03-02T10:10:00.000Z', total: 1_000_100, data: 'kept', droppedAt: null,
      reconcile: { status: 'done', reason: '', corrections: 1200, finishedAt: '2026-03-02T10:12:00.000Z', runs: 1 },
      comparison: { fromSnapshotId: 's1', added: 3000, addedUnexplained: 600, removed: 2900, removedUnexplained: 580, unexplainedShare: 1180 / 5900, computedAt: '2026-03-02T10:12:01.000Z' },
    },
  ],
};

describe('wxsync snapshots: output formats', () => {
  it('prints a table: one snapshot a line, oldest first, kept or dropped, the reconcile and the comparison with the one before', () => {
    assert.equal(formatListing(LISTING, 'table'), [
      'snapshot  started               ended                     total  state       data     reconcile                added (unexpl.)  removed (unexpl.)  unexpl. share  note',
      's1        2026-03-01 10:00:00Z  2026-03-01 10:10:00Z  1,000,000  complete    dropped  —                                      —                  —              —',
      's2        2026-03-01 22:00:00Z  2026-03-01 22:01:00Z  1,000,000  incomplete  kept     —                                      —                  —              —  WECHAT_QUOTA_EXHAUSTED: 45009',
      's3        2026-03-02 10:00:00Z  2026-03-02 10:10:00Z  1,000,100  complete    kept     done, 1,200 corrections     +3,000 (600)       −2,900 (580)         20.00%',
      'snapshot data is kept for the last 7 complete snapshots (WXSYNC_SNAPSHOT_KEEP); added and removed compare each with the complete snapshot before it',
      '',
    ].join('\n'));
    assert.equal(formatListing({ appid: 'wxa', keep: 7, snapshots: [] }, 'table'), 'wxa has no snapshot yet\n');
  });

  it('prints CSV with a header and every field, or one JSON object a line', () => {
    const csv = formatListing(LISTING, 'csv').trimEnd().split('\n');
    assert.equal(csv[0], 'snapshot_id,started_at,ended_at,total,openids,state,reason,data,dropped_at,reconcile_status,reconcile_corrections,compared_with,added,added_unexplained,removed,removed_unexplained,unexplained_share');
    assert.equal(csv[1], 's1,2026-03-01T10:00:00.000Z,2026-03-01T10:10:00.000Z,1000000,1000000,complete,,dropped,2026-03-09T10:12:00.000Z,,,,,,,,');
    assert.equal(csv[3], 's3,2026-03-02T10:00:00.000Z,2026-03-02T10:10:00.000Z,1000100,1000000,complete,,kept,,done,1200,s1,3000,600,2900,580,0.2');
    const lines = formatListing(LISTING, 'jsonl').trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
    assert.deepEqual(lines, LISTING.snapshots.map((s) => ({ appid: 'wxa', ...s })));
  });
});
