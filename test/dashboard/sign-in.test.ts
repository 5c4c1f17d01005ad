import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { signInPage } from '../../dashboard/sign-in.ts';
import { adminServer, type AdminServer } from './admin-server.ts';

describe('the dashboard\'s sign-in page', () => {
  let server: AdminServer;
  before(async () => { server = await adminServer([['/api/thing', (_req, res) => { res.end('secret'); return Promise.resolve(); }]], signInPage()); });
  after(async () => { await server.close(); });

  it('is the one answer without the token: fixed, at /dashboard only, to GET and HEAD', async () => {
    const res = await fetch(`${server.base}/dashboard`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.equal(html, signInPage().html, 'the same page for everyone: nothing of this installation in it');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal((await fetch(`${server.base}/dashboard?x=1`)).status, 200);
    assert.equal((await fetch(`${server.base}/dashboard`, { method: 'HEAD' })).status, 200);
    for (const [path, method] of [['/dashboard', 'POST'], ['/dashboard/', 'GET'], ['/dashboard/app.js', 'GET'], ['/dashboardx', 'GET'], ['/api/thing', 'GET']] as const) {
      assert.equal((await fetch(`${server.base}${path}`, { method })).status, 401, `${method} ${path}`);
    }
    assert.equal(await (await server.get('/api/thing')).text(), 'secret', 'the token still opens the rest');
  });

  it('runs its one script and nothing from anywhere else', async () => {
    const res = await fetch(`${server.base}/dashboard`);
    const csp = res.headers.get('content-security-policy') ?? '';
    const script = readFileSync(new URL('../../dashboard/web/sign-in.js', import.meta.url), 'utf8');
    const html = await res.text();
    assert.ok(html.includes(`<script>${script}</script>`));
    assert.equal([...html.matchAll(/<script/g)].length, 1);
    assert.ok(csp.includes(`script-src 'sha256-${createHash('sha256').update(script).digest('base64')}' blob:`), csp);
    for (const directive of ["default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]) assert.ok(csp.includes(directive), directive);
    assert.ok(!/https?:/.test(csp) && !/https?:\/\//.test(html), 'nothing from another origin');
  });
});
