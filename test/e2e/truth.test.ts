import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, waitFor, type TestEnv } from '../support/env.ts';
import { freePorts } from '../../lib/ports.ts';
import { adminFetch, startRun, wxsync } from '../support/wxsync.ts';

interface Report {
  status: string;
  snapshotId: string;
  reason?: string;
  missing: { emitted: number };
  stale: { emitted: number };
  live: { checked: number; emitted: number; skipped: number };
}

async function storeFollowers(env: Record<string, string>, appid: string): Promise<string[]> {
  return (await (await adminFetch(env, `/api/followers/${appid}`)).text()).split('\n').filter((l) => l !== '');
}

async function written(env: Record<string, string>): Promise<number> {
  const metrics = await (await adminFetch(env, '/metrics')).text();
  return Number(/^wxsync_consumer_rows_written_total (\d+)/m.exec(metrics)?.[1] ?? 0);
}

// Issue 11, scenario 2, with wxsync's default δ (60 s) and grace (30 s): churn with lost pushes right before a
// snapshot leaves users whose delivered event falls inside the window and whose later push was lost. The one
// reconcile after that snapshot confirms them live, so the store equals WeChat after it.
describe('one snapshot and its reconcile: the store equals WeChat, window users included', { timeout: 420_000 }, () => {
  let t: TestEnv;
  let sim: SimHarness;
  let port = 0;

  before(async () => {
    [port = 0] = await freePorts(1);
    sim = await SimHarness.start({ followers: [20_000], mode: 'safe', callbackUrl: `http://127.0.0.1:${port}/wechat`, dropRate: 0.2 });
    t = testEnv({ PORT: String(port) });
    sim.configure(t);
  });
  after(async () => {
    await sim.close();
    t.cleanup();
  });

  it('3,000 follows and 2,000 unfollows with 20% of pushes lost, just before `wxsync snapshot`: one reconcile, then store = truth; a second emits nothing', async () => {
    const running = await startRun(t.env, port, 'callback,consumer,snapshot,reconcile,api');
    const appid = sim.account().appid;
    try {
      const churn = await sim.admin('POST', `/__sim/accounts/${appid}/churn`, { subscribe: 3000, unsubscribe: 2000 }) as { subscribed: number; unsubscribed: number; dropped: number };
      assert.ok(churn.dropped > 500, `about 20% of the pushes were lost: ${churn.dropped}`);
      const delivered = churn.subscribed + churn.unsubscribed - churn.dropped;
      await waitFor('every delivered event in the store', 120_000, async () => (await written(t.env)) >= delivered || undefined, 250);

      const snapshot = await wxsync(t.env, ['snapshot', appid]);
      assert.equal(snapshot.code, 0, snapshot.stderr);
      const reconciled = await wxsync(t.env, ['reconcile', appid, '--json']);
      assert.equal(reconciled.code, 0, reconciled.stderr);
      const report = JSON.parse(reconciled.stdout) as Report;
      assert.equal(report.status, 'done', reconciled.stdout);
      assert.ok(report.live.emitted > 0, `users inside the window were resolved live: ${reconciled.stdout}`);
      assert.equal(report.live.skipped, 0, reconciled.stdout);

      const truth = (await sim.followers()).sort();
      await waitFor('the corrections in the store', 60_000, async () => {
        const listed = await storeFollowers(t.env, appid);
        return listed.length === truth.length && listed.every((o, k) => o === truth[k]) ? true : undefined;
      }, 500);
      const listed = await storeFollowers(t.env, appid);
      const inStore = new Set(listed);
      const inTruth = new Set(truth);
      assert.deepEqual(
        { missing: truth.filter((o) => !inStore.has(o)), extra: listed.filter((o) => !inTruth.has(o)) },
        { missing: [], extra: [] },
        'after one snapshot and its reconcile the store equals WeChat',
      );

      const again = await wxsync(t.env, ['reconcile', appid, '--json']);
      assert.equal(again.code, 0, again.stderr);
      const second = JSON.parse(again.stdout) as Report;
      assert.deepEqual([second.status, second.missing.emitted, second.stale.emitted, second.live.emitted], ['done', 0, 0, 0], again.stdout);
    } finally {
      assert.equal(await running.stop(), 0, `wxsync run stopped cleanly\n${running.stderr()}`);
    }
  });
});

// Issue 11, scenario 3: the role starts its own reconcile as soon as a snapshot is loaded, so the command
// right after `wxsync snapshot` meets a run in flight; it waits for it and reports it (or runs after it).
describe('`wxsync snapshot X && wxsync reconcile X`, twenty times against a running `wxsync run`', { timeout: 420_000 }, () => {
  let t: TestEnv;
  let sim: SimHarness;
  let port = 0;

  before(async () => {
    [port = 0] = await freePorts(1);
    sim = await SimHarness.start({ followers: [3000], mode: 'safe', callbackUrl: `http://127.0.0.1:${port}/wechat`, dropRate: 0.2 });
    // A short grace and poll, so the role's own reconcile races the command's every time.
    t = testEnv({ PORT: String(port), WXSYNC_RECONCILE_GRACE_S: '1', WXSYNC_RECONCILE_POLL_S: '1' });
    sim.configure(t);
  });
  after(async () => {
    await sim.close();
    t.cleanup();
  });

  it('never answers "already running", and each reconcile is of the snapshot just taken', async () => {
    const running = await startRun(t.env, port, 'callback,consumer,snapshot,reconcile,api');
    const appid = sim.account().appid;
    try {
      for (let round = 0; round < 20; round += 1) {
        await sim.admin('POST', `/__sim/accounts/${appid}/churn`, { subscribe: 20, unsubscribe: 20 });
        const snapshot = await wxsync(t.env, ['snapshot', appid, '--json']);
        assert.equal(snapshot.code, 0, snapshot.stderr);
        const taken = (JSON.parse(snapshot.stdout.trim().split('\n').at(-1) ?? '{}') as { snapshotId?: string }).snapshotId;
        const reconciled = await wxsync(t.env, ['reconcile', appid, '--json']);
        assert.doesNotMatch(reconciled.stdout + reconciled.stderr, /already running/);
        assert.equal(reconciled.code, 0, `round ${round}: ${reconciled.stdout}${reconciled.stderr}`);
        const report = JSON.parse(reconciled.stdout) as Report;
        assert.equal(report.status, 'done', reconciled.stdout);
        assert.equal(report.snapshotId, taken, `round ${round} reconciled the snapshot just taken`);
      }
    } finally {
      assert.equal(await running.stop(), 0, `wxsync run stopped cleanly\n${running.stderr()}`);
    }
  });
});
