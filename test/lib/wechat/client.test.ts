import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { ErrorCode, isWxsyncError } from '../../../lib/errors.ts';
import { silentLogger } from '../../../lib/logger.ts';
import {
  BATCHGET_API,
  USER_GET_API,
  USER_INFO_API,
  WechatClient,
  WechatClients,
  parseProfile,
  parseUserGet,
} from '../../../lib/wechat/client.ts';
import { WechatHttp } from '../../../lib/wechat/http.ts';
import { followerPages } from '../../../lib/wechat/pager.ts';
import { FakeWechat, json } from './fake-wechat.ts';
import { FAST_RETRY, SimHarness } from './sim-harness.ts';
import { failure } from '../../support/errors.ts';

function badAnswerOf(fn: () => unknown, name: string): void {
  assert.throws(fn, (error: unknown) => isWxsyncError(error, ErrorCode.WechatBadAnswer), name);
}

const page = (openid: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  total: 10, count: Array.isArray(openid) ? openid.length : 1, data: { openid }, next_openid: 'oZ', ...extra,
});

describe('parseUserGet', () => {
  it('reads a page, the end-of-list answer and the zero-follower answer', () => {
    assert.deepEqual(parseUserGet(page(['oA', 'oB'], { next_openid: 'oB' })), { total: 10, count: 2, hasData: true, openids: ['oA', 'oB'], nextOpenid: 'oB' });
    assert.deepEqual(parseUserGet({ total: 10, count: 0, next_openid: '' }), { total: 10, count: 0, hasData: false, openids: [], nextOpenid: '' });
    assert.deepEqual(parseUserGet({ total: 0, count: 0 }), { total: 0, count: 0, hasData: false, openids: [], nextOpenid: '' });
  });

  it('refuses every wrong shape with WECHAT_BAD_ANSWER', () => {
    const cases: Record<string, Record<string, unknown>> = {
      'no total': { count: 0 },
      'total as a string': { total: '10', count: 0 },
      'negative total': { total: -1, count: 0 },
      'no count': { total: 1, data: { openid: ['oA'] }, next_openid: 'oA' },
      'count as a string': page(['oA'], { count: '1' }),
      'fractional count': page(['oA'], { count: 1.5 }),
      'count larger than the list': page(['oA', 'oB'], { count: 3 }),
      'count smaller than the list': page(['oA', 'oB'], { count: 1 }),
      'count 0 with openids': page(['oA'], { count: 0 }),
      'count above 10,000': page(['oA'], { count: 10_001 }),
      'count without data': { total: 5, count: 5, next_openid: 'oA' },
      'data as an array': { total: 1, count: 1, data: ['oA'], next_openid: 'oA' },
      'data.openid as a string': { total: 1, count: 1, data: { openid: 'oA' }, next_openid: 'oA' },
      'data.openid missing with count 1': { total: 1, count: 1, data: {}, next_openid: 'oA' },
      'an openid that is a number': page([12_345]),
      'an openid that is null': page(['oA', null]),
      'an openid that is an object': page([{ openid: 'oA' }]),
      'an openid with a space': page(['o A']),
      'an openid with a quote': page(['o"A']),
      'an overlong openid': page(['o'.repeat(65)]),
      'next_openid as a number': page(['oA'], { next_openid: 5 }),
      'next_openid as null': page(['oA'], { next_openid: null }),
      'next_openid missing on a page with openids': { total: 1, count: 1, data: { openid: ['oA'] } },
    };
    for (const [name, body] of Object.entries(cases)) badAnswerOf(() => parseUserGet(body), name);
  });
});

describe('parseProfile', () => {
  it('reads a follower into the contract field names, subscribe_time in ms', () => {
    const profile = parseProfile({
      subscribe: 1, openid: 'oA', language: 'zh_CN', subscribe_time: 1_700_000_000, unionid: 'uA', remark: '', groupid: 0,
      tagid_list: [2, 100], subscribe_scene: 'ADD_SCENE_QR_CODE', qr_scene: 98_765, qr_scene_str: 'promo',
    }, BATCHGET_API);
    assert.deepEqual(profile, {
      openid: 'oA', subscribe: 1, subscribeTime: 1_700_000_000_000, unionid: 'uA', subscribeScene: 'ADD_SCENE_QR_CODE',
      qrScene: 98_765, qrSceneStr: 'promo', tagidList: [2, 100], remark: '', language: 'zh_CN', groupid: 0,
    });
  });

  it('reads a non-follower, who carries only openid (and unionid)', () => {
    assert.deepEqual(parseProfile({ subscribe: 0, openid: 'oA', unionid: 'uA' }, BATCHGET_API), { openid: 'oA', subscribe: 0, unionid: 'uA', tagidList: [] });
  });

  it('refuses wrong shapes', () => {
    const cases: Record<string, unknown> = {
      'not an object': 'oA',
      'no openid': { subscribe: 0 },
      'openid as a number': { subscribe: 0, openid: 1 },
      'subscribe as a string': { subscribe: '1', openid: 'oA', subscribe_time: 1 },
      'subscribe 2': { subscribe: 2, openid: 'oA' },
      'a follower without subscribe_time': { subscribe: 1, openid: 'oA' },
      'subscribe_time as a string': { subscribe: 1, openid: 'oA', subscribe_time: '1700000000' },
      'tagid_list of strings': { subscribe: 1, openid: 'oA', subscribe_time: 1, tagid_list: ['2'] },
      'remark as a number': { subscribe: 1, openid: 'oA', subscribe_time: 1, remark: 5 },
      'negative qr_scene': { subscribe: 1, openid: 'oA', subscribe_time: 1, qr_scene: -1 },
    };
    for (const [name, item] of Object.entries(cases)) badAnswerOf(() => parseProfile(item, BATCHGET_API), name);
  });
});

