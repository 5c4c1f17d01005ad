import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isWxsyncError } from '../../../lib/errors.ts';
import { lagging, waitForLoaded, type OffsetSource } from '../../../producers/reconcile/watermark.ts';

describe('reconcile watermark', () => {
  it('names the partitions whose committed offset is below the end offset; empty partitions need nothing', () => {
    const watermark = new Map([[0, '10'], [1, '0'], [2, '5'], [3, '7']]);
    assert.deepEqual(lagging(watermark, new Map([[0, '10'], [1, '-1'], [2, '4']])), [2, 3]);
    assert.deepEqual(lagging(watermark, new Map([[0, '12'], [2, '5'], [3, '7']])), []);
  });

  it('waits for T1 + grace, takes the end offsets then, and returns once the group reached them', async () => {
    let committed = '3';
    const ends: number[] = [];
    const offsets: OffsetSource = {
      endOffsets: () => { ends.push(Date.now()); return Promise.resolve(new Map([[0, '5']])); },
      committedOffsets: () => Promise.resolve(new Map([[0, committed]])),
    };
    const notBefore = Date.now() + 150;
    setTimeout(() => { committed = '5'; }, 300);
    await waitForLoaded({ offsets, groupId: 'g', topics: ['t'], notBefore, timeoutMs: 5000, pollMs: 20 });
    assert.ok((ends[0] ?? 0) >= notBefore, 'the watermark is read only after T1 + grace');
    assert.ok(Date.now() - notBefore >= 140);
  });

  it('fails retriably with STORE_BEHIND when the consumer does not catch up in time', async () => {
    const offsets: OffsetSource = {
      endOffsets: () => Promise.resolve(new Map([[0, '5'], [1, '2']])),
      committedOffsets: () => Promise.resolve(new Map([[0, '5']])),
    };
    await assert.rejects(waitForLoaded({ offsets, groupId: 'wxsync-clickhouse', topics: ['wx.user.events'], notBefore: 0, timeoutMs: 100, pollMs: 20 }), (error) => {
      assert.ok(isWxsyncError(error, 'STORE_BEHIND'));
      assert.equal(error.retriable, true);
      assert.match(error.message, /wx\.user\.events partitions 1/);
      return true;
    });
  });
});
