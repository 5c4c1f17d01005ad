import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../../lib/config.ts';
import { freePorts } from '../../lib/ports.ts';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, type TestEnv } from '../support/env.ts';
import { wxsync, type Ran } from '../support/wxsync.ts';

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

// A datacube error answer is a failure, not a half-checked report: exit 1, nothing on stdout, one line saying why
// (after the log lines of any retries). The simulator runs in this process, so the commands run asynchronously.
describe('wxsync report churn --check when WeChat refuses', () => {
  let sim: SimHarness;
  let t: TestEnv;
  const check = (args: readonly string[], extra: Record<string, string> = {}): Promise<Ran> =>
    wxsync({ ...t.env, ...extra }, ['report', 'churn', sim.account().appid, '--check', ...args]);
  const refused = (ran: Ran, message: RegExp): void => {
    assert.equal(ran.code, 1, ran.stderr);
    assert.equal(ran.stdout, '', 'nothing printed as if complete');
    const lines = ran.stderr.trimEnd().split('\n');
    assert.match(lines.at(-1) ?? '', message);
    assert.doesNotMatch(ran.stderr, /\n\s+at /, 'no stack trace');
    for (const line of lines.slice(0, -1)) assert.equal((JSON.parse(line) as { msg: string }).msg, 'wechat call failed, retrying', 'only retries are logged before it');
  };
  before(async () => {
    sim = await SimHarness.start({ followers: [100] });
    t = testEnv();
    sim.configure(t);
  });
  after(async () => {
    await sim.close();
    t.cleanup();
  });

  it('an unverified account (48001) says so', async () => {
    await sim.faults(0, { verified: false });
    try {
      refused(await check(['--days', '7']), /^wxsync: WECHAT_ACCOUNT_UNVERIFIED: .*verified/);
    } finally {
      await sim.faults(0, { verified: true });
    }
  });

  it('an error answer to the second of five 7-day calls prints none of the first', async () => {
    await sim.faults(0, { failNext: { api: '/datacube/getusersummary', errcode: 45009, after: 1 } });
    refused(await check(['--days', '30']), /^wxsync: WECHAT_QUOTA_EXHAUSTED: .*45009/);
  });

  it('an error answer to getusercumulate after getusersummary answered prints nothing', async () => {
    await sim.faults(0, { failNext: { api: '/datacube/getusercumulate', errcode: 61500 } });
    refused(await check(['--days', '7', '--format', 'json']), /^wxsync: .*61500/);
  });

  it('WeChat out of reach: said once it gave up', async () => {
    const [closed = 0] = await freePorts(1);
    refused(await check(['--days', '7'], { WECHAT_API_BASE: `http://127.0.0.1:${closed}` }), /^wxsync: WECHAT_UNREACHABLE: .*unreachable/);
  });

  it('answers again once WeChat does, every day beside WeChat\'s', async () => {
    const ran = await check(['--days', '7', '--format', 'json']);
    assert.equal(ran.code, 0, ran.stderr);
    const report = JSON.parse(ran.stdout) as { check: { days: { wechatStatus: string }[] } };
    assert.equal(report.check.days.length, 7);
    assert.equal(report.check.days.at(-1)?.wechatStatus, 'today');
  });
});
