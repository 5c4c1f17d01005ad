import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../lib/config.ts';
import { differenceCount, writeAccountsFile } from '../../lib/local-stack.ts';
import type { ReadyAccount } from '../../sim/server.ts';

describe('differenceCount', () => {
  it('counts the openids in one sorted list and not the other, either way', () => {
    assert.equal(differenceCount([], []), 0);
    assert.equal(differenceCount(['a', 'b'], ['a', 'b']), 0);
    assert.equal(differenceCount(['a', 'b', 'c'], ['b']), 2);
    assert.equal(differenceCount([], ['a', 'b']), 2);
    assert.equal(differenceCount(['a', 'c', 'e'], ['b', 'c', 'd', 'f']), 5);
  });
});

describe('writeAccountsFile', () => {
  it('writes WXSYNC_ACCOUNTS for the simulator\'s accounts, with a snapshot schedule when given one', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-stack-'));
    try {
      const account: ReadyAccount = {
        appid: 'wxa0000000000001', secret: 's'.repeat(32), token: 'tok3n', encodingAESKey: 'k'.repeat(43), mode: 'safe', originalId: 'gh_1', followers: 5,
      };
      const file = path.join(dir, 'accounts.json');
      writeAccountsFile(file, [account], '*/15 * * * * *');
      const [scheduled] = loadConfig({ WXSYNC_ACCOUNTS: file }).accounts;
      assert.deepEqual(scheduled, { appid: account.appid, secret: account.secret, token: account.token, encodingAESKey: account.encodingAESKey, mode: 'safe', snapshotCron: '*/15 * * * * *' });
      writeAccountsFile(file, [account]);
      assert.ok(!readFileSync(file, 'utf8').includes('snapshotCron'));
      assert.equal(loadConfig({ WXSYNC_ACCOUNTS: file }).accounts[0]?.snapshotCron, undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
