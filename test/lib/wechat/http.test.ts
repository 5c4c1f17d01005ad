import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, WxsyncError } from '../../../lib/errors.ts';
import { silentLogger } from '../../../lib/logger.ts';
import { WechatHttp, withRetries, type RetryPolicy, type WechatRequest } from '../../../lib/wechat/http.ts';
import { FakeWechat, json } from './fake-wechat.ts';
import { failure } from '../../support/errors.ts';

const API = '/cgi-bin/user/get';
const SECRET_TOKEN = 'ACCESS-TOKEN-THAT-MUST-NOT-LEAK';

describe('WechatHttp', () => {
  let fake: FakeWechat;
  let client: WechatHttp;
  const get: WechatRequest = { method: 'GET', api: API, query: { access_token: SECRET_TOKEN } };

  before(async () => {
    fake = await FakeWechat.start();
    client = new WechatHttp({ baseUrl: `${fake.base}/`, logger: silentLogger(), timeoutMs: 500, maxResponseBytes: 64 * 1024 });
  });
  after(async () => {
    client.close();
    await fake.close();
  });

  it('returns the JSON object of a success answer, sending the query and a JSON body', async () => {
    fake.on(API, () => json({ total: 1 }));
    assert.deepEqual(await client.call(get), { total: 1 });
    fake.on('/cgi-bin/openapi/quota/get', (req) => json({ errcode: 0, errmsg: 'ok', echo: JSON.parse(req.body) as unknown }));
    const answer = await client.call({ method: 'POST', api: '/cgi-bin/openapi/quota/get', query: { access_token: 'T' }, body: { cgi_path: '/x' } });
    assert.deepEqual(answer['echo'], { cgi_path: '/x' });
    const last = fake.calls('/cgi-bin/openapi/quota/get').at(-1);
    assert.ok(last);
    assert.equal(last.query.get('access_token'), 'T');
    assert.equal(last.method, 'POST');
  });

  it('keeps the connection alive between calls', async () => {
    fake.on(API, () => json({ total: 1 }));
    await client.call(get);
    await client.call(get);
    const ports = fake.calls(API).slice(-2).map((r) => r.remotePort);
    assert.equal(ports[0], ports[1]);
  });

  it('turns a non-zero errcode into the typed error, with api, errcode and errmsg but no token', async () => {
    fake.on(API, () => json({ errcode: 45009, errmsg: 'reach max api daily quota limit rid: 1-2-3' }));
    const error = await failure(client.call(get));
    assert.equal(error.code, ErrorCode.WechatQuotaExhausted);
    assert.deepEqual(error.details, { api: API, errcode: 45009, errmsg: 'reach max api daily quota limit rid: 1-2-3' });
    assert.ok(!JSON.stringify({ m: error.message, d: error.details, s: error.stack }).includes(SECRET_TOKEN));
  });

  it('reads the errcode even on a non-2xx status', async () => {
    fake.on(API, () => json({ errcode: -1, errmsg: 'system error' }, 503));
    const error = await failure(client.call(get));
    assert.equal(error.code, ErrorCode.WechatBusy);
    assert.equal(error.retriable, true);
  });

  const hostile: [string, () => ReturnType<typeof json>, ErrorCode][] = [
    ['plain text', () => ({ body: 'hello' }), ErrorCode.WechatBadAnswer],
    ['an empty body', () => ({ body: '' }), ErrorCode.WechatBadAnswer],
    ['an HTML page with 200', () => ({ headers: { 'content-type': 'text/html' }, body: '<html><body>Service Unavailable</body></html>' }), ErrorCode.WechatBadAnswer],
    ['truncated JSON', () => ({ body: '{"total": 10, "count": 2, "data": {"openid": ["a"' }), ErrorCode.WechatBadAnswer],
    ['a JSON array', () => json([1, 2]), ErrorCode.WechatBadAnswer],
    ['JSON null', () => json(null), ErrorCode.WechatBadAnswer],
    ['a JSON string', () => json('ok'), ErrorCode.WechatBadAnswer],
    ['an errcode that is a string', () => json({ errcode: '45009', errmsg: 'x' }), ErrorCode.WechatBadAnswer],
    ['an errcode that is a float', () => json({ errcode: 1.5 }), ErrorCode.WechatBadAnswer],
    ['invalid UTF-8', () => ({ body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]) }), ErrorCode.WechatBadAnswer],
    ['a body over the cap with a content-length', () => ({ body: `{"x":"${'a'.repeat(70 * 1024)}"}` }), ErrorCode.WechatBadAnswer],
    ['a body over the cap, chunked', () => ({ chunks: Array.from({ length: 80 }, () => Buffer.alloc(1024, 0x20)) }), ErrorCode.WechatBadAnswer],
    ['a redirect', () => ({ status: 302, headers: { location: 'http://example.invalid/' }, body: '' }), ErrorCode.WechatBadAnswer],
    ['an HTML 404 page', () => ({ status: 404, headers: { 'content-type': 'text/html' }, body: '<h1>Not Found</h1>' }), ErrorCode.WechatBadAnswer],
    ['an HTML 502 page from a gateway', () => ({ status: 502, headers: { 'content-type': 'text/html' }, body: '<h1>Bad Gateway</h1>' }), ErrorCode.WechatUnreachable],
    ['a 429 without a body', () => ({ status: 429, body: '' }), ErrorCode.WechatUnreachable],
    ['a JSON 500 without errcode', () => json({ message: 'oops' }, 500), ErrorCode.WechatUnreachable],
    ['a dropped connection', () => ({ destroy: true }), ErrorCode.WechatUnreachable],
    ['no answer within the deadline', () => ({ hang: true }), ErrorCode.WechatUnreachable],
    ['an answer dripping past the deadline', () => ({ chunks: Array.from({ length: 20 }, () => Buffer.from(' ')), gapMs: 50 }), ErrorCode.WechatUnreachable],
  ];
  for (const [name, answer, code] of hostile) {
    it(`gives ${code} for ${name}, never a crash`, async () => {
      fake.on(API, answer);
      const error = await failure(client.call(get));
      assert.equal(error.code, code);
      assert.equal(error.retriable, code === ErrorCode.WechatUnreachable);
      assert.equal(error.details['api'], API);
      assert.ok(!JSON.stringify({ m: error.message, d: error.details }).includes(SECRET_TOKEN));
      assert.equal(error.cause, undefined, 'no axios error (holding the request config) is kept');
    });
  }

  it('still works after hostile answers (the pool is not poisoned)', async () => {
    fake.on(API, () => json({ total: 2 }));
    assert.deepEqual(await client.call(get), { total: 2 });
  });

  it('accepts raw control characters inside strings, as WeChat has sent them', async () => {
    fake.on(API, () => ({ body: '{"remark":"line1\nline2\ttab\u0001","n":1}' }));
    assert.deepEqual(await client.call(get), { remark: 'line1\nline2\ttab\u0001', n: 1 });
  });

  it('reports an unreachable host as WECHAT_UNREACHABLE with the network code', async () => {
    const closed = await FakeWechat.start();
    const base = closed.base;
    await closed.close();
    const lonely = new WechatHttp({ baseUrl: base, logger: silentLogger(), timeoutMs: 2000 });
    try {
      const error = await failure(lonely.call(get));
      assert.equal(error.code, ErrorCode.WechatUnreachable);
      assert.equal(error.details['networkCode'], 'ECONNREFUSED');
    } finally {
      lonely.close();
    }
  });

  it('gives SHUTTING_DOWN when the caller aborts', async () => {
    fake.on(API, () => ({ hang: true }));
    const controller = new AbortController();
    setTimeout(() => { controller.abort(); }, 20);
    const error = await failure(client.call({ ...get, signal: controller.signal }));
    assert.equal(error.code, ErrorCode.ShuttingDown);
  });
});

