import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Config } from '../../../lib/config.ts';
import { startAdminServer, type RunningHttpServer } from '../../../lib/http-server.ts';
import { createLogger } from '../../../lib/logger.ts';
import { createRegistry, type Registry } from '../../../lib/metrics.ts';
import type { RecordProducer } from '../../../lib/kafka.ts';
import { parseUserGet, WechatClients } from '../../../lib/wechat/client.ts';
import { reconcilerFor } from '../../../producers/reconcile/main.ts';
import { lastReconcileRuns } from '../../../producers/reconcile/store.ts';
import { waitForLoaded } from '../../../producers/reconcile/watermark.ts';
import { StateStore } from '../../../producers/snapshot/checkpoint.ts';
import { clickhouseKnownOpenids } from '../../../producers/snapshot/enrich.ts';
import { accountQueue, snapshotter } from '../../../producers/snapshot/main.ts';
import { SnapshotMetrics } from '../../../producers/snapshot/metrics.ts';
import type { SnapshotSource } from '../../../producers/snapshot/runner.ts';
import { createSentinel, quotaReader, sentinelRoute, type Sentinel } from '../../../producers/snapshot/sentinel.ts';
import { clickhouseSentinelStore, type SentinelRow, type SentinelStore } from '../../../producers/snapshot/sentinel-store.ts';
import { snapshotHarness, type SnapshotHarness } from './support.ts';

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const found = await registry.getSingleMetric(name)?.get();
  return found?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

