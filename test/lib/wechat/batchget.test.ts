import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, WxsyncError } from '../../../lib/errors.ts';
import { batchGetProfiles, type ProfileSource } from '../../../lib/wechat/batchget.ts';
import { BATCHGET_API, parseProfile, type WechatUserProfile } from '../../../lib/wechat/client.ts';
import { SimHarness } from './sim-harness.ts';
import { failure } from '../../support/errors.ts';

/** A deterministic shuffle, so the order the results must keep is not WeChat's list order. */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  let seed = 12_345;
  for (let i = out.length - 1; i > 0; i -= 1) {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** A source that answers after a random delay and records the chunks and how many ran at once. */
function recording(fail?: (offset: number) => boolean): ProfileSource & { chunks: number[]; maxInFlight: number; inFlight: number; firstOf: string[] } {
  const state = {
    chunks: [] as number[],
    firstOf: [] as string[],
    maxInFlight: 0,
    inFlight: 0,
    async batchGetUserInfo(openids: readonly string[]): Promise<WechatUserProfile[]> {
      state.chunks.push(openids.length);
      state.firstOf.push(openids[0] ?? '');
      state.inFlight += 1;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      try {
        await delay(Math.floor(Math.random() * 5));
        if (fail?.(Number((openids[0] ?? '').slice(1))) === true) {
          throw new WxsyncError(ErrorCode.WechatRequestInvalid, 'invalid openid', { details: { api: BATCHGET_API, errcode: 40003 } });
        }
        return openids.map((openid) => ({ openid, subscribe: 1, subscribeTime: 1000, tagidList: [] }));
      } finally {
        state.inFlight -= 1;
      }
    },
  };
  return state;
}

describe('batchGetProfiles (recording source)', () => {
  const openids = Array.from({ length: 1050 }, (_, i) => `o${i}`);

  it('sends chunks of at most 100, keeps the concurrency bound, and answers in input order', async () => {
    const source = recording();
    const profiles = await batchGetProfiles(source, openids, { concurrency: 3 });
    assert.deepEqual(profiles.map((p) => p.openid), openids);
    assert.deepEqual([...source.chunks].sort((a, b) => b - a), [...new Array<number>(10).fill(100), 50]);
    assert.equal(source.maxInFlight, 3);
  });

  it('honours a smaller chunk size and a concurrency of 1', async () => {
    const source = recording();
    await batchGetProfiles(source, openids.slice(0, 95), { concurrency: 1, chunkSize: 20 });
    assert.deepEqual(source.chunks, [20, 20, 20, 20, 15]);
    assert.equal(source.maxInFlight, 1);
  });

  it('makes no call for no openids, and refuses chunk sizes above 100', async () => {
    const source = recording();
    assert.deepEqual(await batchGetProfiles(source, []), []);
    assert.equal(source.chunks.length, 0);
    await assert.rejects(batchGetProfiles(source, openids, { chunkSize: 101 }), { code: ErrorCode.UsageInvalid });
    await assert.rejects(batchGetProfiles(source, openids, { concurrency: 0 }), { code: ErrorCode.UsageInvalid });
  });

  it('stops starting chunks after an error, waits for those in flight, and names the failed chunk', async () => {
    const source = recording((offset) => offset === 300);
    const error = await failure(batchGetProfiles(source, openids, { concurrency: 2 }));
    assert.equal(error.code, ErrorCode.WechatRequestInvalid);
    assert.deepEqual([error.details['offset'], error.details['chunk'], error.details['errcode']], [300, 100, 40003]);
    assert.equal(source.inFlight, 0, 'nothing outlives the call');
    assert.ok(source.chunks.length <= 6, `chunks started after the failure: ${source.chunks.length}`);
  });
});

describe('batchGetProfiles against the simulator', () => {
  let sim: SimHarness;

  before(async () => {
    sim = await SimHarness.start({ followers: [250, 40] });
  });
  after(async () => {
    await sim.close();
  });

  it('gets every follower in 3 calls, in input order, exactly as the simulator describes them', async () => {
    const input = shuffled(await sim.followers(0));
    const profiles = await batchGetProfiles(sim.client(0), input, { concurrency: 2 });
    assert.deepEqual(profiles.map((p) => p.openid), input);
    assert.equal((await sim.calls(0, BATCHGET_API)).ok, 3);
    for (const profile of profiles.slice(0, 20)) {
      const view = await sim.admin('GET', `/__sim/accounts/${sim.account(0).appid}/users/${profile.openid}`);
      assert.deepEqual(profile, parseProfile(view, BATCHGET_API));
      assert.equal(profile.subscribe, 1);
      assert.equal(profile.subscribeTime, (view['subscribe_time'] as number) * 1000);
    }
  });

  it('answers subscribe: 0, with only openid (and unionid), for users who left', async () => {
    const appid = sim.account(1).appid;
    const churn = await sim.admin('POST', `/__sim/accounts/${appid}/churn`, { unsubscribe: 3 });
    const left = (churn['events'] as { openid: string; type: string }[]).filter((e) => e.type === 'unsubscribe').map((e) => e.openid);
    assert.equal(left.length, 3);
    const stayed = await sim.followers(1);
    const input = [...stayed.slice(0, 10), ...left, ...stayed.slice(10)];
    const profiles = await batchGetProfiles(sim.client(1), input);
    assert.deepEqual(profiles.map((p) => p.openid), input);
    for (const profile of profiles) {
      if (left.includes(profile.openid)) {
        assert.equal(profile.subscribe, 0);
        assert.deepEqual(Object.keys(profile).filter((k) => !['openid', 'subscribe', 'unionid', 'tagidList'].includes(k)), []);
      } else {
        assert.equal(profile.subscribe, 1);
      }
    }
  });

  it('fails with WECHAT_REQUEST_INVALID (40003) and the chunk offset for an openid the account does not know', async () => {
    const followers = await sim.followers(0);
    const input = [...followers.slice(0, 150), 'oUnknownOpenidOfAnotherAcct0', ...followers.slice(150)];
    const error = await failure(batchGetProfiles(sim.client(0), input, { concurrency: 1 }));
    assert.equal(error.code, ErrorCode.WechatRequestInvalid);
    assert.deepEqual([error.details['errcode'], error.details['offset']], [40003, 100]);
  });
});
