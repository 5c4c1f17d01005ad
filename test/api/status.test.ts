import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { accountHealth, consumerLag, pipelineStatus, sentinelHealth, statusVersion, type StatusDeps } from '../../api/status.ts';
import type { ReconcileRun } from '../../api/reconciles.ts';
import type { ClickHouseClient } from '../../lib/clickhouse.ts';
import { silentLogger } from '../../lib/logger.ts';
import { createRegistry, Gauge } from '../../lib/metrics.ts';
import type { ListedSnapshot, SnapshotListing } from '../../producers/reconcile/compare.ts';
import type { SentinelRow } from '../../producers/snapshot/sentinel-store.ts';
import { testEnv, type TestEnv } from '../support/env.ts';

const NOW = Date.parse('2026-03-10T12:00:00Z');

function snapshot(id: string, overrides: Partial<ListedSnapshot> = {}): ListedSnapshot {
  return {
    snapshotId: id, startedAt: '2026-03-10T10:00:00.000Z', endedAt: '2026-03-10T10:30:00.000Z', total: 100, openids: 100, state: 'complete', reason: '',
    data: 'kept', droppedAt: null, reconcile: null, comparison: null, ...overrides,
  };
}
const COMPARISON = { fromSnapshotId: 's1', added: 5, addedUnexplained: 1, removed: 3, removedUnexplained: 0, unexplainedShare: 0.125, computedAt: '2026-03-10T10:40:00.000Z' };
const RUN: ReconcileRun = {
  appid: 'wx1', runId: 'r9', snapshotId: 's2', trigger: 'schedule', status: 'done', reason: '', startedAt: '2026-03-10T11:00:00.000Z', finishedAt: '2026-03-10T11:00:30.000Z',
  corrections: 3, emitted: { missing: 2, stale: 1, live: 0 }, unconfirmed: 0, skipped: 0,
};

function sentinelRow(result: SentinelRow['result'], checkedAt: string, overrides: Partial<SentinelRow> = {}): SentinelRow {
  return {
    appid: 'wx1', checkedAt: Date.parse(checkedAt), result, wechatTotal: 145, storeCount: 100, inFlight: 0, drift: 45, action: '', snapshotId: '', outcome: '', reason: '',
    ...overrides,
  };
}
const CHECKED = sentinelRow('drift', '2026-03-10T11:58:00Z', { action: 'snapshot s4 started', snapshotId: 's4' });

test('consumer lag: what each partition holds past the group\'s committed offset', () => {
  assert.equal(consumerLag(new Map([[0, '10'], [1, '5'], [2, '0']]), new Map([[0, '7'], [1, '-1']])), 8, 'a partition never committed lags by all it holds');
  assert.equal(consumerLag(new Map([[0, '10']]), new Map([[0, '10']])), 0);
  assert.equal(consumerLag(new Map([[0, '10']]), new Map([[0, '12']])), 0, 'never negative');
  assert.equal(consumerLag(new Map([[0, '9007199254740993']]), new Map([[0, '9007199254740990']])), 3, 'offsets beyond 2^53 are exact');
});

test('an account\'s health: its newest snapshot, newest run and newest recorded comparison', () => {
  const listing: SnapshotListing = { appid: 'wx1', keep: 7, snapshots: [snapshot('s1'), snapshot('s2', { comparison: COMPARISON }), snapshot('s3', { endedAt: null, state: 'running' })] };
  assert.deepEqual(accountHealth(listing, RUN, [CHECKED], NOW), {
    appid: 'wx1',
    lastSnapshot: { snapshotId: 's3', state: 'running', reason: '', startedAt: '2026-03-10T10:00:00.000Z', endedAt: null, ageSeconds: 7200, total: 100, openids: 100 },
    lastReconcile: { ...RUN, ageSeconds: 3570 },
    lastComparison: { snapshotId: 's2', ...COMPARISON },
    sentinel: {
      checkedAt: '2026-03-10T11:58:00.000Z', result: 'drift', wechatTotal: 145, storeCount: 100, inFlight: 0, drift: 45, action: 'snapshot s4 started', ageSeconds: 120,
      outcome: null,
    },
  });
  assert.deepEqual(accountHealth({ appid: 'wx2', keep: 7, snapshots: [] }, undefined, [], NOW), { appid: 'wx2', lastSnapshot: null, lastReconcile: null, lastComparison: null, sentinel: null });
  const incomplete = accountHealth({ appid: 'wx1', keep: 7, snapshots: [snapshot('s1', { state: 'incomplete', reason: '45009 quota' })] }, undefined, [], NOW);
  assert.deepEqual([incomplete.lastSnapshot?.state, incomplete.lastSnapshot?.reason, incomplete.lastSnapshot?.ageSeconds], ['incomplete', '45009 quota', 5400]);
});

