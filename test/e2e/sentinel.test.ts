import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePorts } from '../../lib/ports.ts';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, waitFor, type TestEnv } from '../support/env.ts';
import { callbackOutage, metricValue, sentinelChecks, storeFollowers } from '../support/sentinel.ts';
import { adminFetch, startRun, type RunningWxsync } from '../support/wxsync.ts';

const INTERVAL_S = 15;
const OUTAGE_MS = 30_000;

const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((o, k) => o === b[k]);

// Issue 15, acceptance 1 (the alert delivery is the alerts' own test): the callback role runs in a process of its
// own, stopped for 30 s while the simulator churns, so those pushes fail and are lost. No snapshot is scheduled:
// the drift sentinel alone (every 15 s here) finds the difference, snapshots, has it reconciled, and finds the
// store equal to WeChat again.
describe('drift sentinel in `wxsync run`: pushes lost while the callback role is down are corrected without a person', { timeout: 900_000 }, () => {
  let t: TestEnv;
  let sim: SimHarness;
  let callbackEnv: Record<string, string>;
  let callbackDir = '';
  let mainPort = 0;
  let callbackPort = 0;

  before(async () => {
    [mainPort = 0, callbackPort = 0] = await freePorts(2);
    sim = await SimHarness.start({ followers: [2000], mode: 'safe', callbackUrl: `http://127.0.0.1:${callbackPort}/wechat` });
    t = testEnv({
      PORT: String(mainPort), WXSYNC_SENTINEL_INTERVAL_S: String(INTERVAL_S), WXSYNC_SENTINEL_SETTLE_S: '3',
      WXSYNC_RECONCILE_GRACE_S: '2', WXSYNC_RECONCILE_POLL_S: '1',
    });
    sim.configure(t);
    // 500 calls a day would stretch a 15 s interval to ~3 min: the sentinel spreads the calls a snapshot does not
    // need over the rest of the quota day. A quota fit for the test's interval keeps it at 15 s.
    await sim.faults(0, { userGetDailyQuota: 100_000 });
    // Its own data directory: its own spool and admin endpoint, and no second opening of the store.
    callbackDir = mkdtempSync(path.join(tmpdir(), 'wxsync-callback-'));
    callbackEnv = { ...t.env, PORT: String(callbackPort), WXSYNC_DATA_DIR: callbackDir };
  });
  after(async () => {
    await sim.close();
    t.cleanup();
    rmSync(callbackDir, { recursive: true, force: true });
  });

  it('finds the drift, snapshots and reconciles by itself; the store equals the truth and the next check finds them equal', async () => {
    const appid = sim.account().appid;
    const main = await startRun(t.env, mainPort, 'consumer,snapshot,reconcile,api');
    let callback: RunningWxsync | undefined = await startRun(callbackEnv, callbackPort, 'callback');
    const metrics = async (): Promise<string> => (await adminFetch(t.env, '/metrics')).text();
    const storeIsTruth = async (): Promise<boolean> => same(await storeFollowers(t.env, appid), (await sim.followers()).sort());
    try {
      // The store starts empty: the sentinel's first check finds every follower missing and imports them.
      await waitFor('the sentinel to import the followers', 240_000, async () => (await storeIsTruth()) || undefined, 1000);
      await waitFor('a check finding the store equal', 120_000, async () => {
        const text = await metrics();
        return (metricValue(text, 'wxsync_sentinel_checks_total', { appid, result: 'equal' }) ?? 0) > 0
          && metricValue(text, 'wxsync_sentinel_drift_followers', { appid }) === 0 ? true : undefined;
      }, 1000);

      const delivered = await sim.admin('POST', `/__sim/accounts/${appid}/churn`, { subscribe: 40, unsubscribe: 20 }) as { failed: number };
      assert.equal(delivered.failed, 0, 'the callback role takes pushes before the outage');

      const running = callback;
      callback = undefined;
      const outage = await callbackOutage(sim, appid, running, () => startRun(callbackEnv, callbackPort, 'callback'), OUTAGE_MS);
      callback = outage.callback;
      const { start: outageStart, end: outageEnd } = outage;
      assert.ok(outage.lost > 200, `the pushes of the outage failed and were lost: ${outage.lost}`);

      await waitFor('the store to equal the truth', 300_000, async () => (await storeIsTruth()) || undefined, 500);
      const correctedAt = Date.now();
      console.log(`drift sentinel: store = truth ${((correctedAt - outageEnd) / 1000).toFixed(1)} s after the outage ended (interval ${INTERVAL_S} s)`);

      // The next check after the store reached the truth finds them equal and brings the gauge back to 0.
      const recheck = await waitFor('a check after the correction finding them equal', 120_000, async () => {
        const rows = await sentinelChecks(t.env, appid);
        return rows.find((r) => r.result === 'equal' && r.checkedAt > correctedAt - 1000);
      }, 1000);
      assert.equal(recheck.wechatTotal, recheck.storeCount);
      assert.equal(metricValue(await metrics(), 'wxsync_sentinel_drift_followers', { appid }), 0);

      const rows = await sentinelChecks(t.env, appid);
      for (const r of rows.filter((row) => row.checkedAt >= outageStart)) {
        console.log(`  ${((r.checkedAt - outageEnd) / 1000).toFixed(1)} s ${r.result} wechat ${r.wechatTotal} store ${r.storeCount} in flight ${r.inFlight} ${r.action} ${r.outcome} ${r.reason}`);
      }
      const drifts = rows.filter((r) => r.result === 'drift' && r.checkedAt >= outageStart);
      assert.ok(drifts.length > 0, `a drift check was recorded during or after the outage: ${JSON.stringify(rows)}`);
      for (const drift of drifts) assert.ok(Math.abs(drift.drift) > drift.inFlight, JSON.stringify(drift));
      const started = drifts.filter((r) => /^snapshot \S+ started$/.test(r.action));
      assert.ok(started.length > 0, `the sentinel started a snapshot: ${JSON.stringify(drifts)}`);
      const outcomes = rows.filter((r) => r.result === 'outcome' && started.some((s) => s.snapshotId === r.snapshotId));
      assert.ok(outcomes.some((o) => /^reconciled: [1-9]\d* corrections; store = WeChat$/.test(o.outcome)), `a sentinel snapshot was reconciled and the store then equalled WeChat: ${JSON.stringify(outcomes)}`);

      const text = await metrics();
      assert.ok((metricValue(text, 'wxsync_sentinel_checks_total', { appid, result: 'drift' }) ?? 0) >= 2, 'the import and the outage');
      assert.ok((metricValue(text, 'wxsync_snapshot_runs_total', { appid, status: 'complete' }) ?? 0) >= 2);
      assert.equal(metricValue(text, 'wxsync_snapshot_last_failed', { appid }), 0);
      assert.equal(metricValue(text, 'wxsync_snapshot_overdue_seconds', { appid }), 0, 'no schedule, nothing overdue');
      assert.ok((metricValue(text, 'wxsync_reconcile_last_corrections', { appid }) ?? -1) >= 0);
      assert.ok((metricValue(text, 'wxsync_reconcile_last_followers', { appid }) ?? 0) > 2000);
      assert.equal(metricValue(text, 'wxsync_reconcile_last_refused', { appid }), 0);
      assert.ok((metricValue(text, 'wxsync_userget_quota_remaining', { appid }) ?? 0) > 0);
      assert.equal(metricValue(text, 'wxsync_userget_quota_limit', { appid }), 100_000);
    } finally {
      const codes = { callback: callback === undefined ? 0 : await callback.stop(), main: await main.stop() };
      assert.deepEqual(codes, { callback: 0, main: 0 }, `wxsync run stopped cleanly\n${main.stderr()}`);
    }
  });
});
