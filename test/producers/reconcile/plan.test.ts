import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeUserEvent, encodeUserEvent } from '../../../lib/contracts/user-event.ts';
import { correctionEventId } from '../../../lib/contracts/event-id.ts';
import type { WechatUserProfile } from '../../../lib/wechat/client.ts';
import { eventOrder } from '../../../consumers/clickhouse/route.ts';
import { MAX_MS, MIN_MS } from '../../../lib/contracts/fields.ts';
import {
  confirmationTime, decide, snapshotRefusal, staleShareRefusal, storeView, type Candidate, type SnapshotFacts,
} from '../../../producers/reconcile/plan.ts';

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

  it('reads the store\'s state off the newest event order: bit 0 is the type, `at` above bit 22', () => {
    for (const [type, source, at] of [['subscribe', 'callback', 1_700_000_000_000], ['unsubscribe', 'correction', MAX_MS], ['subscribe', 'correction', MIN_MS]] as const) {
      const view = storeView(eventOrder({ at, source, type, receivedAt: at + 1500 }));
      assert.deepEqual(view, { following: type === 'subscribe', lastAt: at });
    }
    assert.deepEqual(storeView(0n), { following: false, lastAt: undefined }, 'no event: not following, nothing to order against');
  });

  it('confirms live at the whole second before the call, so a push stamped later can never carry an earlier CreateTime', () => {
    assert.equal(confirmationTime(1_790_000_123_456), 1_790_000_122_000);
    assert.equal(confirmationTime(1_790_000_123_000), 1_790_000_122_000);
  });

  // One row per case, computed by hand. T0 = 1_790_000_000_000; the store's newest event is given as (type, at).
  //   rule     window  store (type @ at)          WeChat now (subscribe, subscribe_time)   → outcome
  //   missing  no      none                       1 @ 1_700_000_000_000                     subscribe @ 1_700_000_000_000 ('missing')
  //   missing  no      unsubscribe @ 1_600_…      1, no subscribe_time                      subscribe @ T0, fallback
  //   missing  no      unsubscribe @ 1_600_…      1 @ 1_500_000_000_000 (before the store)  skip: not later than the store's newest event
  //   missing  no      none                       1 @ 1999-12-31 (outside the contract)     subscribe @ T0, fallback
  //   missing  no      none                       0                                          agree (batchget no longer confirms it)
  //   stale    no      subscribe @ 1_600_…        0                                          unsubscribe @ T0 ('stale')
  //   stale    no      subscribe @ 1_600_…        1                                          agree
  //   stale    yes     subscribe @ T0 + 5 s       0, confirmed at T0 + 60 s                  unsubscribe @ T0 + 60 s ('live')
  //   live     yes     subscribe @ T0 + 61 s      0, confirmed at T0 + 60 s                  skip (the store's event is newer than the answer's time)
  //   missing  yes     unsubscribe @ T0 + 5 s     1 @ T0 + 30 s                              subscribe @ T0 + 30 s ('live')
  //   live     yes     unsubscribe @ T0 + 30 s    1 @ T0 + 30 s (same second)                skip: not later
  //   live     yes     unsubscribe @ T0 + 5 s     1, no subscribe_time                       skip: no usable subscribe_time
  //   live     yes     subscribe @ T0 + 5 s       1 @ T0 + 5 s                               agree
  it('decides every case of the hand-computed table', () => {
    const T0 = FACTS.startedAt;
    const ord = (type: 'subscribe' | 'unsubscribe', at: number): bigint => eventOrder({ at, type, source: 'callback', receivedAt: at });
    const c = (rule: Candidate['rule'], inWindow: boolean, storeOrd: bigint): Candidate => ({ rule, openid: OPENID(1), inWindow, storeOrd });
    const got = (candidate: Candidate, answer: WechatUserProfile, confirmedAt = T0 + 60_000): string => {
      const outcome = decide(BASIS, candidate, answer, confirmedAt);
      if (outcome.kind !== 'emit') return outcome.kind === 'skip' ? `skip: ${outcome.why}` : 'agree';
      const e = decodeUserEvent(encodeUserEvent(outcome.event));
      return `${e.type} @ ${e.at} (${e.correction?.rule ?? ''})${outcome.fallbackTime ? ' fallback' : ''}`;
    };
    const old = 1_600_000_000_000;
    assert.deepEqual([
      got(c('missing', false, 0n), profile(1, 1, { subscribeTime: 1_700_000_000_000 })),
      got(c('missing', false, ord('unsubscribe', old)), profile(1, 1)),
      got(c('missing', false, ord('unsubscribe', old)), profile(1, 1, { subscribeTime: 1_500_000_000_000 })),
      got(c('missing', false, 0n), profile(1, 1, { subscribeTime: Date.UTC(1999, 11, 31) })),
      got(c('missing', false, 0n), profile(1, 0)),
      got(c('stale', false, ord('subscribe', old)), profile(1, 0)),
      got(c('stale', false, ord('subscribe', old)), profile(1, 1)),
      got(c('stale', true, ord('subscribe', T0 + 5000)), profile(1, 0)),
      got(c('live', true, ord('subscribe', T0 + 61_000)), profile(1, 0)),
      got(c('missing', true, ord('unsubscribe', T0 + 5000)), profile(1, 1, { subscribeTime: T0 + 30_000 })),
      got(c('live', true, ord('unsubscribe', T0 + 30_000)), profile(1, 1, { subscribeTime: T0 + 30_000 })),
      got(c('live', true, ord('unsubscribe', T0 + 5000)), profile(1, 1)),
      got(c('live', true, ord('subscribe', T0 + 5000)), profile(1, 1, { subscribeTime: T0 + 5000 })),
    ], [
      'subscribe @ 1700000000000 (missing)',
      `subscribe @ ${T0} (missing) fallback`,
      'skip: not later than the store\'s newest event',
      `subscribe @ ${T0} (missing) fallback`,
      'agree',
      `unsubscribe @ ${T0} (stale)`,
      'agree',
      `unsubscribe @ ${T0 + 60_000} (live)`,
      'skip: not later than the store\'s newest event',
      `subscribe @ ${T0 + 30_000} (live)`,
      'skip: not later than the store\'s newest event',
      'skip: WeChat gave no usable subscribe_time',
      'agree',
    ]);
  });

  it('a correction carries the scene and QR scene of the subscribe, and its id depends only on (snapshot, openid, type)', () => {
    const outcome = decide(BASIS, { rule: 'missing', openid: OPENID(1), inWindow: false, storeOrd: 0n },
      profile(1, 1, { subscribeTime: 1_700_000_000_000, subscribeScene: 'ADD_SCENE_QR_CODE', qrScene: 0, qrSceneStr: 'spring' }), FACTS.endedAt);
    assert.ok(outcome.kind === 'emit');
    assert.deepEqual(decodeUserEvent(encodeUserEvent(outcome.event)), {
      v: 1, id: correctionEventId('s1', OPENID(1), 'subscribe'), appid: 'wxa', openid: OPENID(1), type: 'subscribe', at: 1_700_000_000_000,
      source: 'correction', scene: 'ADD_SCENE_QR_CODE', qrScene: 'spring', receivedAt: BASIS.receivedAt, correction: { snapshotId: 's1', rule: 'missing' },
    });
    const numeric = decide(BASIS, { rule: 'missing', openid: OPENID(3), inWindow: false, storeOrd: 0n }, profile(3, 1, { subscribeScene: '', qrScene: 42 }), FACTS.endedAt);
    assert.equal(numeric.kind === 'emit' ? numeric.event.qrScene : undefined, '42');
    const live = decide(BASIS, { rule: 'live', openid: OPENID(3), inWindow: true, storeOrd: 1n << 22n }, profile(3, 0), FACTS.endedAt);
    assert.equal(live.kind === 'emit' ? live.event.id : undefined, correctionEventId('s1', OPENID(3), 'unsubscribe'), 'reconciling the same snapshot again gives the same id');
  });
});
