import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import WXBizMsgCrypt from 'wechat-crypto';
import type { ReadyAccount } from '../../sim/server.ts';
import { startTestSim, type TestSim } from './helpers.ts';

/**
 * The simulator's encrypted pushes checked by code that is not ours: node-webot's wechat-crypto (the crypto
 * under the `wechat` middleware) verifies msg_signature and decrypts, so a shared mistake between the
 * simulator and lib/wechat/crypto.ts (both sides of our own tests) cannot pass unnoticed.
 */

const parser = new XMLParser({ processEntities: false, parseTagValue: false, ignoreAttributes: true });

function xmlFields(xml: string): Record<string, string> {
  return (parser.parse(xml) as { xml: Record<string, string> }).xml;
}

interface EventReport {
  readonly openid: string;
  readonly type: 'subscribe' | 'unsubscribe';
  readonly createTime: number;
  readonly eventKey?: string;
  readonly ticket?: string;
  readonly deliveries: number;
}

interface Received {
  readonly openid: string;
  readonly type: string;
  readonly createTime: number;
  readonly eventKey?: string;
  readonly ticket?: string;
}

/** A callback endpoint that authenticates and decrypts every push with the third-party SDK, as a user of it would. */
class SdkReceiver {
  readonly events: Received[] = [];
  readonly failures: string[] = [];
  private readonly server: http.Server;
  base = '';