describe('withRetries', () => {
  const policy: RetryPolicy = { attempts: 4, initialMs: 1, maxMs: 2, rateLimitedInitialMs: 200, rateLimitedMaxMs: 200 };
  const context = { policy, logger: silentLogger(), api: API, random: () => 1 };
  const busy = (): WxsyncError => new WxsyncError(ErrorCode.WechatBusy, 'busy', { retriable: true, details: { errcode: -1 } });

  it('retries retriable errors until success', async () => {
    let calls = 0;
    const result = await withRetries(context, () => {
      calls += 1;
      return calls < 3 ? Promise.reject(busy()) : Promise.resolve('ok');
    });
    assert.equal(result, 'ok');
    assert.equal(calls, 3);
  });

  it('gives up after the attempts of the policy, still retriable, saying how many it made', async () => {
    let calls = 0;
    const error = await failure(withRetries(context, () => {
      calls += 1;
      return Promise.reject(busy());
    }));
    assert.equal(calls, 4);
    assert.equal(error.code, ErrorCode.WechatBusy);
    assert.equal(error.retriable, true);
    assert.equal(error.details['attempts'], 4);
    assert.equal(error.details['errcode'], -1);
  });

  it('throws non-retriable errors at once', async () => {
    let calls = 0;
    const error = await failure(withRetries(context, () => {
      calls += 1;
      return Promise.reject(new WxsyncError(ErrorCode.WechatQuotaExhausted, 'quota'));
    }));
    assert.equal(calls, 1);
    assert.equal(error.code, ErrorCode.WechatQuotaExhausted);
  });

  it('waits longer after 45011 than after -1', async () => {
    const timed = async (error: () => WxsyncError): Promise<number> => {
      let calls = 0;
      const started = performance.now();
      await withRetries(context, () => {
        calls += 1;
        return calls < 2 ? Promise.reject(error()) : Promise.resolve();
      });
      return performance.now() - started;
    };
    assert.ok(await timed(busy) < 100);
    assert.ok(await timed(() => new WxsyncError(ErrorCode.WechatRateLimited, 'minute', { retriable: true })) >= 190);
  });

  it('stops with SHUTTING_DOWN when aborted during a backoff sleep', async () => {
    const controller = new AbortController();
    const slow = { ...context, policy: { ...policy, initialMs: 60_000, maxMs: 60_000 }, signal: controller.signal };
    setTimeout(() => { controller.abort(); }, 20);
    const started = performance.now();
    const error = await failure(withRetries(slow, () => Promise.reject(busy())));
    assert.equal(error.code, ErrorCode.ShuttingDown);
    assert.ok(performance.now() - started < 5000);
  });
});