test('the sentinel\'s last check: the newest equal, drift or failed row, and an outcome reported after it', () => {
  const outcome = sentinelRow('outcome', '2026-03-10T11:59:30Z', { drift: 0, outcome: 'reconciled: 45 corrections; store = WeChat', snapshotId: 's4' });
  assert.deepEqual(sentinelHealth([outcome, CHECKED], NOW), {
    checkedAt: '2026-03-10T11:58:00.000Z', result: 'drift', wechatTotal: 145, storeCount: 100, inFlight: 0, drift: 45, action: 'snapshot s4 started', ageSeconds: 120,
    outcome: 'reconciled: 45 corrections; store = WeChat',
  });
  const equal = sentinelRow('equal', '2026-03-10T11:59:50Z', { wechatTotal: 145, storeCount: 143, inFlight: 2, drift: 0 });
  assert.deepEqual(sentinelHealth([equal, outcome, CHECKED], NOW), {
    checkedAt: '2026-03-10T11:59:50.000Z', result: 'equal', wechatTotal: 145, storeCount: 143, inFlight: 2, drift: 0, action: '', ageSeconds: 10, outcome: null,
  }, 'an outcome older than the newest check is not its outcome');
  assert.equal(sentinelHealth([outcome], NOW), null, 'an outcome alone is no check');
  assert.equal(sentinelHealth([], NOW), null);
});

test('the version changes with what the dashboard charts, and with nothing else', () => {
  const listing: SnapshotListing = { appid: 'wx1', keep: 7, snapshots: [snapshot('s1'), snapshot('s2', { comparison: COMPARISON })] };
  const health = accountHealth(listing, RUN, [CHECKED], NOW);
  const version = statusVersion('2026-03-10T11:55:00.000Z', [health]);
  assert.equal(statusVersion('2026-03-10T11:55:00.000Z', [accountHealth(listing, RUN, [CHECKED], NOW + 60_000)]), version, 'ages grow, the figures do not');
  assert.equal(statusVersion('2026-03-10T11:55:00.000Z', [accountHealth(listing, RUN, [], NOW)]), version, 'a sentinel check changes no report: the page draws it from every answer');
  assert.notEqual(statusVersion('2026-03-10T12:00:00.000Z', [health]), version, 'a rollup refresh');
  assert.notEqual(statusVersion('2026-03-10T11:55:00.000Z', [accountHealth(listing, { ...RUN, runId: 'r10' }, [CHECKED], NOW)]), version, 'a reconcile');
  assert.notEqual(statusVersion('2026-03-10T11:55:00.000Z', [accountHealth({ ...listing, snapshots: [...listing.snapshots, snapshot('s3', { state: 'running' })] }, RUN, [CHECKED], NOW)]), version, 'a snapshot');
  assert.notEqual(statusVersion('2026-03-10T11:55:00.000Z', [{ ...health, lastComparison: { ...COMPARISON, snapshotId: 's2', computedAt: 'later' } }]), version, 'a comparison');
});

