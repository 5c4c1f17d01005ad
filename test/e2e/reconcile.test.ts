import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, waitFor, type TestEnv } from '../support/env.ts';
import { freePorts } from '../../lib/ports.ts';
import { adminFetch, startRun, wxsync as run, type Ran } from '../support/wxsync.ts';

// The mission end to end: callbacks with 20% of pushes lost, then one snapshot, then the reconcile that
// `wxsync run` starts by itself once the snapshot is loaded; the CLI reaches the running process's API.
describe('wxsync run + snapshot + reconcile: the store ends equal to WeChat', { timeout: 420_000 }, () => {
  let t: TestEnv;
  let sim: SimHarness;
  let port: number;

  const wxsync = (args: readonly string[]): Promise<Ran> => run(t.env, args);

  before(async () => {
    [port = 0] = await freePorts(1);
    sim = await SimHarness.start({ followers: [100_000], mode: 'safe', callbackUrl: `http://127.0.0.1:${port}/wechat`, dropRate: 0.2 });
    t = testEnv({
      PORT: String(port),
      // δ and grace of a second, so the test need not wait the production defaults out.
      WXSYNC_RECONCILE_WINDOW_MARGIN_S: '1',
      WXSYNC_RECONCILE_GRACE_S: '1',
      WXSYNC_RECONCILE_POLL_S: '1',
    });
    sim.configure(t);
  });
  after(async () => {
    await sim.close();
    t.cleanup();
  });

  it('100k followers, 50k churn events with 20% of callbacks dropped: followers equals the truth, and a second reconcile emits nothing', async () => {
    const running = await startRun(t.env, port, 'callback,consumer,reconcile,api');
    const appid = sim.account().appid;
    try {
      const churn = await sim.admin('POST', `/__sim/accounts/${appid}/churn`, { subscribe: 25_000, unsubscribe: 25_000 }) as { subscribed: number; unsubscribed: number; dropped: number; failed: number };
      assert.equal(churn.failed, 0, 'every push that was sent was answered success');
      assert.ok(churn.dropped > 8000, `about 20% of 50k pushes were lost: ${churn.dropped}`);
      const delivered = churn.subscribed + churn.unsubscribed - churn.dropped;
      await waitFor('every delivered event in the store', 120_000, async () => {
        const metrics = await (await adminFetch(t.env, '/metrics')).text();
        return Number(/^wxsync_consumer_rows_written_total (\d+)/m.exec(metrics)?.[1] ?? 0) >= delivered || undefined;
      }, 250);
      // Older than T0 − δ, so the churn counts as before the snapshot.
      await new Promise((resolve) => setTimeout(resolve, 1500));

      const snapshot = await wxsync(['snapshot', appid]);
      assert.equal(snapshot.code, 0, snapshot.stderr);
      const truth = (await sim.followers()).sort();

      // The reconcile role runs by itself once the snapshot is loaded.
      await waitFor('the store to equal the truth', 180_000, async () => {
        const listed = (await (await adminFetch(t.env, `/api/followers/${appid}`)).text()).split('\n').filter((l) => l !== '');
        return listed.length === truth.length && listed.every((o, k) => o === truth[k]) ? true : undefined;
      }, 1000);

      const followers = await wxsync(['followers', appid]);
      assert.equal(followers.code, 0, followers.stderr);
      assert.deepEqual(followers.stdout.trimEnd().split('\n'), truth, '`wxsync followers` equals the simulator\'s truth');

      const again = await wxsync(['reconcile', appid, '--json']);
      assert.equal(again.code, 0, again.stderr);
      const report = JSON.parse(again.stdout) as { status: string; missing: { emitted: number }; stale: { emitted: number }; live: { emitted: number } };
      assert.deepEqual([report.status, report.missing.emitted, report.stale.emitted, report.live.emitted], ['done', 0, 0, 0], again.stdout);

      const dry = await wxsync(['reconcile', appid, '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /\(dry run, nothing emitted\)/);
      assert.match(dry.stdout, /missing: 0 found/);

      const metrics = await (await adminFetch(t.env, '/metrics')).text();
      assert.ok(Number(/^wxsync_reconcile_corrections_total\{rule="missing"\} (\d+)/m.exec(metrics)?.[1] ?? 0) > 50_000, 'the corrections are counted');
      assert.match(metrics, /^wxsync_reconcile_runs_total\{status="done"\} [2-9]/m);
      assert.match(metrics, /^wxsync_reconcile_runs_total\{status="dry-run"\} 1/m);
    } finally {
      assert.equal(await running.stop(), 0, `wxsync run stopped cleanly on SIGTERM\n${running.stderr()}`);
    }
  });
});
