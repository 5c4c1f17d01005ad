import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { silentLogger } from '../../lib/logger.ts';
import { decodeEncodingAESKey, decryptMessage, msgSignature, plainSignature, signatureMatches } from '../../lib/wechat/crypto.ts';
import { Pusher, buildPushRequest, callbackUrl, eventXml, type PushEvent, type PushJob, type PushTarget } from '../../sim/push.ts';
import { Receiver } from './helpers.ts';

const parser = new XMLParser({ processEntities: false, parseTagValue: false, ignoreAttributes: true });
const KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
const subscribe: PushEvent = {
  type: 'subscribe', openid: 'o7GJedag6C_ELH2PCUvJblirHV-p', createTime: 1_714_112_445,
  eventKey: 'qrscene_123', ticket: 'gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw==',
};

function target(url: string, mode: PushTarget['mode'] = 'plain'): PushTarget {
  return { url, mode, appid: 'wxb11529c136998cb6', token: 'pamtest', aesKey: decodeEncodingAESKey(KEY), originalId: 'gh_7f083739789a' };
}

function xmlFields(xml: string): Record<string, string> {
  return (parser.parse(xml) as { xml: Record<string, string> }).xml;
}

describe('push payloads', () => {
  it('renders the event XML of §5.2', () => {
    assert.deepEqual(xmlFields(eventXml('gh_7f083739789a', subscribe)), {
      ToUserName: 'gh_7f083739789a', FromUserName: subscribe.openid, CreateTime: '1714112445', MsgType: 'event',
      Event: 'subscribe', EventKey: 'qrscene_123', Ticket: subscribe.ticket,
    });
    const plain = eventXml('gh_x', { type: 'unsubscribe', openid: 'oX', createTime: 5 });
    assert.equal(plain, '<xml>\n<ToUserName><![CDATA[gh_x]]></ToUserName>\n<FromUserName><![CDATA[oX]]></FromUserName>\n'
      + '<CreateTime>5</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[unsubscribe]]></Event>\n</xml>');
  });

  it('signs plain pushes with signature, timestamp, nonce and openid', () => {
    const request = buildPushRequest(target('http://127.0.0.1:1/wechat/wxb11529c136998cb6'), subscribe, '1714112445', '415670741');
    const url = new URL(request.url);
    assert.equal(url.pathname, '/wechat/wxb11529c136998cb6');
    assert.deepEqual([...url.searchParams.keys()], ['signature', 'timestamp', 'nonce', 'openid']);
    assert.ok(signatureMatches(plainSignature('pamtest', '1714112445', '415670741'), url.searchParams.get('signature') ?? ''));
    assert.equal(url.searchParams.get('openid'), subscribe.openid);
    assert.equal(request.body, eventXml('gh_7f083739789a', subscribe));
  });

  for (const mode of ['compat', 'safe'] as const) {
    it(`encrypts ${mode}-mode pushes with a valid msg_signature`, () => {
      const request = buildPushRequest(target('http://127.0.0.1:1/w/wxb11529c136998cb6', mode), subscribe, '1714112445', '415670741');
      const query = new URL(request.url).searchParams;
      assert.equal(query.get('encrypt_type'), 'aes');
      const fields = xmlFields(request.body);
      const encrypt = fields['Encrypt'] ?? '';
      assert.ok(signatureMatches(msgSignature('pamtest', '1714112445', '415670741', encrypt), query.get('msg_signature') ?? ''));
      assert.ok(signatureMatches(plainSignature('pamtest', '1714112445', '415670741'), query.get('signature') ?? ''));
      const decrypted = decryptMessage(encrypt, [decodeEncodingAESKey(KEY)], 'wxb11529c136998cb6');
      assert.equal(decrypted, eventXml('gh_7f083739789a', subscribe));
      if (mode === 'safe') {
        assert.deepEqual(Object.keys(fields), ['ToUserName', 'Encrypt']);
      } else {
        assert.deepEqual(Object.fromEntries(Object.entries(fields).filter(([name]) => name !== 'Encrypt')), xmlFields(decrypted));
      }
    });
  }

  it('appends the appid to the callback base', () => {
    assert.equal(callbackUrl('http://127.0.0.1:8080/wechat', 'wx1'), 'http://127.0.0.1:8080/wechat/wx1');
    assert.equal(callbackUrl('http://127.0.0.1:8080/wechat/', 'wx1'), 'http://127.0.0.1:8080/wechat/wx1');
    assert.equal(callbackUrl('https://h/cb?x=1', 'wx1'), 'https://h/cb/wx1?x=1');
  });
});