// The sentinel against the simulator, real Kafka, chDB and consumer, the real snapshotter and reconciler. The
// simulator has no callback URL here: its churn is never pushed, every follow and unfollow is a lost push.
describe('drift sentinel', { timeout: 300_000 }, () => {
  let h: SnapshotHarness;
  let producer: RecordProducer;
  let clients: WechatClients;
  let store: SentinelStore;
  let registry: Registry;
  let sentinel: Sentinel;
  let appid = '';
  const abort = new AbortController();

  const sentinelWith = (config: Config, source: (appid: string) => SnapshotSource, metrics: SnapshotMetrics): Sentinel => {
    const clickhouse = h.clickhouse;
    assert.ok(clickhouse);
    const logger = createLogger('silent');
    const state = new StateStore(config.snapshot.dir);
    const exclusive = accountQueue();
    const { reconciler } = reconcilerFor({ config, kafka: h.kafka, clickhouse, producer, clients, logger });
    const snap = snapshotter({ config, clients, kafka: h.kafka, producer, owner: 'test', logger, known: clickhouseKnownOpenids(clickhouse, config.clickhouse.database), exclusive });
    return createSentinel({
      appids: [appid], settings: config.sentinel, source, state, exclusive, store, metrics, logger, signal: abort.signal, followPollMs: 200,
      quota: quotaReader({ source, state, dailyQuota: config.snapshot.userGetDailyQuota, metrics, logger, now: Date.now }),
      // What the reconcile role does once a complete snapshot is loaded.
      snapshot: async (a, call) => {
        const result = await snap(a, call);
        if (result.status === 'complete') void reconciler.run({ appid: a, snapshotId: result.snapshotId, dryRun: false, trigger: 'snapshot' }).catch(() => undefined);
        return result;
      },
      pendingReconcile: () => Promise.resolve(undefined),
      loaded: (notBefore) => waitForLoaded({
        offsets: h.kafka, groupId: config.consumer.groupId, topics: [config.kafka.topics.userEvents], notBefore, timeoutMs: 60_000, signal: abort.signal,
      }),
    });
  };

  const rows = async (): Promise<SentinelRow[]> => (await store.recent(appid, 100)).reverse();

  before(async () => {
    h = await snapshotHarness({ followers: [300] }, true, {
      WXSYNC_SENTINEL_INTERVAL_S: '0', WXSYNC_SENTINEL_SETTLE_S: '1', WXSYNC_RECONCILE_GRACE_S: '1', WXSYNC_SENTINEL_FOLLOW_TIMEOUT_S: '120',
    });
    appid = h.sim.account().appid;
    const { config } = h.t;
    assert.ok(h.clickhouse);
    producer = await h.kafka.producer();
    clients = new WechatClients({ apiBase: config.wechatApiBase, accounts: config.accounts, logger: createLogger('silent'), signal: abort.signal });
    store = clickhouseSentinelStore(h.clickhouse, config.clickhouse.database);
    registry = createRegistry();
    sentinel = sentinelWith(config, (a) => clients.get(a), new SnapshotMetrics([appid], { registry, dueAt: () => undefined, overdueGraceMs: 0 }));
  });
  after(async () => {
    abort.abort();
    await sentinel.stop();
    await producer.close();
    clients.close();
    await h.close();
  });

  it('finds the empty store drifted from WeChat, snapshots, follows the reconcile and finds them equal after it', async () => {
    await sentinel.round(appid);
    const [drift, recheck, outcome, ...more] = await rows();
    assert.deepEqual(more, []);
    assert.ok(drift && recheck && outcome);
    assert.deepEqual([drift.result, drift.wechatTotal, drift.storeCount, drift.drift], ['drift', 300, 0, 300]);
    assert.match(drift.action, new RegExp(`^snapshot ${drift.snapshotId} started$`));
    assert.deepEqual([recheck.result, recheck.wechatTotal, recheck.storeCount, recheck.snapshotId], ['equal', 300, 300, drift.snapshotId]);
    assert.deepEqual([outcome.result, outcome.snapshotId, outcome.outcome], ['outcome', drift.snapshotId, 'reconciled: 300 corrections; store = WeChat']);
    assert.equal(await metric(registry, 'wxsync_sentinel_checks_total', { appid, result: 'drift' }), 1);
    assert.equal(await metric(registry, 'wxsync_sentinel_checks_total', { appid, result: 'equal' }), 1);
    assert.equal(await metric(registry, 'wxsync_sentinel_drift_followers', { appid }), 0);
    assert.ok((await metric(registry, 'wxsync_sentinel_last_check_timestamp_seconds', { appid }) ?? 0) > Date.now() / 1000 - 60);
    // What the snapshot gauges start from after a restart.
    const history = (await store.history()).get(appid);
    assert.equal(history?.lastFailed, false);
    assert.ok((history.lastCompleteMs ?? 0) > Date.now() - 120_000, JSON.stringify(history));
  });

  it('finds lost pushes as drift of their net count, and the store equal to WeChat after the correction', async () => {
    const was = new Set(await h.sim.followers());
    await h.sim.admin('POST', `/__sim/accounts/${appid}/churn`, { subscribe: 30, unsubscribe: 10 });
    const now = new Set(await h.sim.followers());
    // A user who followed and unfollowed within the churn needs no correction.
    const changed = [...now].filter((o) => !was.has(o)).length + [...was].filter((o) => !now.has(o)).length;
    const before = (await rows()).length;
    await sentinel.round(appid);
    const [drift, recheck, outcome] = (await rows()).slice(before);
    assert.ok(drift && recheck && outcome);
    assert.deepEqual([drift.result, drift.wechatTotal, drift.storeCount, drift.drift, drift.inFlight], ['drift', 320, 300, 20, 0]);
    assert.equal(recheck.result, 'equal');
    assert.equal(outcome.outcome, `reconciled: ${changed} corrections; store = WeChat`);
    // What the reconcile role's gauges start from after a restart.
    assert.ok(h.clickhouse);
    assert.deepEqual(await lastReconcileRuns(h.clickhouse, h.t.config.clickhouse.database), [{ appid, status: 'done', done: { corrections: changed, snapshotOpenids: 320, first: false } }]);
  });

  it('finds them equal when nothing was lost', async () => {
    const before = (await rows()).length;
    await sentinel.round(appid);
    const added = (await rows()).slice(before);
    assert.deepEqual(added.map((r) => [r.result, r.wechatTotal, r.storeCount, r.drift, r.action]), [['equal', 320, 320, 0, '']]);
  });

  it('records a failed check and claims no drift when user/get answers an error', async () => {
    await h.sim.faults(0, { failNext: [{ api: '/cgi-bin/user/get', errcode: 45009, count: 1 }] });
    const before = (await rows()).length;
    await sentinel.round(appid);
    const added = (await rows()).slice(before);
    const [failed, ...more] = added;
    assert.deepEqual(more, []);
    assert.ok(failed);
    assert.equal(failed.result, 'failed');
    assert.match(failed.reason, /45009/);
    assert.equal(await metric(registry, 'wxsync_sentinel_checks_total', { appid, result: 'failed' }), 1);
    assert.equal(await metric(registry, 'wxsync_sentinel_drift_followers', { appid }), 0);
  });

  it('records a failed check when the answer is malformed', async () => {
    const own = createRegistry();
    const malformed = (a: string): SnapshotSource => ({
      userGet: () => Promise.resolve(parseUserGet({ total: -5, count: 0 })),
      batchGetUserInfo: (openids) => clients.get(a).batchGetUserInfo(openids),
    });
    const bad = sentinelWith(h.t.config, malformed, new SnapshotMetrics([appid], { registry: own, dueAt: () => undefined, overdueGraceMs: 0 }));
    const before = (await rows()).length;
    await bad.round(appid);
    const added = (await rows()).slice(before);
    assert.deepEqual(added.map((r) => [r.result, r.wechatTotal, r.drift]), [['failed', 0, 0]]);
    assert.match(added[0]?.reason ?? '', /total is missing or not a count/);
    assert.equal(await metric(own, 'wxsync_sentinel_checks_total', { appid, result: 'failed' }), 1);
  });

  it('skips the check, spending nothing, when the calls left are the snapshot\'s', async () => {
    // 320 followers: 2 calls for a snapshot + 2 kept back.
    await h.sim.faults(0, { quotaRemaining: 4 });
    await h.sim.resetStats(0);
    const before = (await rows()).length;
    await sentinel.round(appid);
    assert.equal((await rows()).length, before, 'no check, no record');
    assert.equal((await h.sim.calls(0, '/cgi-bin/user/get')).calls, 0);
    assert.equal(await metric(registry, 'wxsync_sentinel_checks_total', { appid, result: 'skipped' }), 1);
    assert.equal(await metric(registry, 'wxsync_userget_quota_remaining', { appid }), 4);
  });
});