describe('WechatClient against the simulator', () => {
  let sim: SimHarness;

  before(async () => {
    sim = await SimHarness.start({ followers: [50, 50, 50] });
  });
  after(async () => {
    await sim.close();
  });

  it('reads one user, a quota, and reports an unknown openid as WECHAT_REQUEST_INVALID (40003)', async () => {
    const client = sim.client(0);
    const [openid] = await sim.followers(0);
    assert.ok(openid !== undefined);
    const profile = await client.userInfo(openid);
    assert.equal(profile.openid, openid);
    assert.equal(profile.subscribe, 1);
    assert.ok((profile.subscribeTime ?? 0) > 1_000_000_000_000);

    const before = await client.quotaGet(USER_GET_API);
    await client.userGet();
    const later = await client.quotaGet(USER_GET_API);
    assert.equal(later.used, before.used + 1);
    assert.equal(later.remain, later.dailyLimit - later.used);

    const unknown = await failure(client.userInfo(`${openid.slice(0, -4)}zzzz`));
    assert.equal(unknown.code, ErrorCode.WechatRequestInvalid);
    assert.equal(unknown.details['errcode'], 40003);
    assert.equal(unknown.details['api'], USER_INFO_API);
  });

  it('makes a bounded number of attempts on -1, then gives WECHAT_BUSY (retriable) and nothing more', async () => {
    await sim.faults(1, { failNext: { api: USER_GET_API, errcode: -1, count: 100 } });
    const error = await failure(sim.client(1).userGet());
    assert.equal(error.code, ErrorCode.WechatBusy);
    assert.equal(error.retriable, true);
    assert.equal(error.details['attempts'], FAST_RETRY.attempts);
    const calls = await sim.calls(1, USER_GET_API);
    assert.deepEqual(calls.errors, { '-1': FAST_RETRY.attempts });
    await sim.faults(1, { clearFailNext: true });
  });

  it('never sends more than 100 openids to batchget', async () => {
    const openids = Array.from({ length: 101 }, (_, i) => `o${i}`);
    const before = await sim.calls(2, BATCHGET_API);
    const error = await failure(sim.client(2).batchGetUserInfo(openids));
    assert.equal(error.code, ErrorCode.WechatRequestInvalid);
    assert.deepEqual(await sim.calls(2, BATCHGET_API), before);
  });

  it('logs no secret and no access token, whatever happens', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = pino({ level: 'trace' }, sink);
    const { appid, secret } = sim.account(2);
    const http = new WechatHttp({ baseUrl: sim.apiBase, logger });
    const client = new WechatClient({ account: { appid, secret }, http, logger, retry: FAST_RETRY });
    try {
      await sim.faults(2, { failNext: [{ api: USER_GET_API, errcode: -1 }, { api: USER_GET_API, errcode: 42001, after: 1 }] });
      for await (const p of followerPages(client)) assert.ok(p.page < 5);
      await client.batchGetUserInfo((await sim.followers(2)).slice(0, 3));
      const wrong = new WechatClient({ account: { appid, secret: `${secret}x` }, http, logger, retry: FAST_RETRY });
      const error = await failure(wrong.userGet());
      assert.equal(error.code, ErrorCode.WechatRequestInvalid);
      logger.error({ err: error }, 'as a caller would log it');
    } finally {
      http.close();
    }
    const text = lines.join('');
    assert.ok(text.includes('retrying') && text.includes('access token rejected'), 'the log saw the failures');
    assert.ok(!text.includes(secret), 'no AppSecret in the log');
    assert.ok(!/access_token=|"access_token"|\b8\d_[A-Za-z0-9_-]{100,}/.test(text), 'no access token in the log');
  });
});

