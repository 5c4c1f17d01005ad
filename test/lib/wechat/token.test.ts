import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, isWxsyncError } from '../../../lib/errors.ts';
import { silentLogger } from '../../../lib/logger.ts';
import { USER_GET_API } from '../../../lib/wechat/client.ts';
import { WechatHttp } from '../../../lib/wechat/http.ts';
import { TokenOwner } from '../../../lib/wechat/token.ts';
import { FakeWechat, json } from './fake-wechat.ts';
import { SimHarness } from './sim-harness.ts';
import { failure } from '../../support/errors.ts';

const STABLE = '/cgi-bin/stable_token';

describe('TokenOwner against the simulator', () => {
  let sim: SimHarness;

  before(async () => {
    sim = await SimHarness.start({ followers: [10, 10, 10, 10, 10] });
  });
  after(async () => {
    await sim.close();
  });

  it('fetches one stable_token (normal mode) for many concurrent calls, and reuses it', async () => {
    const client = sim.client(0);
    await Promise.all(Array.from({ length: 20 }, () => client.userGet()));
    await client.userGet();
    assert.equal((await sim.calls(0, STABLE)).calls, 1);
    assert.equal((await sim.calls(0, USER_GET_API)).ok, 21);
    assert.equal((await sim.calls(0, '/cgi-bin/token')).calls, 0, 'never the classic endpoint, which would invalidate other fetchers');
  });

  it('refreshes 300 s before expiry on its own clock, with no failed call', async () => {
    let offsetMs = 0;
    const client = sim.client(1, { now: () => Date.now() + offsetMs });
    const advance = async (seconds: number): Promise<void> => {
      offsetMs += seconds * 1000;
      await sim.admin('POST', '/__sim/clock', { advanceSeconds: seconds });
    };
    await client.userGet();
    const first = await client.tokens.token();
    await advance(7200 - 300 - 10);
    assert.equal(await client.tokens.token(), first, 'still more than 300 s left');
    await client.userGet();
    await advance(20);
    await client.userGet();
    assert.notEqual(await client.tokens.token(), first);
    assert.equal((await sim.calls(1, STABLE)).calls, 2);
    assert.deepEqual((await sim.calls(1, USER_GET_API)).errors, {});
  });

  it('refreshes once and retries once on 40001/40014/42001', async () => {
    const client = sim.client(2);
    await client.userGet();
    for (const errcode of [40001, 40014, 42001]) {
      await sim.faults(2, { failNext: { api: USER_GET_API, errcode } });
      await client.userGet();
    }
    assert.equal((await sim.calls(2, STABLE)).calls, 4);
    assert.deepEqual((await sim.calls(2, USER_GET_API)).errors, { 40001: 1, 40014: 1, 42001: 1 });
  });

  it('gives WECHAT_TOKEN_INVALID (not retriable) when the fresh token is rejected too', async () => {
    const client = sim.client(3);
    await sim.faults(3, { failNext: { api: USER_GET_API, errcode: 40001, count: 2 } });
    const error = await failure(client.userGet());
    assert.equal(error.code, ErrorCode.WechatTokenInvalid);
    assert.equal(error.retriable, false);
    assert.equal(error.details['refreshed'], true);
    assert.equal((await sim.calls(3, USER_GET_API)).calls, 2);
    assert.equal((await sim.calls(3, STABLE)).calls, 2);
  });

  it('reports a wrong secret or appid as WECHAT_REQUEST_INVALID, without retrying', async () => {
    const { appid, secret } = sim.account(4);
    const http = sim.http;
    const wrongSecret = new TokenOwner({ http, appid, secret: `${secret}x`, logger: silentLogger(), now: Date.now });
    const error = await failure(wrongSecret.token());
    assert.deepEqual([error.code, error.details['errcode']], [ErrorCode.WechatRequestInvalid, 40125]);
    const wrongAppid = new TokenOwner({ http, appid: 'wx0000000000000000', secret, logger: silentLogger(), now: Date.now });
    assert.deepEqual((await failure(wrongAppid.token())).details['errcode'], 40013);
    assert.equal((await sim.calls(4, STABLE)).calls, 1);
  });

  it('retries a busy token endpoint through the client', async () => {
    await sim.faults(4, { failNext: { api: STABLE, errcode: -1, count: 2 } });
    await sim.client(4).userGet();
    assert.equal((await sim.calls(4, STABLE)).errors['-1'], 2);
  });
});

describe('TokenOwner (scripted token endpoint)', () => {
  let fake: FakeWechat;
  let http: WechatHttp;

  before(async () => {
    fake = await FakeWechat.start();
    http = new WechatHttp({ baseUrl: fake.base, logger: silentLogger(), timeoutMs: 1000 });
  });
  after(async () => {
    http.close();
    await fake.close();
  });

  const owner = (now: () => number = Date.now): TokenOwner => new TokenOwner({ http, appid: 'wxfake', secret: 's', logger: silentLogger(), now });

  it('forgets a failed token only if it is still the cached one', async () => {
    const tokens = owner();
    const first = await tokens.token();
    tokens.invalidate('SOME-OLDER-TOKEN');
    assert.equal(await tokens.token(), first);
    tokens.invalidate(first);
    assert.notEqual(await tokens.token(), first);
  });

  it('shares a failing refresh among concurrent callers, and tries again on the next call', async () => {
    let calls = 0;
    fake.on(STABLE, () => {
      calls += 1;
      return calls === 1 ? json({ errcode: 40164, errmsg: 'invalid ip 1.2.3.4, not in whitelist' }) : json({ access_token: 'TOKEN-OK', expires_in: 7200 });
    });
    const tokens = owner();
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => tokens.token()));
    assert.ok(results.every((r) => r.status === 'rejected' && isWxsyncError(r.reason, ErrorCode.WechatForbidden)));
    assert.equal(calls, 1);
    assert.equal(await tokens.token(), 'TOKEN-OK');
    assert.equal(calls, 2);
  });

  it('refuses a malformed token answer', async () => {
    const answers: Record<string, unknown> = {
      'no access_token': { expires_in: 7200 },
      'an empty access_token': { access_token: '', expires_in: 7200 },
      'a token with spaces': { access_token: 'a b', expires_in: 7200 },
      'no expires_in': { access_token: 'T' },
      'expires_in as a string': { access_token: 'T', expires_in: '7200' },
      'a zero expires_in': { access_token: 'T', expires_in: 0 },
    };
    for (const [name, body] of Object.entries(answers)) {
      fake.on(STABLE, () => json(body));
      assert.equal((await failure(owner().token())).code, ErrorCode.WechatBadAnswer, name);
    }
  });

  it('uses a token shorter-lived than the margin for half its life instead of refetching on every call', async () => {
    let now = 1_000_000;
    fake.on(STABLE, () => json({ access_token: `T${now}`, expires_in: 200 }));
    const tokens = owner(() => now);
    const first = await tokens.token();
    now += 99_000;
    assert.equal(await tokens.token(), first);
    now += 2000;
    assert.notEqual(await tokens.token(), first);
  });

  it('refuses a refresh margin under 300 s', () => {
    assert.throws(() => new TokenOwner({ http, appid: 'a', secret: 's', logger: silentLogger(), now: Date.now, refreshMarginSeconds: 60 }), { code: ErrorCode.ConfigInvalid });
  });
});
