import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeUserEvent, encodeUserEvent } from '../../../lib/contracts/user-event.ts';
import { correctionEventId } from '../../../lib/contracts/event-id.ts';
import type { WechatUserProfile } from '../../../lib/wechat/client.ts';
import { missingCorrections, snapshotRefusal, staleCorrections, staleShareRefusal, type SnapshotFacts } from '../../../producers/reconcile/plan.ts';

const FACTS: SnapshotFacts = {
  appid: 'wxa', snapshotId: 's1', complete: true, loaded: true, reason: '', startedAt: 1_790_000_000_000, endedAt: 1_790_000_060_000,
  total: 1000, openids: 1000, windowEvents: 0,
};
const BASIS = { appid: 'wxa', snapshotId: 's1', startedAt: FACTS.startedAt, receivedAt: FACTS.endedAt + 5000 };
const OPENID = (n: number): string => `o6_bmjrPTlm6_2sgVt7hMZOP${String(n).padStart(4, '0')}`;

function profile(n: number, subscribe: 0 | 1, extra: Partial<WechatUserProfile> = {}): WechatUserProfile {
  return { openid: OPENID(n), subscribe, tagidList: [], ...extra };
}

describe('reconcile decisions', () => {
  it('reconciles only a complete, loaded snapshot whose distinct count matches total within the churn seen', () => {
    assert.equal(snapshotRefusal(FACTS), undefined);
    assert.match(snapshotRefusal({ ...FACTS, complete: false, reason: 'WECHAT_QUOTA_EXHAUSTED: 45009' }) ?? '', /incomplete \(WECHAT_QUOTA_EXHAUSTED: 45009\); an incomplete snapshot never produces corrections/);
    assert.match(snapshotRefusal({ ...FACTS, complete: false }) ?? '', /no end record/);
    assert.match(snapshotRefusal({ ...FACTS, loaded: false }) ?? '', /not fully loaded/);
    assert.equal(snapshotRefusal({ ...FACTS, openids: 997, windowEvents: 3 }), undefined, 'three follows/unfollows while paging explain a gap of three');
    assert.match(snapshotRefusal({ ...FACTS, openids: 990, windowEvents: 3 }) ?? '', /990 distinct openids but WeChat reported 1000 followers: a gap of 10, more than the 3 events/);
  });

  it('refuses a stale set above the share limit and names the setting', () => {
    assert.equal(staleShareRefusal(0, 0, 0.05), undefined);
    assert.equal(staleShareRefusal(50, 1000, 0.05), undefined, 'exactly at the limit is allowed');
    const refusal = staleShareRefusal(51, 1000, 0.05);
    assert.match(refusal ?? '', /the stale set \(51 followers to unsubscribe\) is 5\.10% of the snapshot's 1000 followers, above the limit of 5\.00% \(WXSYNC_RECONCILE_MAX_STALE_SHARE\)/);
    assert.match(staleShareRefusal(1, 0, 0.05) ?? '', /∞/, 'an empty snapshot never unsubscribes anyone');
  });

  it('missing → subscribe at the real subscribe_time with its scene, only when batchget still says subscribed', () => {
    const decided = missingCorrections(BASIS, [
      profile(1, 1, { subscribeTime: 1_700_000_000_000, subscribeScene: 'ADD_SCENE_QR_CODE', qrScene: 0, qrSceneStr: 'spring' }),
      profile(2, 0),
      profile(3, 1, { subscribeScene: '', qrScene: 42 }),
    ]);
    assert.deepEqual(decided.unconfirmed, [OPENID(2)]);
    assert.deepEqual(decided.events.map((e) => decodeUserEvent(encodeUserEvent(e))), [
      {
        v: 1, id: correctionEventId('s1', OPENID(1), 'subscribe'), appid: 'wxa', openid: OPENID(1), type: 'subscribe', at: 1_700_000_000_000,
        source: 'correction', scene: 'ADD_SCENE_QR_CODE', qrScene: 'spring', receivedAt: BASIS.receivedAt, correction: { snapshotId: 's1', rule: 'missing' },
      },
      {
        v: 1, id: correctionEventId('s1', OPENID(3), 'subscribe'), appid: 'wxa', openid: OPENID(3), type: 'subscribe', at: BASIS.startedAt,
        source: 'correction', qrScene: '42', receivedAt: BASIS.receivedAt, correction: { snapshotId: 's1', rule: 'missing' },
      },
    ]);
  });

  it('stale → unsubscribe at T0, only when batchget confirms subscribe: 0', () => {
    const decided = staleCorrections(BASIS, [profile(1, 0), profile(2, 1)]);
    assert.deepEqual(decided.unconfirmed, [OPENID(2)]);
    assert.equal(decided.events.length, 1);
    const event = decided.events[0];
    assert.ok(event);
    assert.equal(event.type, 'unsubscribe');
    assert.equal(event.at, BASIS.startedAt);
    assert.deepEqual(event.correction, { snapshotId: 's1', rule: 'stale' });
    assert.equal(event.id, correctionEventId('s1', OPENID(1), 'unsubscribe'), 'reconciling the same snapshot again gives the same id');
  });
});