describe('the status answer', () => {
  let t: TestEnv;
  before(() => { t = testEnv(); });
  after(() => { t.cleanup(); });

  /** Answers the two queries status makes of the store: the rollups' refreshes and an account's newest run. */
  const store = { query: ({ query }: { query: string }) => Promise.resolve({
    json: () => Promise.resolve(query.includes('view_refreshes')
      ? [{ status: 'Scheduled', last_refresh: 1_773_140_000, last_success: 1_773_140_000, exception: '' }]
      : []),
  }) } as unknown as ClickHouseClient;

  function deps(kafkaUp: boolean, asked: string[], alertsRole = true): StatusDeps {
    const registry = createRegistry();
    new Gauge({ name: 'wxsync_callback_spool_depth', help: 'h', registers: [registry], collect() { this.set(4); } });
    new Gauge({ name: 'wxsync_consumer_stalled', help: 'h', registers: [registry], collect() { this.set(0); } });
    if (alertsRole) {
      const firing = new Gauge({ name: 'wxsync_alerts_firing', help: 'h', labelNames: ['kind', 'appid'], registers: [registry] });
      firing.set({ kind: 'spool_not_draining', appid: '' }, 1);
      firing.set({ kind: 'drift', appid: 'wx2' }, 1);
      firing.set({ kind: 'drift', appid: 'wx1' }, 1);
      firing.set({ kind: 'quota_low', appid: 'wx1' }, 0);
    }
    const { topics } = t.config.kafka;
    return {
      config: { ...t.config, accounts: [{ appid: 'wx1', secret: 's', token: 't' }] },
      clickhouse: store,
      kafka: {
        reachable: () => Promise.resolve(kafkaUp),
        endOffsets: (topic) => { asked.push(topic); return Promise.resolve(new Map([[0, topic === topics.userEvents ? '50' : '5']])); },
        committedOffsets: (group, topic) => { asked.push(`${group} ${topic}`); return Promise.resolve(new Map([[0, topic === topics.userEvents ? '45' : '5']])); },
      },
      registry,
      history: { list: (appid) => Promise.resolve({ appid, keep: 7, snapshots: [snapshot('s1')] }) },
      sentinel: { recent: (appid, limit) => { asked.push(`sentinel ${appid} ${limit}`); return Promise.resolve([CHECKED]); } },
      logger: silentLogger(),
      now: () => NOW,
    };
  }

  it('tells the lag per topic, the spool, the stall, each account and the rollups', async () => {
    const asked: string[] = [];
    const status = await pipelineStatus(deps(true, asked));
    assert.deepEqual(status.consumer, { group: t.config.consumer.groupId, lag: 5, lagByTopic: { events: 5, snapshots: 0, profiles: 0 }, stalled: false, secondsSinceWrite: null });
    assert.deepEqual(status.spool, { depth: 4, bytes: null }, 'a metric of a role not running here is unknown, not 0');
    assert.deepEqual(status.rollups, { asOf: new Date(1_773_140_000_000).toISOString() });
    assert.equal(status.kafkaReachable, true);
    assert.equal(status.now, new Date(NOW).toISOString());
    assert.deepEqual(status.accounts.map((a) => [a.appid, a.lastSnapshot?.snapshotId, a.lastReconcile]), [['wx1', 's1', null]]);
    assert.deepEqual(status.accounts.map((a) => a.sentinel), [{
      checkedAt: '2026-03-10T11:58:00.000Z', result: 'drift', wechatTotal: 145, storeCount: 100, inFlight: 0, drift: 45, action: 'snapshot s4 started', ageSeconds: 120,
      outcome: null,
    }]);
    assert.deepEqual(status.alerts, [{ kind: 'drift', appid: 'wx1' }, { kind: 'drift', appid: 'wx2' }, { kind: 'spool_not_draining', appid: '' }], 'the series at 1, sorted');
    assert.equal(status.version, statusVersion(status.rollups.asOf, status.accounts));
    assert.ok(asked.includes(`${t.config.consumer.groupId} ${t.config.kafka.topics.userProfiles}`));
  });

  it('leaves the lag unknown, and asks the broker nothing, while it does not answer', async () => {
    const asked: string[] = [];
    const status = await pipelineStatus(deps(false, asked));
    assert.deepEqual([status.kafkaReachable, status.consumer.lag, status.consumer.lagByTopic, asked], [false, null, null, ['sentinel wx1 10']]);
  });

  it('tells no alerts, not none, without the alerts role in this process', async () => {
    assert.equal((await pipelineStatus(deps(true, [], false))).alerts, null);
  });
});
