import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import axios from 'axios';
import { Receiver, startTestSim } from './helpers.ts';

function rawRequest(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new net.Socket();
    let answer = '';
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1'); });
    socket.on('close', () => { resolve(answer); });
    socket.on('error', reject);
    socket.connect(port, '127.0.0.1', () => { socket.end(raw); });
  });
}

describe('startSim', () => {
  it('prints a ready line with derived credentials and serves on the port it picked', async () => {
    const sim = await startTestSim({ accounts: 2, followers: [5, 7], seed: 9, callbackUrl: 'http://127.0.0.1:1/wechat' });
    try {
      const ready = sim.sim.ready;
      assert.equal(ready.ready, true);
      assert.equal(ready.apiBase, `http://127.0.0.1:${sim.sim.port}`);
      assert.notEqual(sim.sim.port, 0);
      assert.equal(ready.accounts.length, 2);
      for (const account of ready.accounts) {
        assert.match(account.appid, /^wx[0-9a-f]{16}$/);
        assert.match(account.secret, /^[0-9a-f]{32}$/);
        assert.match(account.token, /^[A-Za-z0-9]{32}$/);
        assert.match(account.encodingAESKey, /^[A-Za-z0-9]{43}$/);
        assert.match(account.originalId, /^gh_[0-9a-f]{12}$/);
        assert.equal(account.callbackUrl, `http://127.0.0.1:1/wechat/${account.appid}`);
      }
      assert.deepEqual(ready.accounts.map((account) => account.followers), [5, 7]);
      const again = await startTestSim({ accounts: 2, followers: [5, 7], seed: 9, callbackUrl: 'http://127.0.0.1:1/wechat' });
      assert.deepEqual(again.sim.ready.accounts, ready.accounts, 'the same seed gives the same accounts');
      assert.deepEqual(await again.followers(1), await sim.followers(1));
      await again.close();
    } finally {
      await sim.close();
    }
  });

  it('serves HTTPS with a self-signed certificate given in the ready line', async () => {
    const sim = await startTestSim({ https: true, followers: [3] });
    try {
      const ready = sim.sim.ready;
      assert.match(ready.apiBase, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.match(ready.certificate ?? '', /^-----BEGIN CERTIFICATE-----/);
      const client = axios.create({ baseURL: ready.apiBase, httpsAgent: new https.Agent({ ca: ready.certificate }), validateStatus: () => true });
      const account = sim.account();
      const token = await client.get<{ access_token: string }>('/cgi-bin/token', { params: { grant_type: 'client_credential', appid: account.appid, secret: account.secret } });
      const page = await client.get<{ total: number }>('/cgi-bin/user/get', { params: { access_token: token.data.access_token } });
      assert.equal(page.data.total, 3);
      await assert.rejects(axios.get(`${ready.apiBase}/__sim/health`), /self.signed|certificate/i);
    } finally {
      await sim.close();
    }
  });

  it('refuses to start on a port in use, with a clear error', async () => {
    const sim = await startTestSim({ followers: [1] });
    try {
      await assert.rejects(startTestSim({ followers: [1], port: sim.sim.port }), /cannot listen on 127\.0\.0\.1:\d+.*EADDRINUSE/);
    } finally {
      await sim.close();
    }
  });

  it('churns in the background when asked to, pushing each change', async () => {
    const receiver = await Receiver.start();
    const sim = await startTestSim({ followers: [100, 100], callbackUrl: receiver.base, churnIntervalMs: 20, churnSize: 3 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 400));
      const stats = [await sim.stats(0), await sim.stats(1)];
      assert.ok(stats.every((s) => (s.pushes['events'] ?? 0) >= 9), JSON.stringify(stats.map((s) => s.pushes)));
      assert.ok(receiver.pushes.length >= 18);
      assert.ok(new Set(receiver.pushes.map((push) => push.path)).size === 2);
    } finally {
      await sim.close();
      await receiver.close();
    }
  });
});

describe('HTTP robustness', () => {
  let sim: Awaited<ReturnType<typeof startTestSim>>;
  before(async () => {
    sim = await startTestSim({ followers: [20] });
  });
  after(() => sim.close());

  it('caps API bodies and keeps serving', async () => {
    const token = await sim.token();
    const huge = { user_list: [], pad: 'x'.repeat(3 * 1024 * 1024) };
    const res = await sim.http.post('/cgi-bin/user/info/batchget', huge, { params: { access_token: token } })
      .catch((error: unknown) => ({ status: -1, data: error }));
    if (res.status !== -1) {
      assert.equal(res.status, 413);
      assert.equal((res.data as { errcode: number }).errcode, 47001);
    }
    const list = { user_list: Array.from({ length: 1000 }, () => ({ openid: 'o'.repeat(28) })) };
    assert.equal((await sim.post('/cgi-bin/user/info/batchget', list, { access_token: token })).data['errcode'], 40032);
    assert.equal((await sim.get('/cgi-bin/user/get', { access_token: token })).data['total'], 20);
  });

  it('answers garbage requests without falling over', async () => {
    const answers = await Promise.all([
      rawRequest(sim.sim.port, 'GET /cgi-bin/user/get?access_token=%ZZ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      rawRequest(sim.sim.port, 'POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n\u0000\u0001{[x'),
      rawRequest(sim.sim.port, 'BREW /__sim/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      rawRequest(sim.sim.port, 'NONSENSE\r\n\r\n'),
      rawRequest(sim.sim.port, `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
    ]);
    assert.match(answers[0], /^HTTP\/1\.1 200[\s\S]*"errcode":40014/);
    assert.match(answers[1], /^HTTP\/1\.1 200[\s\S]*"errcode":47001/);
    assert.match(answers[2], /^HTTP\/1\.1 (405|400)/);
    assert.match(answers[3], /^HTTP\/1\.1 400/);
    assert.match(answers[4], /^HTTP\/1\.1 431/);
    assert.equal((await sim.get('/__sim/health')).data['ok'], true);
  });

  it('closes promptly with idle keep-alive connections open', async () => {
    const local = await startTestSim({ followers: [1] });
    const agent = new http.Agent({ keepAlive: true });
    await axios.get(`${local.sim.apiBase}/__sim/health`, { httpAgent: agent });
    const started = Date.now();
    await local.close();
    assert.ok(Date.now() - started < 1000);
    agent.destroy();
  });
});
