import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeUserEvent, type UserEvent } from '../../../lib/contracts/user-event.ts';
import { createLogger } from '../../../lib/logger.ts';
import { WechatClients } from '../../../lib/wechat/client.ts';
import { StateStore } from '../../../producers/snapshot/checkpoint.ts';
import { snapshotLeases } from '../../../producers/snapshot/main.ts';
import { runSnapshot, type Progress } from '../../../producers/snapshot/runner.ts';
import { createReconciler, type ReconcileReport, type Reconciler, type ReconcilerDeps } from '../../../producers/reconcile/runner.ts';
import { clickhouseReconcileStore, type ReconcileStore } from '../../../producers/reconcile/store.ts';
import { loadConfig } from '../../../lib/config.ts';
import { FAST_RETRY } from '../../lib/wechat/sim-harness.ts';
import { waitFor } from '../../support/env.ts';
import { callbackEvent, caughtUp, eventRecord, openidOf, produceAll } from '../../support/events.ts';
import { loadedStatus, rows, snapshotHarness, type SnapshotHarness } from '../snapshot/support.ts';

const USER_GET = '/cgi-bin/user/get';

interface ChurnEvent { openid: string; type: 'subscribe' | 'unsubscribe'; createTime: number }

// One simulated account per test, so each starts from its own truth and its own store rows.
describe('reconcile against the simulator, Kafka and chDB', { timeout: 300_000 }, () => {
  let h: SnapshotHarness;
  let clients: WechatClients;
  let reconciler: Reconciler;
  let db: string;

  before(async () => {
    h = await snapshotHarness({ followers: [3000, 20_000, 2000, 1000] }, true);
    db = h.t.config.clickhouse.database;
    clients = new WechatClients({ apiBase: h.sim.apiBase, accounts: h.t.config.accounts, logger: createLogger('silent'), retry: FAST_RETRY });
    const { config } = h.t;
    assert.ok(h.clickhouse);
    reconciler = createReconciler({
      store: clickhouseReconcileStore(h.clickhouse, db),
      profiles: (appid) => clients.get(appid),
      producer: await h.kafka.producer(),
      offsets: h.kafka,
      // δ of one second: the churn a test makes just before a snapshot must count as older than it.
      settings: { ...config.reconcile, windowMarginMs: 1000, graceMs: 0, loadTimeoutMs: 60_000 },
      topics: config.kafka.topics,
      consumerGroup: config.consumer.groupId,
      batchgetConcurrency: 4,
      logger: createLogger('silent'),
    });
  });
  after(async () => {
    clients.close();
    await h.close();
  });

  const appid = (i: number): string => h.sim.account(i).appid;

  async function snapshot(i: number, onProgress?: (p: Progress) => void): Promise<string> {
    const { config } = h.t;
    const producer = await h.kafka.producer();
    try {
      const result = await runSnapshot(appid(i), {
        source: clients.get(appid(i)), producer, topics: config.kafka.topics, state: new StateStore(config.snapshot.dir),
        lease: snapshotLeases(h.kafka, config, 'reconcile test'), settings: config.snapshot, logger: createLogger('silent'), ...(onProgress === undefined ? {} : { onProgress }),
      });
      assert.ok('snapshotId' in result, JSON.stringify(result));
      await loadedStatus(h, result.snapshotId);
      return result.snapshotId;
    } finally {
      await producer.close();
    }
  }

  /** The store's state: openid → subscribed, for every user with an event. */
  async function storeState(i: number): Promise<Map<string, boolean>> {
    assert.ok(h.clickhouse);
    const got = await rows<{ openid: string; subscribed: number }>(h.clickhouse, `SELECT openid, subscribed FROM ${db}.followers_current WHERE appid = '${appid(i)}'`);
    return new Map(got.map((r) => [r.openid, Boolean(r.subscribed)]));
  }

  async function loaded(): Promise<void> {
    const { config } = h.t;
    await waitFor('the consumer to load everything', 60_000, async () => (await caughtUp(h.kafka, config.consumer.groupId, [config.kafka.topics.userEvents])) || undefined, 100);
  }

  async function corrections(i: number): Promise<UserEvent[]> {
    const records = await h.kafka.readAll(h.t.config.kafka.topics.userEvents, 30_000);
    return records.map((r) => decodeUserEvent(r.value)).filter((e) => e.appid === appid(i) && e.source === 'correction');
  }

  /** Subscribe callbacks for every current follower at their real subscribe_time: the store starts true. */
  async function seedTruth(i: number): Promise<string[]> {
    const truth = await h.sim.followers(i);
    const profiles = await clients.get(appid(i)).batchGetUserInfo(truth.slice(0, 100));
    const all = [...profiles];
    for (let k = 100; k < truth.length; k += 100) all.push(...await clients.get(appid(i)).batchGetUserInfo(truth.slice(k, k + 100)));
    await produceAll(h.kafka, h.t.config.kafka.topics.userEvents, all.map((p) => eventRecord(callbackEvent(appid(i), p.openid, 'subscribe', Math.floor((p.subscribeTime ?? 0) / 1000)))));
    return truth;
  }

  it('an empty store: every follower is missing, corrected with the simulator\'s subscribe_time; a dry run emits nothing; a second run emits zero', async () => {
    const snapshotId = await snapshot(0);
    const before = await h.kafka.endOffsets(h.t.config.kafka.topics.userEvents);
    const dry = await reconciler.run({ appid: appid(0), dryRun: true, trigger: 'manual' });
    assert.equal(dry.status, 'dry-run');
    assert.equal(dry.snapshotId, snapshotId);
    assert.deepEqual([dry.missing.found, dry.missing.emitted, dry.stale.found], [3000, 3000, 0]);
    assert.equal(dry.missing.sample.length, 10);
    assert.deepEqual(await h.kafka.endOffsets(h.t.config.kafka.topics.userEvents), before, 'a dry run publishes nothing');

    const run = await reconciler.run({ appid: appid(0), dryRun: false, trigger: 'manual' });
    assert.equal(run.status, 'done');
    assert.deepEqual([run.missing.found, run.missing.inWindow, run.missing.unconfirmed, run.missing.emitted], [3000, 0, 0, 3000]);
    await loaded();
    const truth = await h.sim.followers(0);
    const state = await storeState(0);
    assert.deepEqual([...state].filter(([, s]) => s).map(([o]) => o).sort(), [...truth].sort());

    assert.ok(h.clickhouse);
    const times = await rows<{ openid: string; t: string }>(h.clickhouse, `SELECT openid, toUnixTimestamp64Milli(subscribe_time) AS t FROM ${db}.followers_current WHERE appid = '${appid(0)}' ORDER BY openid LIMIT 200`);
    const profiles = await clients.get(appid(0)).batchGetUserInfo(times.slice(0, 100).map((r) => r.openid));
    for (const [k, p] of profiles.entries()) assert.equal(Number(times[k]?.t), p.subscribeTime, `subscribe_time of ${p.openid}`);

    const again = await reconciler.run({ appid: appid(0), dryRun: false, trigger: 'manual' });
    assert.deepEqual([again.status, again.missing.found, again.stale.found, again.missing.emitted, again.stale.emitted], ['done', 0, 0, 0, 0]);
    const runs = await rows<{ status: string; missing_emitted: string; dry_run: number }>(h.clickhouse, `SELECT status, missing_emitted, dry_run FROM ${db}.reconcile_runs WHERE appid = '${appid(0)}' ORDER BY started_at`);
    assert.deepEqual(runs.map((r) => [r.status, Number(r.missing_emitted), r.dry_run]), [['dry-run', 3000, 1], ['done', 3000, 0], ['done', 0, 0]]);
  });

  it('users who follow or leave while the snapshot pages are never corrected wrongly', async () => {
    const i = 1;
    await seedTruth(i);
    await loaded();
    // Three pages at 400 ms each leave time to churn between the first page and the last.
    await h.sim.faults(i, { latencyMs: 400 });
    let churn: Promise<ChurnEvent[]> | undefined;
    const snapshotId = await snapshot(i, (p) => {
      churn ??= p.pages >= 1
        ? h.sim.admin('POST', `/__sim/accounts/${appid(i)}/churn`, { subscribe: 150, unsubscribe: 150 }).then((s) => s['events'] as ChurnEvent[])
        : undefined;
    });
    await h.sim.faults(i, { latencyMs: 0 });
    assert.ok(churn, 'churn ran while paging');
    const events = await churn;
    // Half the pushes arrive, half are lost: both kinds must come out right or untouched.
    const delivered = events.filter((_, k) => k % 2 === 0);
    await produceAll(h.kafka, h.t.config.kafka.topics.userEvents, delivered.map((e) => eventRecord(callbackEvent(appid(i), e.openid, e.type, e.createTime))));
    await loaded();

    const report = await reconciler.run({ appid: appid(i), snapshotId, dryRun: false, trigger: 'manual' });
    assert.equal(report.status, 'done', report.reason);
    const deliveredUsers = new Set(delivered.map((e) => e.openid));
    assert.ok(report.live.checked >= deliveredUsers.size, `every user with a delivered event in the window was confirmed live: ${JSON.stringify(report)}`);
    await loaded();

    const truth = new Set(await h.sim.followers(i));
    const emitted = await corrections(i);
    for (const c of emitted) assert.equal(c.type === 'subscribe', truth.has(c.openid), `the ${c.type} correction of ${c.openid} agrees with the truth`);
    const churned = new Set(events.map((e) => e.openid));
    const state = await storeState(i);
    const wrong = [...state].filter(([o, s]) => !churned.has(o) && s !== truth.has(o));
    assert.deepEqual(wrong, [], 'no user outside the churn changed');
    // A user with a delivered event is confirmed live, so even one whose later push was lost ends right, unless
    // WeChat's answer could not be ordered after the store's newest event (counted as skipped).
    const wrongDelivered = [...deliveredUsers].filter((o) => state.get(o) !== truth.has(o));
    assert.ok(wrongDelivered.length <= report.live.skipped, `users with a delivered event left wrong: ${wrongDelivered.join(' ')}; skipped ${report.live.skipped}`);
  });

  it('an incomplete snapshot produces no corrections', async () => {
    const i = 2;
    await h.sim.faults(i, { failNext: [{ api: USER_GET, errcode: 45009, after: 0, count: 1 }] });
    const snapshotId = await snapshot(i);
    const report: ReconcileReport = await reconciler.run({ appid: appid(i), dryRun: false, trigger: 'manual' });
    assert.equal(report.status, 'refused');
    assert.equal(report.snapshotId, snapshotId);
    assert.match(report.reason ?? '', /is incomplete \(WECHAT_QUOTA_EXHAUSTED.*an incomplete snapshot never produces corrections/);
    assert.deepEqual(await corrections(i), []);
  });

  it('a stale share above the limit is refused with a clear message and nothing emitted', async () => {
    const i = 3;
    await seedTruth(i);
    // 100 followers the store believes in and WeChat never had: 10% of 1000, above the 5% default.
    await produceAll(h.kafka, h.t.config.kafka.topics.userEvents, Array.from({ length: 100 }, (_, k) => eventRecord(callbackEvent(appid(i), openidOf(900_000 + k), 'subscribe', 1_700_000_000))));
    await loaded();
    await snapshot(i);
    const report = await reconciler.run({ appid: appid(i), dryRun: false, trigger: 'manual' });
    assert.equal(report.status, 'refused');
    assert.equal(report.stale.found, 100);
    assert.match(report.reason ?? '', /the stale set \(100 followers to unsubscribe\) is 10\.00% of the snapshot's 1000 followers, above the limit of 5\.00%/);
    assert.deepEqual(await corrections(i), []);
  });
});

// Runs of one account never overlap, and a request meeting a run in flight never fails for it (issue 11, 3).
describe('reconcile requests that meet a run in flight', () => {
  const snapshot = { appid: 'wxa', snapshotId: 's1', complete: true, loaded: true, reason: '', startedAt: 1_790_000_000_000, endedAt: 1_790_000_060_000, total: 1 };

  function fakeReconciler(afterRun?: ReconcilerDeps['afterRun']): { reconciler: Reconciler; release: () => void; compares: () => number } {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    let compares = 0;
    const store: ReconcileStore = {
      latestEndedSnapshot: () => Promise.resolve('s1'),
      snapshotStatus: () => Promise.resolve(snapshot),
      snapshotCounts: () => Promise.resolve({ openids: 1, windowEvents: 0 }),
      async compare() {
        compares += 1;
        await gate;
        return { missing: { found: 0, inWindow: 0 }, stale: { found: 0, inWindow: 0 }, live: 0 };
      },
      // eslint-disable-next-line require-yield -- no candidates: the runs compare and find nothing
      async *candidatePages() { await Promise.resolve(); },
      forget: () => Promise.resolve(),
      unreconciled: () => Promise.resolve([]),
      recordRun: () => Promise.resolve(),
    };
    const reconciler = createReconciler({
      store,
      profiles: () => ({ batchGetUserInfo: () => Promise.reject(new Error('no candidate to confirm')) }),
      producer: { send: () => Promise.resolve(), close: () => Promise.resolve() },
      offsets: { endOffsets: () => Promise.resolve(new Map()), committedOffsets: () => Promise.resolve(new Map()) },
      settings: { windowMarginMs: 60_000, graceMs: 0, maxStaleShare: 0.05, loadTimeoutMs: 1000, pollMs: 1000 },
      topics: loadConfig({}).kafka.topics,
      consumerGroup: 'g',
      batchgetConcurrency: 1,
      logger: createLogger('silent'),
      now: () => snapshot.endedAt + 1000,
      ...(afterRun === undefined ? {} : { afterRun }),
    });
    return { reconciler, release, compares: () => compares };
  }

  it('waits for the run in flight and reports it when it was of the same snapshot; a dry run runs after it', async () => {
    const { reconciler, release, compares } = fakeReconciler();
    const first = reconciler.run({ appid: 'wxa', dryRun: false, trigger: 'snapshot' });
    const second = reconciler.run({ appid: 'wxa', dryRun: false, trigger: 'manual' });
    const dry = reconciler.run({ appid: 'wxa', dryRun: true, trigger: 'manual' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(compares(), 1, 'the second and third requests wait: runs of one account never overlap');
    release();
    const [a, b, c] = await Promise.all([first, second, dry]);
    assert.deepEqual([a.status, a.joined], ['done', undefined]);
    assert.deepEqual([b.status, b.runId, b.joined], ['done', a.runId, true], 'the second reports the run it waited for');
    assert.deepEqual([c.status, c.joined === true], ['dry-run', false], 'a dry run is never answered with a real run');
    assert.equal(compares(), 2);
  });

  it('records the snapshot history after each run but a dry run, and a failure there never fails the run', async () => {
    const calls: string[] = [];
    const { reconciler, release } = fakeReconciler((appid, snapshotId) => {
      calls.push(`${appid}/${snapshotId}`);
      return Promise.reject(new Error('the history cannot be written'));
    });
    release();
    const done = await reconciler.run({ appid: 'wxa', dryRun: false, trigger: 'manual' });
    const dry = await reconciler.run({ appid: 'wxa', dryRun: true, trigger: 'manual' });
    assert.deepEqual([done.status, dry.status], ['done', 'dry-run']);
    assert.deepEqual(calls, ['wxa/s1']);
  });
});
