import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { callbackEventId } from '../../../lib/contracts/event-id.ts';
import { decodeEncodingAESKey, encryptMessage, msgSignature, plainSignature } from '../../../lib/wechat/crypto.ts';
import type { ChurnSummary } from '../../../sim/churn.ts';
import { reject, type RejectReason } from '../../../producers/callback/rejection.ts';
import { buildPushRequest, eventXml, type PushMode, type PushTarget } from '../../../sim/push.ts';
import { testEnv, waitFor, type TestEnv } from '../../support/env.ts';
import { SimHarness } from '../../lib/wechat/sim-harness.ts';
import { eventsIn, metric, startCallback, writeAccounts, type RunningCallback } from './harness.ts';

/** The callback role end to end: the simulator pushes real signed (and encrypted) callbacks; records are read back from Kafka. */
describe('callback role with the simulator', { timeout: 120_000 }, () => {
  let sim: SimHarness;
  let env: TestEnv;
  let callback: RunningCallback;
  let topic: string;

  // One account per callback mode: 0 is safe (its key alone makes it so), 1 compat, 2 plain with a key.
  const ACCOUNT_OF = { safe: 0, compat: 1, plain: 2 } as const;
  const PLAIN = ACCOUNT_OF.plain;

  before(async () => {
    sim = await SimHarness.start({ accounts: 3, followers: [300, 300, 300] });
    const probe = testEnv();
    env = testEnv({ WXSYNC_ACCOUNTS: writeAccounts(probe.dataDir, sim.sim.ready.accounts, {}, [undefined, 'compat', 'plain']) });
    callback = await startCallback(env.env);
    topic = callback.config.kafka.topics.userEvents;
  });

  after(async () => {
    await callback.stop();
    await sim.close();
    env.cleanup();
  });

  const target = (mode: PushMode, i = 0, appidInPath?: string): PushTarget => {
    const account = sim.account(i);
    return {
      url: `${callback.base}/wechat/${appidInPath ?? account.appid}`, mode, appid: account.appid, token: account.token,
      aesKey: decodeEncodingAESKey(account.encodingAESKey), originalId: account.originalId,
    };
  };
  const now = (): string => String(Math.floor(Date.now() / 1000));
  const post = async (url: string, body: string | Buffer, type = 'text/xml'): Promise<{ status: number; text: string }> => {
    const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': type } });
    return { status: res.status, text: await res.text() };
  };

  async function churn(i: number, body: Record<string, unknown>): Promise<ChurnSummary> {
    return await sim.admin('POST', `/__sim/accounts/${sim.account(i).appid}/churn`, body) as unknown as ChurnSummary;
  }

  for (const mode of ['plain', 'compat', 'safe'] as const) {
    it(`publishes every ${mode}-mode subscribe and unsubscribe once, with QR scene fields, for a ${mode} account`, async () => {
      await sim.admin('POST', '/__sim/callback', { url: `${callback.base}/wechat`, mode });
      const summary = await churn(ACCOUNT_OF[mode], { subscribe: 30, unsubscribe: 15, qrRate: 0.5, dupRate: 0.3 });
      assert.equal(summary.failed, 0);
      for (const e of summary.events) assert.equal(e.status, 200, JSON.stringify(e));
      const appid = sim.account(ACCOUNT_OF[mode]).appid;
      const byId = new Map((await eventsIn(callback.kafka, topic)).map((e) => [e.id, e]));
      const records = await callback.kafka.readAll(topic, 30_000);
      const ids = records.map((r) => (JSON.parse(r.value?.toString() ?? '{}') as { id: string }).id);
      assert.equal(new Set(ids).size, ids.length, 'an event id appears twice in Kafka');
      for (const pushed of summary.events) {
        const event = byId.get(callbackEventId(appid, pushed.openid, pushed.createTime, pushed.type));
        assert.ok(event, `no record for ${pushed.type} of ${pushed.openid}`);
        assert.equal(event.at, pushed.createTime * 1000);
        assert.equal(event.source, 'callback');
        if (pushed.eventKey?.startsWith('qrscene_') === true) {
          assert.equal(event.qrScene, pushed.eventKey.slice('qrscene_'.length));
          assert.equal(event.ticket, pushed.ticket);
          assert.equal(event.scene, 'ADD_SCENE_QR_CODE');
        } else {
          assert.equal(event.qrScene, undefined);
        }
      }
    });
  }

  it('echoes echostr on URL verification only with a matching signature', async () => {
    const account = sim.account(0);
    const ts = now();
    const ok = await fetch(`${callback.base}/wechat/${account.appid}?signature=${plainSignature(account.token, ts, '42')}&timestamp=${ts}&nonce=42&echostr=4375120948345356249`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), '4375120948345356249');
    const bad = await fetch(`${callback.base}/wechat/${account.appid}?signature=${'0'.repeat(40)}&timestamp=${ts}&nonce=42&echostr=x`);
    assert.equal(bad.status, 403);
  });

  it('answers SCAN and user messages success without a record', async () => {
    const before = (await callback.kafka.readAll(topic, 30_000)).length;
    const t = target('safe');
    for (const xml of [
      `<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[oScan]]></FromUserName><CreateTime>${now()}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[123]]></EventKey><Ticket><![CDATA[t]]></Ticket></xml>`,
      `<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[oText]]></FromUserName><CreateTime>${now()}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>1</MsgId></xml>`,
    ]) {
      const ts = now();
      const encrypt = encryptMessage(xml, t.aesKey, t.appid);
      const url = `${t.url}?signature=${plainSignature(t.token, ts, '7')}&timestamp=${ts}&nonce=7&encrypt_type=aes&msg_signature=${msgSignature(t.token, ts, '7', encrypt)}`;
      const res = await post(url, `<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`);
      assert.deepEqual(res, { status: 200, text: 'success' });
    }
    assert.equal((await callback.kafka.readAll(topic, 30_000)).length, before);
    assert.equal(await metric(callback.registry, 'wxsync_callback_ignored_total', 'what="event:SCAN"'), 1);
  });

  describe('refuses each hostile input with a one-line 4xx, publishes nothing, and keeps serving', () => {
    const event = { type: 'subscribe' as const, openid: 'oHostile0000000000000000000', createTime: Math.floor(Date.now() / 1000) };
    const safe = (mutate: (t: PushTarget) => PushTarget = (t) => t, ts = now(), pushed = event) => buildPushRequest(mutate(target('safe')), pushed, ts, '99');
    const signedSafe = (encrypt: string, t = target('safe')) => {
      const ts = now();
      return {
        url: `${t.url}?timestamp=${ts}&nonce=5&encrypt_type=aes&msg_signature=${msgSignature(t.token, ts, '5', encrypt)}`,
        body: `<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`,
      };
    };
    const plainSigned = (body: string, t = target('plain', PLAIN)) => {
      const ts = now();
      return { url: `${t.url}?signature=${plainSignature(t.token, ts, '5')}&timestamp=${ts}&nonce=5`, body };
    };
    const goodEncrypt = (): string => /<Encrypt><!\[CDATA\[(.*)\]\]><\/Encrypt>/.exec(safe().body)?.[1] ?? '';
    // A full block of 0x00 padding bytes after a valid frame: the last byte is 0, which no PKCS#7 pad has.
    const badPadding = (): string => {
      const key = target('safe').aesKey;
      const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
      cipher.setAutoPadding(false);
      return Buffer.concat([cipher.update(Buffer.alloc(64, 0)), cipher.final()]).toString('base64');
    };
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><xml><ToUserName>a</ToUserName><FromUserName>&lol2;</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>`;
    const xxe = `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><ToUserName>a</ToUserName><FromUserName>&xxe;</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>`;
    const cases: Array<[string, () => { url: string; body: string | Buffer }, number, RejectReason?]> = [
      ['wrong signature', () => { const r = buildPushRequest(target('plain', PLAIN), event, now(), '1'); return { url: r.url.replace(/signature=[0-9a-f]{40}/, `signature=${'b'.repeat(40)}`), body: r.body }; }, 403],
      ['wrong msg_signature', () => { const good = safe(); return { url: good.url.replace(/msg_signature=[0-9a-f]{40}/, `msg_signature=${'c'.repeat(40)}`), body: good.body }; }, 403],
      ['wrong appid in the ciphertext', () => signedSafe(encryptMessage(eventXml('gh', event), target('safe').aesKey, 'wxsomeoneelse00000')), 403],
      ['wrong key', () => signedSafe(encryptMessage(eventXml('gh', event), target('safe', 1).aesKey, sim.account(0).appid)), 400],
      ['truncated ciphertext', () => { const encrypt = goodEncrypt(); return signedSafe(encrypt.slice(0, encrypt.length - 24)); }, 400],
      ['bad padding', () => signedSafe(badPadding()), 400],
      ['entity expansion XML', () => plainSigned(bomb), 400],
      ['external entity XML', () => plainSigned(xxe), 400],
      ['10 MB body', () => plainSigned('<xml>' + 'a'.repeat(10 * 1024 * 1024) + '</xml>'), 413],
      ['non-XML', () => plainSigned('{"ToUserName":"gh","Event":"subscribe"}'), 400],
      ['missing fields', () => plainSigned('<xml><ToUserName>gh</ToUserName><MsgType>event</MsgType><Event>subscribe</Event></xml>'), 400],
      ['unknown appid in the path', () => buildPushRequest(target('plain', 0, 'wxunknown'), event, now(), '1'), 404],
      ['stale timestamp', () => safe((t) => t, String(Math.floor(Date.now() / 1000) - 3600)), 403],
      ['missing query', () => ({ url: target('plain', PLAIN).url, body: eventXml('gh', event) }), 400],
      ['a plain push, well signed, to a safe account', () => buildPushRequest(target('plain'), event, now(), '2'), 403, 'unencrypted_push'],
      ['a plain push, well signed, to a compat account', () => buildPushRequest(target('plain', ACCOUNT_OF.compat), event, now(), '2'), 403, 'unencrypted_push'],
      ['a compat body to a safe account', () => buildPushRequest(target('compat'), event, now(), '2'), 400, 'plaintext_in_safe_mode'],
      ['a CreateTime a year ahead', () => safe((t) => t, now(), { ...event, createTime: Math.floor(Date.now() / 1000) + 365 * 86_400 }), 403, 'stale_create_time'],
      ['a CreateTime two days old', () => safe((t) => t, now(), { ...event, createTime: Math.floor(Date.now() / 1000) - 2 * 86_400 }), 403, 'stale_create_time'],
      ['a freshly signed plain push whose CreateTime is two days old', () => buildPushRequest(target('plain', PLAIN), { ...event, createTime: Math.floor(Date.now() / 1000) - 2 * 86_400 }, now(), '3'), 403, 'stale_create_time'],
      ['bad percent-encoding in the path', () => ({ url: `${callback.base}/wechat/%E0%A4%A`, body: eventXml('gh', event) }), 400, 'bad_path'],
    ];
    for (const [name, build, status, reason] of cases) {
      it(name, async () => {
        const before = (await callback.kafka.readAll(topic, 30_000)).length;
        const request = build();
        const res = await post(request.url, request.body);
        assert.equal(res.status, status, `${res.status} ${res.text}`);
        if (reason !== undefined) assert.equal(res.text, `${reject(reason).detail}\n`);
        assert.match(res.text, /^[^\n]+\n$/, `not one line: ${JSON.stringify(res.text.slice(0, 200))}`);
        assert.doesNotMatch(res.text, /at .*\.ts|Error:/, 'leaks a stack');
        assert.equal((await fetch(`${callback.base}/healthz`)).status, 200, 'the server stopped serving');
        assert.equal((await callback.kafka.readAll(topic, 30_000)).length, before, 'a hostile input was published');
      });
    }

    it('counts rejections by reason, and still publishes a genuine push afterwards', async () => {
      assert.ok(await metric(callback.registry, 'wxsync_callback_rejected_total', 'reason="bad_msg_signature"') >= 1);
      const before = (await callback.kafka.readAll(topic, 30_000)).length;
      const good = safe();
      const res = await post(good.url, good.body);
      assert.deepEqual(res, { status: 200, text: 'success' });
      await waitFor('the genuine event in Kafka', 10_000, async () => ((await callback.kafka.readAll(topic, 30_000)).length === before + 1 ? true : undefined));
    });
  });

  it('counts into the registry (served by the admin listener) and answers bare probes, /metrics not, on the public port', async () => {
    const text = await callback.registry.metrics();
    for (const name of ['wxsync_callback_received_total', 'wxsync_callback_accepted_total', 'wxsync_callback_rejected_total', 'wxsync_callback_spool_depth', 'wxsync_callback_produce_seconds_bucket']) {
      assert.match(text, new RegExp(name));
    }
    const ready = await fetch(`${callback.base}/readyz`);
    assert.deepEqual([ready.status, await ready.text()], [200, '']);
    const metrics = await fetch(`${callback.base}/metrics`);
    assert.deepEqual([metrics.status, await metrics.text()], [404, '']);
  });
});
