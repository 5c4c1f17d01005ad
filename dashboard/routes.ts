/**
 * The dashboard's files on the admin listener, behind the admin token like everything there: the page's own code
 * (web/) and ECharts from node_modules, so the page loads nothing from outside. Each is read once, then answered
 * from memory with a strong ETag: the browser keeps it (private: never a shared cache) and revalidates on each
 * load, getting a bodiless 304 while it is unchanged.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { sendJson, type Routes } from '../lib/http-server.ts';

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

const require = createRequire(import.meta.url);
/** Path under /dashboard/ → file and type. */
const FILES: ReadonlyMap<string, { readonly file: () => string | URL; readonly type: string }> = new Map([
  ['app.js', { file: () => new URL('web/app.js', import.meta.url), type: 'text/javascript; charset=utf-8' }],
  ['page.html', { file: () => new URL('web/page.html', import.meta.url), type: 'text/html; charset=utf-8' }],
  ['page.css', { file: () => new URL('web/page.css', import.meta.url), type: 'text/css; charset=utf-8' }],
  ['strings.json', { file: () => new URL('web/strings.json', import.meta.url), type: 'application/json; charset=utf-8' }],
  ['echarts.min.js', { file: () => require.resolve('echarts/dist/echarts.min.js'), type: 'text/javascript; charset=utf-8' }],
]);

export function dashboardRoutes(): Routes {
  const assets = new Map<string, Asset>();
  const asset = (name: string): Asset | undefined => {
    const known = assets.get(name);
    const spec = FILES.get(name);
    if (known !== undefined || spec === undefined) return known;
    const body = readFileSync(spec.file());
    const made = { body, type: spec.type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    assets.set(name, made);
    return made;
  };
  return [['/dashboard/', (req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'use GET' });
      return Promise.resolve();
    }
    const found = asset(path.slice('/dashboard/'.length));
    if (found === undefined) {
      sendJson(res, 404, { error: 'not found' });
      return Promise.resolve();
    }
    const headers = { 'content-type': found.type, etag: found.etag, 'cache-control': 'private, no-cache', 'x-content-type-options': 'nosniff' };
    if (req.headers['if-none-match'] === found.etag) {
      res.writeHead(304, headers);
      res.end();
      return Promise.resolve();
    }
    res.writeHead(200, { ...headers, 'content-length': found.body.length });
    res.end(req.method === 'HEAD' ? undefined : found.body);
    return Promise.resolve();
  }]];
}