  private constructor(private readonly account: () => ReadyAccount, private readonly mode: 'compat' | 'safe') {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        try {
          this.events.push(this.accept(req.method ?? '', req.url ?? '/', Buffer.concat(chunks).toString('utf8')));
          res.writeHead(200, { 'content-type': 'text/plain' }).end('success');
        } catch (error) {
          this.failures.push(error instanceof Error ? error.message : String(error));
          res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden');
        }
      });
    });
  }

  static async start(account: () => ReadyAccount, mode: 'compat' | 'safe'): Promise<SdkReceiver> {
    const receiver = new SdkReceiver(account, mode);
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    receiver.base = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/wechat`;
    return receiver;
  }

  private accept(method: string, rawUrl: string, body: string): Received {
    const { appid, token, encodingAESKey, originalId } = this.account();
    const url = new URL(rawUrl, 'http://receiver.invalid');
    const q = url.searchParams;
    const [timestamp, nonce] = [q.get('timestamp') ?? '', q.get('nonce') ?? ''];
    assert.equal(method, 'POST');
    assert.equal(url.pathname, `/wechat/${appid}`);
    assert.equal(q.get('encrypt_type'), 'aes');
    // §5.1 signature, computed here from the spec text rather than with lib/wechat/crypto.ts.
    assert.equal(q.get('signature'), createHash('sha1').update([token, timestamp, nonce].sort().join('')).digest('hex'), 'signature');

    const outer = xmlFields(body);
    const encrypt = outer['Encrypt'];
    assert.ok(encrypt !== undefined && encrypt !== '', 'no <Encrypt>');
    const sdk = new WXBizMsgCrypt(token, encodingAESKey, appid);
    assert.equal(q.get('msg_signature'), sdk.getSignature(timestamp, nonce, encrypt), 'msg_signature');
    const { message, id } = sdk.decrypt(encrypt);
    assert.equal(id, appid, 'the AppID after the message');
    const inner = xmlFields(message);

    assert.equal(outer['ToUserName'], originalId);
    if (this.mode === 'safe') assert.deepEqual(Object.keys(outer), ['ToUserName', 'Encrypt']);
    else assert.deepEqual(Object.fromEntries(Object.entries(outer).filter(([name]) => name !== 'Encrypt')), inner, 'compat: plaintext = decrypted');
    assert.equal(inner['ToUserName'], originalId);
    assert.equal(inner['MsgType'], 'event');
    assert.equal(q.get('openid'), inner['FromUserName']);
    const allowed = ['ToUserName', 'FromUserName', 'CreateTime', 'MsgType', 'Event', 'EventKey', 'Ticket'];
    assert.deepEqual(Object.keys(inner).filter((name) => !allowed.includes(name)), []);
    assert.match(inner['CreateTime'] ?? '', /^\d+$/);
    return {
      openid: inner['FromUserName'] ?? '',
      type: inner['Event'] ?? '',
      createTime: Number(inner['CreateTime']),
      ...(inner['EventKey'] === undefined ? {} : { eventKey: inner['EventKey'] }),
      ...(inner['Ticket'] === undefined ? {} : { ticket: inner['Ticket'] }),
    };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => { resolve(); });
      this.server.closeAllConnections();
    });
  }
}

const key = (e: Received): string => JSON.stringify([e.openid, e.type, e.createTime, e.eventKey ?? null, e.ticket ?? null]);

interface CoWechatApi {
  prefix: string;
  getUser(openid: string): Promise<Record<string, unknown>>;
}

for (const mode of ['safe', 'compat'] as const) {
  describe(`simulator pushes in ${mode} mode, read with node-webot's wechat-crypto`, () => {
    let sim: TestSim;
    let receiver: SdkReceiver;
    before(async () => {
      receiver = await SdkReceiver.start(() => sim.account(0), mode);
      sim = await startTestSim({ followers: [200], callbackUrl: receiver.base, mode, logLevel: 'silent' });
    });
    after(async () => {
      await sim.close();
      await receiver.close();
    });

    it('verifies and decrypts every push into exactly the events the churn answer lists', async () => {
      const { status, data } = await sim.post(`/__sim/accounts/${sim.account(0).appid}/churn`, { subscribe: 40, unsubscribe: 25, qrRate: 0.5 });
      assert.equal(status, 200, JSON.stringify(data));
      const events = data['events'] as EventReport[];
      assert.equal(events.length, 65);
      assert.deepEqual(receiver.failures, []);
      assert.ok(events.every((event) => event.deliveries === 1), 'every push accepted on its first delivery');

      const expected = events.map((e): Received => ({
        openid: e.openid, type: e.type, createTime: e.createTime,
        ...(e.eventKey === undefined ? {} : { eventKey: e.eventKey }),
        ...(e.ticket === undefined ? {} : { ticket: e.ticket }),
      }));
      assert.deepEqual(receiver.events.map(key).sort(), expected.map(key).sort());
      // One user's pushes arrive in the order the events happened.
      for (const openid of new Set(expected.map((e) => e.openid))) {
        assert.deepEqual(receiver.events.filter((e) => e.openid === openid).map(key), expected.filter((e) => e.openid === openid).map(key));
      }
      const qr = receiver.events.filter((e) => e.eventKey !== undefined);
      assert.ok(qr.length > 0, 'some subscribes came through a QR code');
      for (const e of qr) {
        assert.equal(e.type, 'subscribe');
        assert.match(e.eventKey ?? '', /^qrscene_./);
        assert.ok((e.ticket ?? '').length > 20);
      }
      assert.ok(receiver.events.some((e) => e.type === 'unsubscribe'));
    });

    it('co-wechat-api, prefix pointed at the simulator, reads a follower the way the truth shows it', async () => {
      const { appid, secret } = sim.account(0);
      const [openid] = await sim.followers(0);
      assert.ok(openid !== undefined);
      const Api = createRequire(import.meta.url)('co-wechat-api') as new (appid: string, secret: string) => CoWechatApi;
      const sdk = new Api(appid, secret);
      // The SDK has no base-URL option; every call is built from this instance property.
      sdk.prefix = `${sim.sim.apiBase}/cgi-bin/`;
      const theirs = await sdk.getUser(openid);
      const truth = await sim.get(`/__sim/accounts/${appid}/users/${openid}`);
      assert.equal(truth.status, 200);
      assert.equal(theirs['subscribe'], 1);
      assert.equal(theirs['openid'], openid);
      assert.deepEqual(theirs, truth.data);
    });
  });
}
