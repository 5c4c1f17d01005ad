import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { adminToken, bearerMatches, readAdminEndpoint, removeAdminEndpoint, writeAdminEndpoint } from '../../lib/admin.ts';
import { loadConfig } from '../../lib/config.ts';

describe('the admin credential', () => {
  it('is generated once into the data directory, readable by its owner only, and found again by a reader', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-admin-'));
    try {
      const { admin } = loadConfig({ WXSYNC_DATA_DIR: dir }).http;
      assert.equal(adminToken(admin, false), undefined, 'a reader creates nothing');
      const token = adminToken(admin, true);
      assert.match(token ?? '', /^[A-Za-z0-9_-]{43}$/, '32 random bytes');
      assert.equal(statSync(admin.tokenFile).mode & 0o777, 0o600);
      assert.equal(adminToken(admin, true), token, 'stable across restarts');
      assert.equal(adminToken(admin, false), token, 'the CLI finds it with no extra step');
      const configured = loadConfig({ WXSYNC_DATA_DIR: dir, WXSYNC_ADMIN_TOKEN: 'x'.repeat(40) }).http.admin;
      assert.equal(adminToken(configured, true), 'x'.repeat(40), 'WXSYNC_ADMIN_TOKEN wins');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a short or spaced WXSYNC_ADMIN_TOKEN without echoing it', () => {
    for (const bad of ['short', `${'a'.repeat(20)} ${'b'.repeat(20)}`]) {
      assert.throws(() => loadConfig({ WXSYNC_ADMIN_TOKEN: bad }), (error: Error) => /WXSYNC_ADMIN_TOKEN must be 32 to 256 printable characters/.test(error.message) && !error.message.includes(bad));
    }
  });

  it('matches only the exact bearer token', () => {
    const token = 't'.repeat(43);
    assert.equal(bearerMatches(`Bearer ${token}`, token), true);
    for (const header of [undefined, '', token, `bearer ${token}`, `Bearer ${token}x`, `Bearer ${token.slice(1)}`, 'Bearer ', `Bearer  ${token}`, `Basic ${token}`]) {
      assert.equal(bearerMatches(header, token), false, String(header));
    }
  });

  it('publishes where the admin listener listens, and forgets it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-admin-'));
    try {
      const { admin } = loadConfig({ WXSYNC_DATA_DIR: dir }).http;
      assert.equal(readAdminEndpoint(admin), undefined);
      writeAdminEndpoint(admin, { host: '127.0.0.1', port: 4321, pid: 7 });
      assert.deepEqual(readAdminEndpoint(admin), { host: '127.0.0.1', port: 4321, pid: 7 });
      removeAdminEndpoint(admin);
      assert.equal(readAdminEndpoint(admin), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
