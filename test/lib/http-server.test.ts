import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, isWxsyncError } from '../../lib/errors.ts';
import { countParam, startAdminServer, startPublicServer, type RunningHttpServer } from '../../lib/http-server.ts';
import { silentLogger } from '../../lib/logger.ts';
import { createRegistry } from '../../lib/metrics.ts';

const TOKEN = 'admin-test-token-0123456789abcdef0123456789';
const LIMITS = { maxConnections: 50, bodyMaxBytes: 1024 };

/** A raw request, for what fetch will not send: bad paths, slow or oversized bodies. */
async function raw(port: number, text: string, { waitMs = 2000 } = {}): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  let got = '';
  socket.on('data', (chunk: Buffer) => { got += chunk.toString(); });
  socket.on('error', () => undefined);
  socket.write(text);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => { socket.destroy(); resolve(); }, waitMs);
    socket.on('close', () => { clearTimeout(timer); resolve(); });
  });
  return got;
}

describe('the public listener', () => {
  let server: RunningHttpServer;
  let base = '';
  let release = (): void => undefined;
  before(async () => {
    server = await startPublicServer({
      port: 0, host: '127.0.0.1', logger: silentLogger(), limits: LIMITS, ready: () => true,
      routes: [['/wechat/', async (req, res) => {
        if (req.url?.includes('slow') === true) await new Promise<void>((resolve) => { release = resolve; });
        res.end('success');
      }]],
    });
    base = `http://127.0.0.1:${server.port}`;
  });
  after(async () => { await server.close(100); });

  it('answers its routes and bare probes, and everything else 404 with an empty body', async () => {
    assert.equal(await (await fetch(`${base}/wechat/wxa`)).text(), 'success');
    for (const [path, status] of [['/healthz', 200], ['/readyz', 200], ['/metrics', 404], ['/api/followers/wxa', 404], ['/', 404], ['/healthz/x', 404]] as const) {
      const res = await fetch(`${base}${path}`);
      assert.deepEqual([res.status, await res.text()], [status, ''], path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    }
    assert.equal((await fetch(`${base}/healthz`, { method: 'POST' })).status, 404);
  });

  it('refuses an oversized body on any other path, and a malformed request, with a 4xx', async () => {
    assert.match(await raw(server.port, `POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 5000\r\n\r\n`), /^HTTP\/1\.1 413/);
    assert.match(await raw(server.port, 'GET /%E0%A4%A HTTP/1.1\r\nhost: a\r\n\r\n'), /^HTTP\/1\.1 404/);
    assert.match(await raw(server.port, 'BROKEN\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(await raw(server.port, `GET / HTTP/1.1\r\nhost: a\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`), /^HTTP\/1\.1 (400|431)/);
  });

  it('cuts a slow-loris client that never finishes its headers', async () => {
    const started = Date.now();
    const got = await raw(server.port, 'GET /healthz HTTP/1.1\r\nhost: a\r\n', { waitMs: 15_000 });
    assert.ok(Date.now() - started < 14_000, `the connection was closed after ${Date.now() - started} ms`);
    assert.match(got, /^(HTTP\/1\.1 408|HTTP\/1\.1 400|)/);
  });

  it('ends a connection that sends nothing with a 408, which a browser that opened it ahead of need resends on', async () => {
    assert.match(await raw(server.port, '', { waitMs: 15_000 }), /^HTTP\/1\.1 408 Request Timeout\r\n/);
  });

  it('on close, lets a request in flight finish and takes no new connection', async () => {
    const inFlight = fetch(`${base}/wechat/slow`).then(async (res) => res.text());
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = server.close(5000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await assert.rejects(fetch(`${base}/healthz`), 'a closed listener takes no new connection');
    release();
    assert.equal(await inFlight, 'success');
    await closed;
  });
});

describe('the admin listener', () => {
  let server: RunningHttpServer;
  let base = '';
  let posts = 0;
  before(async () => {
    const registry = createRegistry();
    server = await startAdminServer({
      port: 0, host: '127.0.0.1', token: TOKEN, registry, logger: silentLogger(), limits: LIMITS,
      readiness: () => Promise.resolve({ ready: false, roles: { consumer: true, callback: false } }),
      routes: [['/api/thing/', (_req, res) => { posts += 1; res.end('done'); return Promise.resolve(); }]],
    });
    base = `http://127.0.0.1:${server.port}`;
  });
  after(async () => { await server.close(100); });
  const auth = { authorization: `Bearer ${TOKEN}` };

  it('answers every path, known or not, 401 with one fixed text without the token', async () => {
    const answers = new Set<string>();
    for (const path of ['/metrics', '/readyz', '/api/thing/wxa', '/api/thing/wxnobody', '/nothing']) {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${TOKEN.slice(0, -1)}` }]) {
        const res = await fetch(`${base}${path}`, { method: path.startsWith('/api') ? 'POST' : 'GET', headers });
        assert.equal(res.status, 401, path);
        answers.add(await res.text());
      }
    }
    assert.equal(answers.size, 1, 'nothing about the path or the account leaks');
    assert.equal(posts, 0);
  });

  it('serves metrics, detailed readiness and routes with it', async () => {
    assert.equal((await fetch(`${base}/metrics`, { headers: auth })).status, 200);
    const ready = await fetch(`${base}/readyz`, { headers: auth });
    assert.deepEqual([ready.status, await ready.json()], [503, { ready: false, roles: { consumer: true, callback: false } }]);
    assert.equal(await (await fetch(`${base}/api/thing/wxa`, { method: 'POST', headers: auth })).text(), 'done');
  });

  it('refuses a state-changing request from another site, even with the token', async () => {
    const before = posts;
    for (const headers of [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { origin: 'null' }]) {
      const res = await fetch(`${base}/api/thing/wxa`, { method: 'POST', headers: { ...auth, ...headers } });
      assert.equal(res.status, 403, JSON.stringify(headers));
    }
    assert.equal(posts, before);
  });

  it('refuses an oversized body with 413', async () => {
    assert.match(await raw(server.port, `POST /api/thing/wxa HTTP/1.1\r\nhost: a\r\nauthorization: Bearer ${TOKEN}\r\ncontent-length: 100000\r\n\r\n`), /^HTTP\/1\.1 413/);
  });
});

describe('countParam', () => {
  it('takes digits from 1 to the maximum, the fallback when absent', () => {
    assert.equal(countParam(new URLSearchParams(''), 'limit', 20, 1000), 20);
    assert.equal(countParam(new URLSearchParams('limit=1'), 'limit', 20, 1000), 1);
    assert.equal(countParam(new URLSearchParams('limit=1000'), 'limit', 20, 1000), 1000);
  });

  it('refuses signs, exponents, spaces, fractions, zero, too many digits and out of range with a usage error', () => {
    for (const text of ['0', '1001', '-1', '+5', '1e2', '0x10', ' 5', '5 ', '2.0', '', 'NaN', '9'.repeat(400)]) {
      assert.throws(() => countParam(new URLSearchParams({ limit: text }), 'limit', 20, 1000),
        (error: unknown) => isWxsyncError(error) && error.code === ErrorCode.UsageInvalid && error.message === 'limit must be a whole number from 1 to 1000', text);
    }
  });
});