describe('Pusher', () => {
  let receiver: Receiver;
  let pusher: Pusher;
  before(async () => {
    receiver = await Receiver.start();
    pusher = new Pusher({ timeoutMs: 150, attempts: 3, concurrency: 8, logger: silentLogger(), random: Math.random, now: () => 1_800_000_000 });
  });
  beforeEach(() => {
    receiver.pushes.length = 0;
    receiver.responder = () => ({ status: 200, body: 'success' });
  });
  after(async () => {
    pusher.close();
    await receiver.close();
  });

  const job = (event: PushEvent = subscribe, fault: Partial<Pick<PushJob, 'drop' | 'duplicate'>> = {}): PushJob => ({
    target: target(`${receiver.base}/wxb11529c136998cb6`), event, drop: fault.drop ?? false, duplicate: fault.duplicate ?? false,
  });

  it('delivers once when the endpoint answers', async () => {
    assert.deepEqual(await pusher.deliver(job()), { dropped: false, deliveries: 1, attempts: 1, retries: 0, status: 200 });
    const [push] = receiver.pushes;
    assert.equal(receiver.pushes.length, 1);
    assert.ok(push);
    assert.equal(push.query.get('timestamp'), '1800000000');
    assert.match(push.query.get('nonce') ?? '', /^\d{9,10}$/);
  });

  it('tries 3 times in all on errors, resending the same request', async () => {
    let calls = 0;
    receiver.responder = () => ({ status: ++calls < 3 ? 500 : 200, body: 'success' });
    assert.deepEqual(await pusher.deliver(job()), { dropped: false, deliveries: 1, attempts: 3, retries: 2, status: 200 });
    assert.equal(new Set(receiver.pushes.map((push) => push.query.toString() + push.body)).size, 1);
    receiver.responder = () => ({ status: 503, body: '' });
    assert.deepEqual(await pusher.deliver(job()), { dropped: false, deliveries: 0, attempts: 3, retries: 2, status: 503, error: 'HTTP 503' });
  });

  it('gives up on an endpoint that does not answer in time', async () => {
    receiver.responder = () => ({ status: 200, body: 'success', delayMs: 400 });
    const delivery = await pusher.deliver(job());
    assert.equal(delivery.deliveries, 0);
    assert.equal(delivery.attempts, 3);
    assert.match(delivery.error ?? '', /no answer within 150 ms/);
  });

  it('reports an unreachable endpoint', async () => {
    const unreachable = { ...job(), target: target('http://127.0.0.1:9/wechat/x') };
    const delivery = await pusher.deliver(unreachable);
    assert.equal(delivery.deliveries, 0);
    assert.equal(delivery.attempts, 3);
    assert.match(delivery.error ?? '', /ECONNREFUSED/);
  });

  it('drops and duplicates on request', async () => {
    assert.deepEqual(await pusher.deliver(job(subscribe, { drop: true })), { dropped: true, deliveries: 0, attempts: 0, retries: 0 });
    assert.equal(receiver.pushes.length, 0);
    assert.deepEqual(await pusher.deliver(job(subscribe, { duplicate: true })), { dropped: false, deliveries: 2, attempts: 2, retries: 0, status: 200 });
    assert.equal(receiver.pushes.length, 2);
    assert.equal(receiver.pushes[0]?.body, receiver.pushes[1]?.body);
  });

  it('keeps one user\'s pushes in order while others run concurrently', async () => {
    receiver.responder = () => ({ status: 200, body: 'success', delayMs: Math.floor(Math.random() * 20) });
    const jobs: PushJob[] = [];
    for (let t = 0; t < 6; t += 1) {
      for (const openid of ['oA', 'oB', 'oC', 'oD']) {
        jobs.push(job({ type: t % 2 === 0 ? 'subscribe' : 'unsubscribe', openid, createTime: 1000 + t }));
      }
    }
    const deliveries = await pusher.deliverAll(jobs);
    assert.ok(deliveries.every((delivery) => delivery.deliveries === 1));
    for (const openid of ['oA', 'oB', 'oC', 'oD']) {
      const times = receiver.pushes.map((push) => xmlFields(push.body)).filter((f) => f['FromUserName'] === openid).map((f) => f['CreateTime']);
      assert.deepEqual(times, ['1000', '1001', '1002', '1003', '1004', '1005']);
    }
  });
});
