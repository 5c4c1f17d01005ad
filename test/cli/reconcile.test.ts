import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../lib/config.ts';
import { testEnv } from '../support/env.ts';

const BIN = path.join(packageRoot, 'bin', 'wxsync.js');

// Bad invocations of the commands that reach the store: one clear line, exit 2, nothing opened.
describe('wxsync reconcile and wxsync followers: bad invocations', () => {
  const t = testEnv();
  const accounts = path.join(t.dataDir, 'accounts.json');
  writeFileSync(accounts, JSON.stringify([{ appid: 'wxa', secret: 's', token: 'tok' }]));
  const env = { ...process.env, ...t.env, WXSYNC_ACCOUNTS: accounts };
  after(() => { t.cleanup(); });

  const cases: [string[], RegExp][] = [
    [['reconcile'], /usage: wxsync reconcile <appid> \[--dry-run\] \[--json\] \[--snapshot <id>\]/],
    [['reconcile', 'wxa', 'extra'], /usage: wxsync reconcile/],
    [['reconcile', 'wxa', '--force'], /Unknown option '--force'/],
    [['reconcile', 'wxb'], /unknown account wxb: it is not in WXSYNC_ACCOUNTS/],
    [['reconcile', `wx${'a'.repeat(5000)}`], /unknown account/],
    [['followers'], /usage: wxsync followers <appid>/],
    [['followers', 'wxb'], /unknown account wxb/],
  ];
  for (const [args, message] of cases) {
    it(`wxsync ${args.join(' ').slice(0, 40)}`, () => {
      const ran = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 30_000 });
      assert.equal(ran.status, 2, ran.stderr);
      assert.match(ran.stderr, message);
      assert.equal(ran.stdout, '');
      assert.doesNotMatch(ran.stderr, /\n\s+at /, 'no stack trace');
    });
  }
});
