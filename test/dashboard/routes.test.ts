import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { dashboardRoutes } from '../../dashboard/routes.ts';
import { adminServer, type AdminServer } from './admin-server.ts';

describe('the dashboard\'s files on the admin listener', () => {
  let server: AdminServer;
  before(async () => { server = await adminServer(dashboardRoutes()); });
  after(async () => { await server.close(); });

  it('serves the page\'s files and ECharts from node_modules, with the token only', async () => {
    const echarts = readFileSync(createRequire(import.meta.url).resolve('echarts/dist/echarts.min.js'));
    for (const [name, type, body] of [
      ['app.js', 'text/javascript; charset=utf-8', readFileSync(new URL('../../dashboard/web/app.js', import.meta.url))],
      ['page.html', 'text/html; charset=utf-8', readFileSync(new URL('../../dashboard/web/page.html', import.meta.url))],
      ['page.css', 'text/css; charset=utf-8', readFileSync(new URL('../../dashboard/web/page.css', import.meta.url))],
      ['strings.json', 'application/json; charset=utf-8', readFileSync(new URL('../../dashboard/web/strings.json', import.meta.url))],
      ['echarts.min.js', 'text/javascript; charset=utf-8', echarts],
    ] as const) {
      assert.equal((await fetch(`${server.base}/dashboard/${name}`)).status, 401, `${name} without the token`);
      const res = await server.get(`/dashboard/${name}`);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers.get('content-type'), type);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(body), name);
      // Kept by the browser only (never a shared cache), revalidated each load: 304 without a body while unchanged.
      assert.equal(res.headers.get('cache-control'), 'private, no-cache');
      const etag = res.headers.get('etag') ?? '';
      assert.match(etag, /^"[A-Za-z0-9_-]{27}"$/);
      const again = await server.get(`/dashboard/${name}`, { headers: { 'if-none-match': etag } });
      assert.deepEqual([again.status, await again.text(), again.headers.get('etag')], [304, '', etag]);
      assert.equal((await server.get(`/dashboard/${name}`, { headers: { 'if-none-match': '"other"' } })).status, 200);
    }
  });

  it('serves nothing else', async () => {
    for (const name of ['', 'nope.js', 'constructor', '__proto__', '..%2Fpackage.json', 'web/app.js', 'app.js/']) {
      assert.equal((await server.get(`/dashboard/${name}`)).status, 404, name);
    }
    assert.equal((await server.get('/dashboard/app.js', { method: 'POST' })).status, 405);
  });
});