describe('GET /api/sentinel/<appid>', () => {
  let server: RunningHttpServer;
  let base = '';
  const asked: number[] = [];
  const TOKEN = 'sentinel-route-token-0123456789abcdef0123';
  const auth = { authorization: `Bearer ${TOKEN}` };
  before(async () => {
    const store = { recent: (_appid: string, limit: number) => { asked.push(limit); return Promise.resolve([]); } } as unknown as SentinelStore;
    server = await startAdminServer({
      port: 0, host: '127.0.0.1', token: TOKEN, registry: createRegistry(), logger: createLogger('silent'), limits: { maxConnections: 10, bodyMaxBytes: 1024 },
      readiness: () => Promise.resolve({ ready: true }), routes: [['/api/sentinel/', sentinelRoute(store, new Set(['wxa']))]],
    });
    base = `http://127.0.0.1:${server.port}`;
  });
  after(async () => { await server.close(100); });

  it('reads the newest 20 by default, or ?limit= from 1 to 1000', async () => {
    for (const query of ['', '?limit=1', '?limit=1000']) {
      const res = await fetch(`${base}/api/sentinel/wxa${query}`, { headers: auth });
      assert.deepEqual([res.status, await res.json()], [200, { checks: [] }], query);
    }
    assert.deepEqual(asked, [20, 1, 1000]);
  });

  it('refuses any other limit with a coded 400 and reads nothing', async () => {
    for (const limit of ['0', '1001', '1e2', '-1', '2.0', ' 5', '9'.repeat(300)]) {
      const res = await fetch(`${base}/api/sentinel/wxa?limit=${encodeURIComponent(limit)}`, { headers: auth });
      assert.deepEqual([res.status, await res.json()], [400, { error: 'limit must be a whole number from 1 to 1000', code: 'USAGE_INVALID' }], limit);
    }
    assert.equal(asked.length, 3);
  });
});
