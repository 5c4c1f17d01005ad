import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dashboardUrl } from '../../dashboard/url.ts';

test('the dashboard URL: the admin listener, /dashboard, the token in the fragment (never sent to a server)', () => {
  assert.equal(dashboardUrl({ host: '127.0.0.1', port: 8081 }, 'abc'), 'http://127.0.0.1:8081/dashboard#token=abc');
  const url = new URL(dashboardUrl({ host: '127.0.0.1', port: 8081 }, 'a#b&c/d%e+f'));
  assert.deepEqual([url.pathname, url.search, decodeURIComponent(url.hash.slice('#token='.length))], ['/dashboard', '', 'a#b&c/d%e+f'], 'any printable token survives');
  // A listener on every address is opened on loopback; an IPv6 address is bracketed.
  assert.equal(dashboardUrl({ host: '0.0.0.0', port: 9000 }, 't'), 'http://127.0.0.1:9000/dashboard#token=t');
  assert.equal(dashboardUrl({ host: '::', port: 9000 }, 't'), 'http://[::1]:9000/dashboard#token=t');
  assert.equal(dashboardUrl({ host: 'fd00::5', port: 9000 }, 't'), 'http://[fd00::5]:9000/dashboard#token=t');
  assert.equal(dashboardUrl({ host: 'admin.internal', port: 443 }, 't'), 'http://admin.internal:443/dashboard#token=t');
});
