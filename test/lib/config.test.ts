import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, parseAccounts } from '../../lib/config.ts';
import { ErrorCode, isWxsyncError } from '../../lib/errors.ts';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(isWxsyncError(error, ErrorCode.ConfigInvalid), 'a CONFIG_INVALID error');
    return error.details['problems'] as string[];
  }
  assert.fail('expected the config to be refused');
}

const ACCOUNT = { appid: 'wx0123456789abcdef', secret: 's3cret', token: 'tok123' };

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const config = loadConfig({}, '/srv/app');
    assert.deepEqual(config.kafka.brokers, ['127.0.0.1:9092']);
    assert.equal(config.kafka.topics.userEvents, 'wx.user.events');
    assert.equal(config.kafka.partitions.userEvents, 12);
    assert.deepEqual(config.clickhouse.target, { kind: 'embedded', path: '/srv/app/data/clickhouse' });
    assert.equal(config.http.port, 8080);
    assert.equal(config.wechatApiBase, 'https://api.weixin.qq.com');
    assert.equal(config.kafkaLocal.port, 9092);
    assert.equal(config.kafkaLocal.controllerPort, 9093);
    assert.deepEqual(config.accounts, []);
    assert.deepEqual(config.snapshot, {
      dir: '/srv/app/data/snapshots', concurrency: 4, leaseTtlMs: 10_000, leaseGroupPrefix: 'wxsync-snapshot-lease.', resumeMaxAgeMs: 3_600_000, userGetDailyQuota: 500, batchgetConcurrency: 4,
      keep: 7, overdueMs: 3_600_000,
    });
  });

  it('reads the snapshot settings and refuses out-of-range ones', () => {
    const config = loadConfig({ WXSYNC_DATA_DIR: '/d', WXSYNC_SNAPSHOT_CONCURRENCY: '8', WXSYNC_SNAPSHOT_LEASE_TTL_S: '30', WXSYNC_USER_GET_DAILY_QUOTA: '1000', WXSYNC_SNAPSHOT_KEEP: '30' });
    assert.equal(config.snapshot.dir, '/d/snapshots');
    assert.equal(config.snapshot.concurrency, 8);
    assert.equal(config.snapshot.leaseTtlMs, 30_000);
    assert.equal(config.snapshot.userGetDailyQuota, 1000);
    assert.equal(config.snapshot.keep, 30);
    assert.equal(loadConfig({ WXSYNC_SNAPSHOT_DIR: '/cp' }, '/x').snapshot.dir, '/cp');
    const problems = problemsOf(() => loadConfig({ WXSYNC_SNAPSHOT_CONCURRENCY: '0', WXSYNC_SNAPSHOT_LEASE_TTL_S: '1', WXSYNC_BATCHGET_CONCURRENCY: 'x', WXSYNC_SNAPSHOT_KEEP: '1' }));
    assert.equal(problems.length, 4, 'a comparison needs two kept snapshots: WXSYNC_SNAPSHOT_KEEP is at least 2');
  });

  it('reads the drift sentinel settings, 0 turning it off, and refuses out-of-range ones', () => {
    assert.deepEqual(loadConfig({}).sentinel, { intervalMs: 900_000, settleMs: 20_000, followTimeoutMs: 1_800_000 });
    assert.equal(loadConfig({ WXSYNC_SENTINEL_INTERVAL_S: '0' }).sentinel.intervalMs, 0);
    assert.deepEqual(
      loadConfig({ WXSYNC_SENTINEL_INTERVAL_S: '15', WXSYNC_SENTINEL_SETTLE_S: '3', WXSYNC_SENTINEL_FOLLOW_TIMEOUT_S: '60', WXSYNC_SNAPSHOT_OVERDUE_S: '600' }).sentinel,
      { intervalMs: 15_000, settleMs: 3000, followTimeoutMs: 60_000 },
    );
    assert.equal(loadConfig({ WXSYNC_SNAPSHOT_OVERDUE_S: '600' }).snapshot.overdueMs, 600_000);
    const problems = problemsOf(() => loadConfig({
      WXSYNC_SENTINEL_INTERVAL_S: '2', WXSYNC_SENTINEL_SETTLE_S: '-1', WXSYNC_SENTINEL_FOLLOW_TIMEOUT_S: '5', WXSYNC_SNAPSHOT_OVERDUE_S: 'soon',
    }));
    assert.deepEqual(problems, [
      'WXSYNC_SENTINEL_INTERVAL_S must be 0 (no sentinel) or at least 5, got 2',
      'WXSYNC_SNAPSHOT_OVERDUE_S must be an integer from 0 to 604800, got "soon"',
      'WXSYNC_SENTINEL_SETTLE_S must be an integer from 0 to 600, got "-1"',
      'WXSYNC_SENTINEL_FOLLOW_TIMEOUT_S must be an integer from 10 to 86400, got "5"',
    ]);
    assert.deepEqual(problemsOf(() => loadConfig({ WXSYNC_SENTINEL_INTERVAL_S: '86401' })), ['WXSYNC_SENTINEL_INTERVAL_S must be an integer from 0 to 86400, got "86401"']);
  });

  it('reads the consumer stall time and refuses out-of-range ones', () => {
    assert.equal(loadConfig({}).consumer.stallMs, 120_000);
    assert.equal(loadConfig({ WXSYNC_CONSUMER_STALL_S: '30' }).consumer.stallMs, 30_000);
    const problems = problemsOf(() => loadConfig({ WXSYNC_CONSUMER_STALL_S: '0' }));
    assert.equal(problems.length, 1);
    assert.ok(problems[0]?.startsWith('WXSYNC_CONSUMER_STALL_S'));
    assert.equal(problemsOf(() => loadConfig({ WXSYNC_CONSUMER_STALL_S: '86401' })).length, 1);
  });

  it('reads the callback settings and refuses out-of-range ones', () => {
    assert.deepEqual(loadConfig({ WXSYNC_DATA_DIR: '/d' }).callback, {
      spoolDir: '/d/spool', maxClockSkewMs: 300_000, bodyMaxBytes: 65_536, produceTimeoutMs: 1500, dedupeWindowMs: 600_000, spoolMaxBytes: 1024 ** 3,
    });
    assert.equal(loadConfig({ WXSYNC_CALLBACK_SPOOL_MAX_BYTES: '1048576' }).callback.spoolMaxBytes, 1_048_576);
    // Below 1 MiB a single burst could fill it; above 1 TiB is a typo.
    assert.equal(problemsOf(() => loadConfig({ WXSYNC_CALLBACK_SPOOL_MAX_BYTES: '1000' })).length, 1);
    assert.equal(problemsOf(() => loadConfig({ WXSYNC_CALLBACK_SPOOL_MAX_BYTES: String(2 * 1024 ** 4) })).length, 1);
    const config = loadConfig({ WXSYNC_SPOOL_DIR: 'sp', WXSYNC_CALLBACK_MAX_SKEW_S: '60', WXSYNC_CALLBACK_PRODUCE_TIMEOUT_MS: '500' }, '/x');
    assert.equal(config.callback.spoolDir, '/x/sp');
    assert.equal(config.callback.maxClockSkewMs, 60_000);
    assert.equal(config.callback.produceTimeoutMs, 500);
    // The produce deadline must leave room inside WeChat's 5 s wait for the spool fallback.
    const problems = problemsOf(() => loadConfig({
      WXSYNC_CALLBACK_PRODUCE_TIMEOUT_MS: '5000', WXSYNC_CALLBACK_BODY_MAX_BYTES: '10', WXSYNC_CALLBACK_MAX_SKEW_S: '0', WXSYNC_CALLBACK_DEDUPE_WINDOW_S: 'x',
    }));
    assert.equal(problems.length, 4);
  });

  it('switches to a ClickHouse server with CLICKHOUSE_URL and prefixes topics', () => {
    const config = loadConfig({ CLICKHOUSE_URL: 'http://ch:8123', WXSYNC_TOPIC_PREFIX: 'dev.', KAFKA_BROKERS: 'a:1, b:2' });
    assert.equal(config.clickhouse.target.kind, 'server');
    assert.equal(config.kafka.topics.dlq, 'dev.wx.dlq');
    assert.equal(config.kafka.topics.leases, 'dev.wx.leases');
    assert.equal(config.snapshot.leaseGroupPrefix, 'dev.wxsync-snapshot-lease.', 'prefixed like the topics, so deployments sharing a broker do not share leases');
    assert.deepEqual(config.kafka.brokers, ['a:1', 'b:2']);
  });

  it('lists every problem at once', () => {
    const problems = problemsOf(() => loadConfig({
      KAFKA_BROKERS: 'no-port',
      PORT: '99999',
      WXSYNC_EVENTS_PARTITIONS: '1.5',
      CLICKHOUSE_URL: 'ftp://x',
      CLICKHOUSE_DATABASE: 'x; DROP TABLE y',
      WXSYNC_LOG_LEVEL: 'loud',
      WXSYNC_TOPIC_PREFIX: 'bad prefix/',
      WECHAT_API_BASE: 'not a url',
      WXSYNC_RETRY_INITIAL_MS: '5000',
      WXSYNC_RETRY_MAX_MS: '10',
      WXSYNC_RECONCILE_MAX_STALE_SHARE: '5%',
    }));
    for (const name of ['WXSYNC_RECONCILE_MAX_STALE_SHARE', 'KAFKA_BROKERS', 'PORT', 'WXSYNC_EVENTS_PARTITIONS', 'CLICKHOUSE_URL', 'CLICKHOUSE_DATABASE',
      'WXSYNC_LOG_LEVEL', 'WXSYNC_TOPIC_PREFIX', 'WECHAT_API_BASE', 'WXSYNC_RETRY_MAX_MS']) {
      assert.ok(problems.some((p) => p.startsWith(name)), `names ${name}: ${problems.join(' | ')}`);
    }
  });

  it('reads and validates the accounts file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-config-'));
    const file = path.join(dir, 'accounts.json');
    writeFileSync(file, JSON.stringify([{ ...ACCOUNT, snapshotCron: '0 3 * * *', reconcileCron: '30 4 * * *' }]));
    assert.deepEqual(loadConfig({ WXSYNC_ACCOUNTS: file }).accounts, [{ ...ACCOUNT, snapshotCron: '0 3 * * *', reconcileCron: '30 4 * * *', mode: 'plain' }]);
    writeFileSync(file, JSON.stringify([{ ...ACCOUNT, snapshotCron: 'not cron', reconcileCron: '99 * * * *' }]));
    assert.deepEqual(problemsOf(() => loadConfig({ WXSYNC_ACCOUNTS: file })), [
      'WXSYNC_ACCOUNTS[0].snapshotCron is not a valid cron expression: "not cron"',
      'WXSYNC_ACCOUNTS[0].reconcileCron is not a valid cron expression: "99 * * * *"',
    ]);

    writeFileSync(file, '{"not": "an array"');
    assert.match(problemsOf(() => loadConfig({ WXSYNC_ACCOUNTS: file }))[0] ?? '', /not JSON/);
    writeFileSync(file, `[${' '.repeat(2 * 1024 * 1024)}]`);
    assert.match(problemsOf(() => loadConfig({ WXSYNC_ACCOUNTS: file }))[0] ?? '', /larger than/);
    assert.match(problemsOf(() => loadConfig({ WXSYNC_ACCOUNTS: path.join(dir, 'missing.json') }))[0] ?? '', /cannot read/);
  });

  it('refuses hostile or malformed accounts, naming each field', () => {
    const problems: string[] = [];
    const accounts = parseAccounts([
      ACCOUNT,
      ACCOUNT,
      { ...ACCOUNT, appid: '../../etc/passwd' },
      { ...ACCOUNT, appid: 'wxother', token: '' },
      { ...ACCOUNT, appid: 'wxkey', encodingAESKey: 'short' },
      'a string',
      null,
      { ...ACCOUNT, appid: 'wxproto', __proto__: { polluted: true } },
    ], problems);
    assert.deepEqual(accounts.map((a) => a.appid), ['wx0123456789abcdef', 'wxproto']);
    assert.deepEqual(problems, [
      'WXSYNC_ACCOUNTS[1].appid wx0123456789abcdef appears twice',
      'WXSYNC_ACCOUNTS[2].appid must be a string matching ^[A-Za-z0-9_-]{1,64}$',
      'WXSYNC_ACCOUNTS[3].token must be a string matching ^[A-Za-z0-9]{3,32}$',
      'WXSYNC_ACCOUNTS[4].encodingAESKey must be a string matching ^[A-Za-z0-9+/]{43}$',
      'WXSYNC_ACCOUNTS[5] must be an object',
      'WXSYNC_ACCOUNTS[6] must be an object',
    ]);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.deepEqual(parseAccounts({}, problems), []);
  });

  it('makes every account\'s callback mode explicit: safe with a key, plain without, refusing a mode the key cannot serve', () => {
    const key = 'A'.repeat(43);
    const problems: string[] = [];
    const accounts = parseAccounts([
      { ...ACCOUNT, appid: 'wxnokey' },
      { ...ACCOUNT, appid: 'wxkey', encodingAESKey: key },
      { ...ACCOUNT, appid: 'wxplainkey', encodingAESKey: key, mode: 'plain' },
      { ...ACCOUNT, appid: 'wxcompat', encodingAESKey: key, mode: 'compat' },
      { ...ACCOUNT, appid: 'wxsafe', encodingAESKey: key, mode: 'safe' },
      { ...ACCOUNT, appid: 'wxcompatnokey', mode: 'compat' },
      { ...ACCOUNT, appid: 'wxsafenokey', mode: 'safe' },
      { ...ACCOUNT, appid: 'wxbadmode', encodingAESKey: key, mode: 'SAFE' },
      { ...ACCOUNT, appid: 'wxnullmode', mode: null },
    ], problems);
    assert.deepEqual(accounts.map((a) => [a.appid, a.mode]), [
      ['wxnokey', 'plain'], ['wxkey', 'safe'], ['wxplainkey', 'plain'], ['wxcompat', 'compat'], ['wxsafe', 'safe'],
    ]);
    assert.deepEqual(problems, [
      'WXSYNC_ACCOUNTS[5].mode compat needs an encodingAESKey',
      'WXSYNC_ACCOUNTS[6].mode safe needs an encodingAESKey',
      'WXSYNC_ACCOUNTS[7].mode must be one of plain, compat, safe',
      'WXSYNC_ACCOUNTS[8].mode must be one of plain, compat, safe',
    ]);
  });
});

