import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { after, before, beforeEach, describe, it, mock } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { createLogger } from '../../../lib/logger.ts';
import { createRegistry, type Registry } from '../../../lib/metrics.ts';
import { decodeEncodingAESKey, msgSignature, plainSignature } from '../../../lib/wechat/crypto.ts';
import { EdgeDedupe } from '../../../producers/callback/dedupe.ts';
import { createCallbackHandler } from '../../../producers/callback/http.ts';
import { createCallbackMetrics } from '../../../producers/callback/metrics.ts';
import { parseXmlFields } from '../../../producers/callback/parse.ts';
import type { Outcome, PublishedRecord } from '../../../producers/callback/publisher.ts';
import { reject, type RejectReason } from '../../../producers/callback/rejection.ts';
import { accountKeys, type AccountKeys } from '../../../producers/callback/verify.ts';
import { buildPushRequest, eventXml, type PushEvent, type PushMode, type PushTarget } from '../../../sim/push.ts';

/**
 * The callback route's HTTP shell on a bare node server, with the publisher replaced by a recorder: modes,
 * the CreateTime window, authentication before parsing, what reaches the logs, hostile paths. (main.test.ts
 * runs the same route against Kafka.)
 */

async function metric(registry: Registry, name: string, labels: string): Promise<number> {
  const text = await registry.metrics();
  const found = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return found === undefined ? 0 : Number(found.split(' ').pop());
}

const KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
const OTHER_KEY = 'SvFHaQqrlAhRud3ye6f8ujJsR2LeYbxzPPIzNlei2FX';
const SECRET = 'appsecret-never-logged';
const ACCOUNTS = {
  safe: { appid: 'wxsafe0000000001', secret: SECRET, token: 'tokensafe', encodingAESKey: KEY },
  compat: { appid: 'wxcompat00000001', secret: SECRET, token: 'tokencompat', encodingAESKey: KEY, mode: 'compat' as const },
  plainKey: { appid: 'wxplainkey000001', secret: SECRET, token: 'tokenplainkey', encodingAESKey: KEY, mode: 'plain' as const },
  plain: { appid: 'wxplain000000001', secret: SECRET, token: 'tokenplain' },
} as const;
type Name = keyof typeof ACCOUNTS;

