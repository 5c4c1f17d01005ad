import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeUserProfile, encodeUserProfile, type UserProfile } from '../../../lib/contracts/user-profile.ts';
import { ErrorCode, isWxsyncError } from '../../../lib/errors.ts';

const profile: UserProfile = {
  v: 1, appid: 'wxapp', openid: 'oUser', subscribe: 1, subscribeTime: Date.UTC(2025, 0, 1), unionid: 'uUnion',
  subscribeScene: 'ADD_SCENE_QR_CODE', qrScene: 98765, qrSceneStr: 'spring', tagidList: [2, 128], remark: '老客户', fetchedAt: Date.UTC(2026, 0, 1),
};

describe('user profile contract', () => {
  it('round-trips, also for a non-follower with only the required fields', () => {
    assert.deepEqual(decodeUserProfile(encodeUserProfile(profile)), profile);
    const gone: UserProfile = { v: 1, appid: 'wxapp', openid: 'oGone', subscribe: 0, tagidList: [], fetchedAt: profile.fetchedAt };
    assert.deepEqual(decodeUserProfile(encodeUserProfile(gone)), gone);
  });

  it('refuses invalid fields', () => {
    for (const bad of [{ subscribe: 2 }, { tagidList: [-1] }, { tagidList: Array(101).fill(1) }, { remark: 'r'.repeat(121) }, { subscribeScene: 'qr code' }]) {
      assert.throws(() => decodeUserProfile(Buffer.from(JSON.stringify({ ...profile, ...bad }))), (e: unknown) => isWxsyncError(e, ErrorCode.RecordInvalid));
    }
  });
});