describe('the alerts section', () => {
  it('gives the documented defaults and reads the thresholds', () => {
    const { alerts } = loadConfig({});
    assert.deepEqual(alerts, {
      webhooks: [], evalMs: 15_000, lostShare: 0.001, lostCount: 100, spoolMs: 300_000, stuckMs: 300_000, quotaShare: 0.1, refusedPerMinute: 30,
      resolveHoldMs: 60_000, messagesPerMinute: 5, datacubeEveryMs: 86_400_000,
      delivery: { timeoutMs: 5000, attempts: 6, retryInitialMs: 1000, retryMaxMs: 60_000, queueMax: 100 },
    });
    const set = loadConfig({ WXSYNC_ALERT_EVAL_S: '1', WXSYNC_ALERT_LOST_SHARE: '0.01', WXSYNC_ALERT_SPOOL_MINUTES: '2', WXSYNC_ALERT_RESOLVE_HOLD_S: '0', WXSYNC_ALERT_DATACUBE_HOURS: '0' }).alerts;
    assert.deepEqual([set.evalMs, set.lostShare, set.spoolMs, set.resolveHoldMs, set.datacubeEveryMs], [1000, 0.01, 120_000, 0, 0]);
    const problems = problemsOf(() => loadConfig({
      WXSYNC_ALERT_EVAL_S: '0', WXSYNC_ALERT_LOST_SHARE: '2', WXSYNC_ALERT_QUOTA_SHARE: '-1', WXSYNC_ALERT_ATTEMPTS: 'many',
      WXSYNC_ALERT_RETRY_INITIAL_MS: '5000', WXSYNC_ALERT_RETRY_MAX_MS: '1000',
    }));
    assert.deepEqual(problems.map((p) => p.split(' ')[0]), [
      'WXSYNC_ALERT_RETRY_MAX_MS', 'WXSYNC_ALERT_EVAL_S', 'WXSYNC_ALERT_LOST_SHARE', 'WXSYNC_ALERT_QUOTA_SHARE', 'WXSYNC_ALERT_ATTEMPTS',
    ]);
  });

  it('reads the webhooks file like the accounts file, and refuses a malformed, oversized or missing one', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-config-'));
    const accounts = path.join(dir, 'accounts.json');
    writeFileSync(accounts, JSON.stringify([{ ...ACCOUNT, name: '官方号' }]));
    const file = path.join(dir, 'webhooks.json');
    writeFileSync(file, JSON.stringify([{ type: 'dingtalk', url: 'https://oapi.dingtalk.com/robot/send?access_token=abc', secret: 'SECxyz', appids: [ACCOUNT.appid] }]));
    const config = loadConfig({ WXSYNC_ACCOUNTS: accounts, WXSYNC_ALERT_WEBHOOKS: file });
    assert.equal(config.accounts[0]?.name, '官方号');
    assert.deepEqual(config.alerts.webhooks, [
      { type: 'dingtalk', url: 'https://oapi.dingtalk.com/robot/send?access_token=abc', secret: 'SECxyz', language: 'zh', appids: [ACCOUNT.appid] },
    ]);
    writeFileSync(file, JSON.stringify([{ type: 'json', url: 'https://x.example/hook', appids: ['wxnotconfigured'] }]));
    assert.deepEqual(problemsOf(() => loadConfig({ WXSYNC_ACCOUNTS: accounts, WXSYNC_ALERT_WEBHOOKS: file })), [
      'WXSYNC_ALERT_WEBHOOKS[0].appids: "wxnotconfigured" is not configured in WXSYNC_ACCOUNTS',
    ]);
    writeFileSync(file, '[{"type": "json",');
    assert.match(problemsOf(() => loadConfig({ WXSYNC_ALERT_WEBHOOKS: file }))[0] ?? '', /^WXSYNC_ALERT_WEBHOOKS: .* is not JSON/);
    writeFileSync(file, `[${' '.repeat(2 * 1024 * 1024)}]`);
    assert.match(problemsOf(() => loadConfig({ WXSYNC_ALERT_WEBHOOKS: file }))[0] ?? '', /^WXSYNC_ALERT_WEBHOOKS: .* is larger than/);
    assert.match(problemsOf(() => loadConfig({ WXSYNC_ALERT_WEBHOOKS: path.join(dir, 'missing.json') }))[0] ?? '', /^WXSYNC_ALERT_WEBHOOKS: cannot read/);
  });
});

describe('config problems that quote a URL', () => {
  it('never print its credentials', () => {
    assert.throws(() => loadConfig({ CLICKHOUSE_URL: 'ftp://admin:hunter2-secret@db:9000', WECHAT_API_BASE: 'gopher://u:p4ss-secret@x' }), (error: Error) =>
      /CLICKHOUSE_URL must be an http\(s\) URL/.test(error.message) && !error.message.includes('hunter2-secret') && !error.message.includes('p4ss-secret'));
  });
});
