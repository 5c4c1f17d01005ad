import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { adminToken, readAdminEndpoint } from '../../lib/admin.ts';
import { packageRoot } from '../../lib/config.ts';
import { freePorts } from '../../lib/ports.ts';
import type { ReconcileRuns } from '../../api/reconciles.ts';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, waitFor, type TestEnv } from '../support/env.ts';
import { adminFetch, startRun, wxsync, type RunningWxsync } from '../support/wxsync.ts';

const DAY = 86_400;
/** Unix seconds of a China day's midnight, and the China day of a Unix time. */
const midnight = (day: number): number => day * DAY - 8 * 3600;
const chinaDay = (unixSeconds: number): number => Math.floor((unixSeconds + 8 * 3600) / DAY);

export interface DashboardFixture {
  readonly t: TestEnv;
  readonly sim: SimHarness;
  readonly appids: readonly string[];
  /** What `wxsync` prints for the dashboard: the admin listener's /dashboard with the token in the fragment. */
  readonly url: string;
  readonly origin: string;
  /** A request to the admin listener with the token, as the page sends it. */
  api: <T>(pathname: string) => Promise<T>;
  /** Follows (through campaigns and not) and unfollows of one account, pushed by the simulator. */
  churn(account: number, request: Record<string, unknown>): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * A `wxsync run` (every role) fed by the simulator with two accounts over `days` simulated days: each day at 10:00
 * (China time) follows through QR campaigns and other scenes, and unfollows, a fifth of the pushes lost; at 23:50 a
 * snapshot of each account and its reconcile. The simulator's clock and wxsync's move together (the test-only
 * preload test/support/shifted-clock.js); the run is left the morning after the last day, so WeChat's datacube has
 * every day but today.
 */
export async function startDashboardFixture(days: number): Promise<DashboardFixture> {
  const [port = 0] = await freePorts(1);
  const sim = await SimHarness.start({ followers: [300, 200], mode: 'safe', callbackUrl: `http://127.0.0.1:${port}/wechat`, dropRate: 0.2 });
  const t = testEnv({ PORT: String(port), WXSYNC_RECONCILE_GRACE_S: '1', WXSYNC_RECONCILE_POLL_S: '1' });
  const clockFile = path.join(t.dataDir, 'clock-offset-ms');
  writeFileSync(clockFile, '0');
  t.env['NODE_OPTIONS'] = `--import ${path.join(packageRoot, 'test', 'support', 'shifted-clock.js')}`;
  t.env['WXSYNC_TEST_CLOCK_FILE'] = clockFile;
  const accountsFile = path.join(t.dataDir, 'accounts.json');
  const accounts = [sim.account(0), sim.account(1)];
  writeFileSync(accountsFile, JSON.stringify(accounts.map(({ appid, secret, token, encodingAESKey, mode }) => ({ appid, secret, token, encodingAESKey, mode }))));
  t.env['WXSYNC_ACCOUNTS'] = accountsFile;
  t.env['WECHAT_API_BASE'] = sim.apiBase;
  const appids = accounts.map((a) => a.appid);

  const moveTo = async (unixSeconds: number): Promise<void> => {
    const clock = await sim.admin('GET', '/__sim/clock') as { nowMs: number };
    const moved = await sim.admin('POST', '/__sim/clock', { advanceSeconds: Math.max(0, unixSeconds - clock.nowMs / 1000) }) as { offsetSeconds: number };
    writeFileSync(clockFile, String(Math.round(moved.offsetSeconds * 1000)));
  };
  const api = async <T>(pathname: string): Promise<T> => {
    const res = await adminFetch(t.env, pathname);
    const body = await res.json() as T;
    assert.ok(res.ok || pathname === '/readyz', `${pathname}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  /** The openids that followed. */
  const churn = async (account: number, request: Record<string, unknown>): Promise<string[]> => {
    const { events } = await sim.admin('POST', `/__sim/accounts/${appids[account] ?? ''}/churn`, request) as { events: { openid: string; type: string }[] };
    return events.filter((e) => e.type === 'subscribe').map((e) => e.openid);
  };
  // A snapshot of each account, and the reconcile the reconcile role runs once it is loaded (one run per snapshot,
  // as in production: a second run of the same snapshot would find nothing left to correct).
  const reconcileAll = async (): Promise<void> => {
    for (const appid of appids) {
      const ran = await wxsync(t.env, ['snapshot', appid, '--json']);
      assert.equal(ran.code, 0, ran.stderr);
      const { snapshotId } = JSON.parse(ran.stdout) as { snapshotId: string };
      await waitFor(`the reconcile of ${snapshotId}`, 120_000, async () => {
        const { runs } = await api<ReconcileRuns>(`/api/reconciles?appid=${appid}`);
        return runs.some((r) => r.snapshotId === snapshotId && r.status === 'done') || undefined;
      }, 250);
    }
  };

  let running: RunningWxsync | undefined;
  try {
    running = await startRun(t.env, port, 'callback,consumer,snapshot,reconcile,api,alerts');
    // The store learns the followers each account had: one snapshot and its reconcile.
    await reconcileAll();
    const firstDay = chinaDay(Date.now() / 1000) + 1;
    // Some of each day's campaign followers leave the next day, so the campaigns' retention has something to show.
    let leaving: string[] = [];
    for (let d = 0; d < days; d += 1) {
      await moveTo(midnight(firstDay + d) + 10 * 3600);
      const spring = await churn(0, { subscribe: 6 + d, unsubscribe: 0, qrScene: 'spring_poster', resubscribeRate: 0, unsubscribeOpenids: leaving });
      const store = await churn(0, { subscribe: 4, unsubscribe: 0, qrScene: 'store_0021', resubscribeRate: 0 });
      await churn(0, { subscribe: 5, unsubscribe: 3 + (d % 3), qrRate: 0 });
      await churn(1, { subscribe: 3, unsubscribe: 0, qrScene: 'event-2026', resubscribeRate: 0 });
      await churn(1, { subscribe: 2, unsubscribe: 2, qrRate: 0 });
      leaving = [...spring.slice(0, 2 + (d % 2)), ...store.slice(0, 1)];
      await moveTo(midnight(firstDay + d) + 23 * 3600 + 50 * 60);
      await reconcileAll();
    }
    await moveTo(midnight(firstDay + days) + 9 * 3600);
  } catch (error) {
    await running?.stop();
    await sim.close();
    t.cleanup();
    throw error;
  }
  const started = running;
  const { admin } = t.config.http;
  const endpoint = readAdminEndpoint(admin);
  const token = adminToken(admin, false);
  assert.ok(endpoint !== undefined && token !== undefined, 'wxsync run wrote its admin endpoint and token');
  const origin = `http://${endpoint.host}:${endpoint.port}`;
  // The address the browser opens is the one `wxsync dashboard` prints, as an operator would get it.
  const printed = await wxsync(t.env, ['dashboard']);
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(printed.stdout, `${origin}/dashboard#token=${encodeURIComponent(token)}\n`);
  return {
    t, sim, appids, url: printed.stdout.trimEnd(), origin,
    api,
    churn,
    async close() {
      try {
        assert.equal(await started.stop(), 0, `wxsync run stopped cleanly\n${started.stderr()}`);
      } finally {
        await sim.close();
        t.cleanup();
      }
    },
  };
}
