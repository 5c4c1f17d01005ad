import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../lib/config.ts';
import { testEnv } from '../support/env.ts';

const BIN = path.join(packageRoot, 'bin', 'wxsync.js');

describe('wxsync report', () => {
  const t = testEnv();
  const accounts = path.join(t.dataDir, 'accounts.json');
  writeFileSync(accounts, JSON.stringify([{ appid: 'wxa', secret: 's', token: 'tok' }, { appid: 'wxb', secret: 's', token: 'tok' }]));
  const env = { ...process.env, ...t.env, WXSYNC_ACCOUNTS: accounts };
  after(() => { t.cleanup(); });
  const run = (args: readonly string[]) => spawnSync(process.execPath, [BIN, 'report', ...args], { env, encoding: 'utf8', timeout: 60_000 });

  // Bad invocations: one clear line (and the usage), exit 2, nothing printed on stdout, nothing opened.
  const cases: [string[], RegExp][] = [
    [[], /name a report/],
    [['trends', 'wxa'], /unknown report "trends"; reports are churn, campaigns/],
    [['churn'], /give an appid/],
    [['churn', 'wxz'], /unknown account wxz: it is not in WXSYNC_ACCOUNTS/],
    [['churn', `wx${'a'.repeat(5000)}`], /unknown account/],
    [['churn', 'wxa', '--all'], /give an appid or --all, not both/],
    [['churn', 'wxa', '--from', '2026-11-05', '--to', '2026-11-01'], /--from 2026-11-05 is after --to 2026-11-01/],
    [['churn', 'wxa', '--from', '2026-13-01'], /--from must be a date YYYY-MM-DD, not "2026-13-01"/],
    [['churn', 'wxa', '--to', '2999-01-01'], /after today/],
    [['churn', 'wxa', '--days=-3'], /--days must be a whole number/],
    [['churn', 'wxa', '--days', '100000000000'], /--days must be a whole number/],
    [['churn', 'wxa', '--by', 'year'], /--by must be one of hour, day, week, month/],
    [['churn', 'wxa', '--split', 'gender'], /--split must be one of scene, campaign/],
    [['churn', 'wxa', '--format', 'xml'], /--format must be one of table, json, csv/],
    [['churn', 'wxa', '--tz', 'Nowhere/City'], /unknown time zone "Nowhere\/City"/],
    [['churn', '--all', '--check'], /--check compares one account/],
    [['churn', 'wxa', '--check', '--by', 'week'], /--check compares days/],
    [['churn', 'wxa', '--check', '--tz', 'UTC'], /--check compares China days/],
    [['campaigns', 'wxa', '--days', '7'], /--days is for report churn/],
    [['campaigns', '--all'], /--all is for report churn/],
    [['churn', 'wxa', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    it(`wxsync report ${args.join(' ').slice(0, 50)}`, () => {
      const ran = run(args);
      assert.equal(ran.status, 2, ran.stderr);
      assert.match(ran.stderr, message);
      assert.equal(ran.stdout, '');
      assert.doesNotMatch(ran.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  it('on a store without events: every day listed with zeros, as CSV', () => {
    const ran = run(['churn', '--all', '--days', '3', '--format', 'csv']);
    assert.equal(ran.status, 0, ran.stderr);
    const lines = ran.stdout.trim().split('\n');
    assert.equal(lines[0], 'appids,period,follows,first_follows,returning_follows,unfollows,net,followers_start,followers_end,unfollow_rate,recovered_follows,recovered_unfollows,recovered_share');
    assert.equal(lines.length, 5);
    assert.match(lines[1] ?? '', /^wxa wxb,\d{4}-\d{2}-\d{2},0,0,0,0,0,0,0,,0,0,$/);
  });

  it('campaigns on a store without events: no campaign, an empty histogram', () => {
    const ran = run(['campaigns', 'wxa', '--format', 'json']);
    assert.equal(ran.status, 0, ran.stderr);
    const report = JSON.parse(ran.stdout) as { campaigns: unknown[]; timeToUnfollow: { unfollows: number }[] };
    assert.deepEqual(report.campaigns, []);
    assert.equal(report.timeToUnfollow.reduce((s, b) => s + b.unfollows, 0), 0);
  });
});