describe('WechatClient against hostile answers', () => {
  let fake: FakeWechat;
  let http: WechatHttp;
  let client: WechatClient;

  before(async () => {
    fake = await FakeWechat.start();
    http = new WechatHttp({ baseUrl: fake.base, logger: silentLogger(), timeoutMs: 1000, maxResponseBytes: 1024 * 1024 });
    client = new WechatClient({ account: { appid: 'wxfake', secret: 'fake-secret' }, http, logger: silentLogger(), retry: FAST_RETRY });
  });
  after(async () => {
    http.close();
    await fake.close();
  });

  it('gives WECHAT_BAD_ANSWER with the resume point for every hostile user/get answer, after good pages', async () => {
    const hostile: Record<string, () => ReturnType<typeof json>> = {
      'non-JSON': () => ({ body: 'system error' }),
      'an HTML error page': () => ({ headers: { 'content-type': 'text/html' }, body: '<html><title>500</title></html>' }),
      'a huge body': () => json({ total: 1, count: 1, data: { openid: Array.from({ length: 40_000 }, (_, i) => `o${i}`.padEnd(28, 'x')) }, next_openid: 'o' }),
      'missing fields': () => json({ data: { openid: ['oC'] } }),
      'wrong types': () => json({ total: '3', count: '1', data: { openid: ['oC'] }, next_openid: 'oC' }),
      'count not matching the list': () => json({ total: 3, count: 2, data: { openid: ['oC'] }, next_openid: 'oC' }),
      'an openid that is not a string': () => json({ total: 3, count: 1, data: { openid: [42] }, next_openid: 'oC' }),
    };
    for (const [name, answer] of Object.entries(hostile)) {
      let call = 0;
      fake.on(USER_GET_API, () => {
        call += 1;
        return call === 1 ? json({ total: 3, count: 2, data: { openid: ['oA', 'oB'] }, next_openid: 'oB' }) : answer();
      });
      const seen: string[] = [];
      const error = await failure((async () => {
        for await (const p of followerPages(client)) seen.push(...p.openids);
      })());
      assert.equal(error.code, ErrorCode.WechatBadAnswer, name);
      assert.deepEqual(seen, ['oA', 'oB'], name);
      assert.deepEqual([error.details['cursor'], error.details['page']], ['oB', 1], name);
      assert.equal(call, 2, `${name}: a bad answer is not retried`);
    }
  });

  it('refuses a batchget answer that misses a user, adds one, or is not a list', async () => {
    const user = (openid: string): Record<string, unknown> => ({ subscribe: 1, openid, subscribe_time: 1_600_000_000 });
    const cases: Record<string, unknown> = {
      'a missing user': { user_info_list: [user('oA')] },
      'a user not asked for': { user_info_list: [user('oA'), user('oX')] },
      'an extra user': { user_info_list: [user('oA'), user('oB'), user('oX')] },
      'no list': { errcode: 0 },
      'a list of strings': { user_info_list: ['oA', 'oB'] },
    };
    for (const [name, body] of Object.entries(cases)) {
      fake.on(BATCHGET_API, () => json(body));
      const error = await failure(client.batchGetUserInfo(['oA', 'oB']));
      assert.equal(error.code, ErrorCode.WechatBadAnswer, name);
    }
    fake.on(BATCHGET_API, () => json({ user_info_list: [user('oB'), { subscribe: 0, openid: 'oA' }] }));
    assert.deepEqual((await client.batchGetUserInfo(['oA', 'oB'])).map((p) => [p.openid, p.subscribe]), [['oA', 0], ['oB', 1]]);
  });

  it('refuses a user/info answer about someone else, and a quota answer of the wrong shape', async () => {
    fake.on(USER_INFO_API, () => json({ subscribe: 0, openid: 'oOther' }));
    assert.equal((await failure(client.userInfo('oA'))).code, ErrorCode.WechatBadAnswer);
    fake.on('/cgi-bin/openapi/quota/get', () => json({ errcode: 0, errmsg: 'ok', quota: { daily_limit: 500, used: '3', remain: 497 } }));
    assert.equal((await failure(client.quotaGet(USER_GET_API))).code, ErrorCode.WechatBadAnswer);
  });

  it('retries a dropped connection and succeeds', async () => {
    let call = 0;
    fake.on(USER_GET_API, () => {
      call += 1;
      return call === 1 ? { destroy: true } : json({ total: 0, count: 0 });
    });
    assert.deepEqual(await client.userGet(), { total: 0, count: 0, hasData: false, openids: [], nextOpenid: '' });
    assert.equal(call, 2);
  });
});

describe('WechatClients', () => {
  it('holds one client (one token owner) per configured account', async () => {
    const fake = await FakeWechat.start();
    const clients = new WechatClients({
      apiBase: fake.base,
      accounts: [{ appid: 'wxA', secret: 'sA', token: 'tokenA' }, { appid: 'wxB', secret: 'sB', token: 'tokenB' }],
      logger: silentLogger(),
    });
    try {
      fake.on(USER_GET_API, () => json({ total: 0, count: 0 }));
      assert.equal(clients.get('wxA'), clients.get('wxA'));
      assert.notEqual(clients.get('wxA'), clients.get('wxB'));
      await Promise.all([clients.get('wxA').userGet(), clients.get('wxA').userGet(), clients.get('wxB').userGet()]);
      const fetched = fake.calls('/cgi-bin/stable_token').map((r) => (JSON.parse(r.body) as { appid: string }).appid).sort();
      assert.deepEqual(fetched, ['wxA', 'wxB']);
      assert.throws(() => clients.get('wxC'), { code: ErrorCode.UsageInvalid });
    } finally {
      clients.close();
      await fake.close();
    }
  });
});
