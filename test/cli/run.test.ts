import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { checkAccounts } from '../../cli/run.ts';
import { ErrorCode } from '../../lib/errors.ts';
import { wxsync } from '../support/wxsync.ts';

describe('wxsync run without accounts', () => {
  it('says what to configure and points at the demo, exit 2, having opened nothing', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'wxsync-run-'));
    try {
      const started = Date.now();
      const ran = await wxsync({ WXSYNC_DATA_DIR: dataDir, WXSYNC_ACCOUNTS: '', KAFKA_BROKERS: '127.0.0.1:9', PORT: '0', WXSYNC_ADMIN_PORT: '0' }, ['run']);
      assert.equal(ran.code, 2, ran.stderr);
      assert.equal(ran.stdout, '');
      const lines = ran.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, ran.stderr);
      assert.match(lines[0] ?? '', /^wxsync: USAGE_INVALID: no accounts configured: set WXSYNC_ACCOUNTS to a JSON file .*run `npx wxsync demo`\.$/);
      // Refused before the store, the listeners or Kafka were touched: nothing written, no wait for a broker.
      assert.deepEqual(readdirSync(dataDir), []);
      assert.ok(Date.now() - started < 15_000);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('lets a consumer alone start without accounts: it loads whatever Kafka holds', () => {
    assert.doesNotThrow(() => { checkAccounts(['consumer'], 0); });
    assert.doesNotThrow(() => { checkAccounts(['consumer', 'api'], 1); });
    for (const roles of [['consumer', 'callback'], ['api'], ['snapshot'], ['reconcile']]) {
      assert.throws(() => { checkAccounts(roles, 0); }, (error: { code?: string }) => error.code === ErrorCode.UsageInvalid);
    }
  });
});
