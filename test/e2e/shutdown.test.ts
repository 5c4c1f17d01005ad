import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decodeEncodingAESKey } from '../../lib/wechat/crypto.ts';
import { freePorts } from '../../lib/ports.ts';
import { buildPushRequest } from '../../sim/push.ts';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, waitFor, type TestEnv } from '../support/env.ts';
import { adminFetch, startRun } from '../support/wxsync.ts';

/** Whether a new TCP connection to the port is taken. */
function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => { resolve(false); });
  });
}

// Issue 12, point 4, on a real process: SIGTERM closes the public listener first and lets a callback in flight
// finish (published, answered success) before the roles stop; only then does the process exit.
describe('wxsync run on SIGTERM', { timeout: 180_000 }, () => {
  let t: TestEnv;
  let sim: SimHarness;
  let port: number;

  before(async () => {
    [port = 0] = await freePorts(1);
    sim = await SimHarness.start({ followers: [10], mode: 'safe', callbackUrl: `http://127.0.0.1:${port}/wechat` });
    t = testEnv({ PORT: String(port) });
    sim.configure(t);
  });
  after(async () => {
    await sim.close();
    t.cleanup();
  });

  it('takes no new connection, finishes the callback in flight with success, and that push reaches the store', async () => {
    const account = sim.account();
    const openid = 'oShutdownInFlight000000000001';
    const now = Math.floor(Date.now() / 1000);
    const push = buildPushRequest({
      url: `http://127.0.0.1:${port}/wechat/${account.appid}`, mode: 'safe', appid: account.appid, token: account.token,
      aesKey: decodeEncodingAESKey(account.encodingAESKey), originalId: 'gh_shutdown',
    }, { type: 'subscribe', openid, createTime: now }, String(now), 'shutdown1');
    const url = new URL(push.url);
    const body = Buffer.from(push.body);

    const running = await startRun(t.env, port, 'callback,consumer,api');
    let answer = '';
    const socket = net.connect(port, '127.0.0.1');
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString(); });
    const closed = new Promise<void>((resolve) => { socket.once('close', () => { resolve(); }); });
    await new Promise<void>((resolve) => { socket.once('connect', () => { resolve(); }); });
    // The headers and half the body: the request is in flight when the signal comes.
    socket.write(`POST ${url.pathname}${url.search} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: text/xml\r\ncontent-length: ${body.length}\r\n\r\n`);
    socket.write(body.subarray(0, body.length >> 1));
    await new Promise((resolve) => setTimeout(resolve, 300));

    const stopped = running.stop();
    await waitFor('the public listener to stop taking connections', 10_000, async () => (await connects(port) ? undefined : true), 50);
    // The rest without a FIN: a client that half-closes has its request aborted by Node's server (httpAllowHalfOpen).
    socket.write(body.subarray(body.length >> 1));
    await closed;
    assert.match(answer, /^HTTP\/1\.1 200 /, `the callback in flight was answered success\n${answer}`);
    assert.match(answer, /\r\n\r\nsuccess$/);
    assert.match(answer, /connection: close/i, 'its keep-alive connection is closed');
    assert.equal(await stopped, 0, `wxsync run stopped cleanly\n${running.stderr()}`);

    // Published before the roles stopped: the next run's consumer has it (if the first had not loaded it yet).
    const again = await startRun(t.env, port, 'consumer,api');
    try {
      await waitFor('the push taken during shutdown in the store', 60_000, async () => {
        const listed = await (await adminFetch(t.env, `/api/followers/${account.appid}`)).text();
        return listed.split('\n').includes(openid) || undefined;
      }, 250);
    } finally {
      assert.equal(await again.stop(), 0, again.stderr());
    }
  });
});