describe('the callback route (HTTP shell, no Kafka)', () => {
  let server: http.Server;
  let base: string;
  let registry: Registry;
  const published: PublishedRecord[] = [];
  const logLines: string[] = [];
  let parseCalls = 0;
  let failPublish: Error | undefined;
  let openids = 0;

  before(async () => {
    registry = createRegistry();
    const metrics = createCallbackMetrics(registry, () => 0);
    const accounts = new Map<string, AccountKeys>(Object.values(ACCOUNTS).map((a) => [a.appid, accountKeys(a)]));
    const handler = createCallbackHandler({
      accounts,
      maxClockSkewMs: 300_000,
      bodyMaxBytes: 64 * 1024,
      publish: (record) => {
        if (failPublish !== undefined) return Promise.reject(failPublish);
        published.push(record);
        return Promise.resolve<Outcome>('published');
      },
      dedupe: new EdgeDedupe<Outcome>(600_000, 10_000),
      metrics,
      logger: createLogger('trace', 'callback-test', { write: (line: string) => { logLines.push(line); } }),
      parseXml: (xml) => { parseCalls += 1; return parseXmlFields(xml); },
    });
    // As lib/http-server.ts does: a handler that throws becomes a 500.
    server = http.createServer((req, res) => {
      handler(req, res).catch(() => { if (!res.headersSent) { res.writeHead(500); res.end(); } });
    });
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => { server.close(resolve); });
  });

  beforeEach(() => { failPublish = undefined; });

  const nowSeconds = (): number => Math.floor(Date.now() / 1000);
  const target = (name: Name, mode: PushMode): PushTarget => ({
    url: `${base}/wechat/${ACCOUNTS[name].appid}`, mode, appid: ACCOUNTS[name].appid, token: ACCOUNTS[name].token,
    aesKey: decodeEncodingAESKey('encodingAESKey' in ACCOUNTS[name] ? KEY : OTHER_KEY), originalId: 'gh_test',
  });
  const event = (createTime = nowSeconds()): PushEvent => ({ type: 'subscribe', openid: `oHttpTest${String(openids++).padStart(19, '0')}`, createTime });
  const post = async (url: string, body: string): Promise<{ status: number; text: string }> => {
    const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'text/xml' } });
    return { status: res.status, text: await res.text() };
  };
  const line = (reason: RejectReason): string => `${reject(reason).detail}\n`;

  /** Sends `send` and checks its answer is the fixed line of `reason` and that nothing was published. */
  async function refused(reason: RejectReason, send: () => Promise<{ status: number; text: string }>): Promise<void> {
    const before = published.length;
    const counted = await metric(registry, 'wxsync_callback_rejected_total', `reason="${reason}"`);
    const res = await send();
    assert.deepEqual(res, { status: reject(reason).status, text: line(reason) });
    assert.equal(published.length, before, 'a refused push was published');
    assert.equal(await metric(registry, 'wxsync_callback_rejected_total', `reason="${reason}"`), counted + 1, `not counted as ${reason}`);
  }

  async function accepted(send: () => Promise<{ status: number; text: string }>): Promise<void> {
    const before = published.length;
    assert.deepEqual(await send(), { status: 200, text: 'success' });
    assert.equal(published.length, before + 1, 'nothing published');
  }

  describe('an account\'s mode', () => {
    // [account, push mode] → undefined for accepted, else the refusal.
    const expected: ReadonlyArray<readonly [Name, PushMode, RejectReason | undefined]> = [
      ['safe', 'plain', 'unencrypted_push'], ['safe', 'compat', 'plaintext_in_safe_mode'], ['safe', 'safe', undefined],
      ['compat', 'plain', 'unencrypted_push'], ['compat', 'compat', undefined], ['compat', 'safe', undefined],
      ['plainKey', 'plain', undefined], ['plainKey', 'compat', undefined], ['plainKey', 'safe', undefined],
      ['plain', 'plain', undefined], ['plain', 'compat', 'no_key'], ['plain', 'safe', 'no_key'],
    ];
    for (const [name, mode, reason] of expected) {
      it(`${name} account, ${mode} push: ${reason ?? 'published'}`, async () => {
        const send = async () => { const r = buildPushRequest(target(name, mode), event(), String(nowSeconds()), '17'); return post(r.url, r.body); };
        if (reason === undefined) await accepted(send);
        else await refused(reason, send);
      });
    }

    it('refuses a compat or safe account\'s push with encrypt_type=aes but no msg_signature', async () => {
      for (const name of ['safe', 'compat'] as const) {
        const r = buildPushRequest(target(name, 'safe'), event(), String(nowSeconds()), '18');
        await refused('unencrypted_push', () => post(r.url.replace(/&msg_signature=[0-9a-f]+/, ''), r.body));
      }
    });
  });

  describe('the CreateTime window', () => {
    const yearAhead = (): number => nowSeconds() + 365 * 86_400;
    const twoDaysOld = (): number => nowSeconds() - 2 * 86_400;
    for (const mode of ['plain', 'safe'] as const) {
      const name = mode === 'plain' ? 'plain' : 'safe';
      it(`refuses a ${mode} push whose CreateTime is a year ahead or two days old, freshly signed or not, and still takes a genuine one`, async () => {
        for (const createTime of [yearAhead(), twoDaysOld()]) {
          await refused('stale_create_time', async () => {
            const r = buildPushRequest(target(name, mode), event(createTime), String(nowSeconds()), '19');
            return post(r.url, r.body);
          });
        }
        await accepted(async () => { const r = buildPushRequest(target(name, mode), event(), String(nowSeconds()), '20'); return post(r.url, r.body); });
      });
    }

    it('applies to messages that change no follower, too', async () => {
      const ts = String(nowSeconds());
      const xml = eventXml('gh_test', event(twoDaysOld())).replace('[subscribe]', '[SCAN]');
      await refused('stale_create_time', () => post(`${target('plain', 'plain').url}?signature=${plainSignature(ACCOUNTS.plain.token, ts, '3')}&timestamp=${ts}&nonce=3`, xml));
    });
  });

  describe('authentication before parsing', () => {
    it('refuses unauthenticated bodies, 64 KB ones included, without reaching any XML parser', async () => {
      const parserMock = mock.method(XMLParser.prototype, 'parse');
      try {
        const calls = parseCalls;
        const ts = String(nowSeconds());
        const safe = target('safe', 'safe');
        const forgedQuery = `timestamp=${ts}&nonce=21&encrypt_type=aes&msg_signature=${'a'.repeat(40)}`;
        const big = `<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[${'Q'.repeat(64 * 1024 - 100)}]]></Encrypt></xml>`;
        const nested = `<xml>${'<a b="1"><c/></a>'.repeat(3800)}<Encrypt>QUJD</Encrypt></xml>`;
        assert.ok(big.length <= 64 * 1024 && nested.length <= 64 * 1024 && nested.length > 60 * 1024);
        await refused('bad_msg_signature', () => post(`${safe.url}?${forgedQuery}`, big));
        await refused('bad_msg_signature', () => post(`${safe.url}?${forgedQuery}`, nested));
        await refused('missing_field', () => post(`${safe.url}?${forgedQuery}`, nested.replace(/Encrypt/g, 'Encrypted')));
        // A good signature for other parts: msg_signature covers the Encrypt value, not just the query.
        await refused('bad_msg_signature', () => post(`${safe.url}?timestamp=${ts}&nonce=21&encrypt_type=aes&msg_signature=${msgSignature(ACCOUNTS.safe.token, ts, '21', 'QUJD')}`, big));
        await refused('bad_signature', () => post(`${target('plain', 'plain').url}?timestamp=${ts}&nonce=21&signature=${'b'.repeat(40)}`, nested));
        await refused('unencrypted_push', () => post(`${safe.url}?timestamp=${ts}&nonce=21&signature=${plainSignature(ACCOUNTS.safe.token, ts, '21')}`, nested));
        assert.equal(parseCalls, calls, 'an unauthenticated body reached the XML reader');
        assert.equal(parserMock.mock.callCount(), 0, 'an unauthenticated body reached fast-xml-parser');

        await accepted(async () => { const r = buildPushRequest(safe, event(), ts, '22'); return post(r.url, r.body); });
        assert.equal(parseCalls, calls + 2, 'the genuine push: its envelope, then its message');
      } finally {
        parserMock.mock.restore();
      }
    });
  });

  describe('what the logs and answers hold', () => {
    it('logs no signature, msg_signature, echostr, token, secret or key, and answers each refusal with its fixed line', async () => {
      logLines.length = 0;
      const ts = String(nowSeconds());
      const echostr = 'echo-4375120948345356249';
      const verifyUrl = `${target('safe', 'safe').url}?signature=${plainSignature(ACCOUNTS.safe.token, ts, '23')}&timestamp=${ts}&nonce=23&echostr=${echostr}`;
      const get = await fetch(verifyUrl);
      assert.deepEqual([get.status, await get.text()], [200, echostr]);
      const bad = await fetch(verifyUrl.replace(/signature=[0-9a-f]+/, `signature=${'c'.repeat(40)}`));
      assert.deepEqual([bad.status, await bad.text()], [403, line('bad_signature')]);

      const secrets: string[] = [echostr, ACCOUNTS.safe.token, ACCOUNTS.plain.token, SECRET, KEY];
      for (const [name, mode] of [['safe', 'safe'], ['safe', 'plain'], ['compat', 'compat'], ['plain', 'plain'], ['plain', 'safe']] as const) {
        const r = buildPushRequest(target(name, mode), event(), ts, '24');
        const query = new URL(r.url).searchParams;
        for (const key of ['signature', 'msg_signature']) { const v = query.get(key); if (v !== null) secrets.push(v); }
        await post(r.url, r.body);
        await post(r.url.replace(/signature=[0-9a-f]{4}/g, 'signature=ffff'), r.body);
      }
      // A store failure: the answer is a fixed line, whatever the error says.
      failPublish = new Error(`broker said no; access_token=${SECRET}`);
      const r = buildPushRequest(target('safe', 'safe'), event(), ts, '25');
      assert.deepEqual(await post(r.url, r.body), { status: 503, text: 'temporarily unavailable\n' });

      const logs = logLines.join('');
      assert.match(logs, /"reason":"bad_signature"/, 'the refusals are logged (at debug)');
      assert.match(logs, /callback not stored/);
      for (const secret of secrets) assert.ok(!logs.includes(secret), `the logs hold ${secret}`);
      assert.doesNotMatch(logs, /signature=|echostr=|access_token=(?!\[redacted\])|\?timestamp/);
    });
  });

  describe('hostile paths', () => {
    /** One raw request, the path sent exactly as given. */
    function raw(method: string, path: string, body = ''): Promise<number> {
      return new Promise((resolve, fail) => {
        const { port } = server.address() as AddressInfo;
        const socket = net.connect(port, '127.0.0.1');
        let answer = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => { answer += chunk; });
        socket.on('error', fail);
        socket.on('close', () => { resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)); });
        socket.end(`${method} ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: text/xml\r\ncontent-length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`, 'latin1');
      });
    }

    const paths = [
      '/wechat/%E0%A4%A', '/wechat/%', '/wechat/%zz', '/wechat/%E0%A4%A?signature=%E0%A4%A&timestamp=%&nonce=%zz&echostr=%E0',
      '/wechat/%C0%AF', '/wechat/%ED%A0%80', '/wechat/%F0%9F%98', '/wechat/%00', '/wechat/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/wechat/../../etc/passwd', '/wechat/', '/wechat//', '/wechat/a/b', '/wechat/wxsafe0000000001/extra',
      `/wechat/${'a'.repeat(4000)}`, '/wechat/\xff\xfe', '/wechat/wx%20safe', `/wechat/${ACCOUNTS.safe.appid}?${'&'.repeat(2000)}`,
      `/wechat/${encodeURIComponent(ACCOUNTS.safe.appid)}%`, '/wechat/__proto__', '/wechat/constructor', '/wechat/hasOwnProperty',
    ];
    for (const method of ['GET', 'POST', 'PUT']) {
      it(`answers ${method} on malformed and hostile paths with a 4xx, never a 500`, async () => {
        const before = published.length;
        for (const path of paths) {
          const status = await raw(method, path, method === 'GET' ? '' : '<xml><A>1</A></xml>');
          assert.ok(status >= 400 && status < 500, `${method} ${JSON.stringify(path)} answered ${status}`);
        }
        assert.equal(published.length, before);
        assert.equal(await metric(registry, 'wxsync_callback_rejected_total', 'reason="bad_path"') > 0, true);
      });
    }

    it('answers /wechat/%E0%A4%A with the bad_path line, and keeps serving', async () => {
      const res = await post(`${base}/wechat/%E0%A4%A`, '<xml/>');
      assert.deepEqual(res, { status: 400, text: line('bad_path') });
      await accepted(async () => { const r = buildPushRequest(target('safe', 'safe'), event(), String(nowSeconds()), '26'); return post(r.url, r.body); });
    });
  });
});
