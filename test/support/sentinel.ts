import type { SentinelRow } from '../../producers/snapshot/sentinel-store.ts';
import type { SimHarness } from '../lib/wechat/sim-harness.ts';
import { adminFetch, type RunningWxsync } from './wxsync.ts';

/** The drift sentinel's records of an account in the running `wxsync run`, oldest first. */
export async function sentinelChecks(env: Record<string, string>, appid: string): Promise<SentinelRow[]> {
  const res = await adminFetch(env, `/api/sentinel/${appid}?limit=1000`);
  if (res.status !== 200) throw new Error(`GET /api/sentinel/${appid}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { checks: SentinelRow[] }).checks.reverse();
}

/** The value of one series in a /metrics text, e.g. metricValue(text, 'wxsync_sentinel_drift_followers', { appid }). */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.indexOf('}'));
    const have = inside.split(',');
    if (wanted.every((w) => have.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

/** The account's followers in the store of the running `wxsync run`, sorted. */
export async function storeFollowers(env: Record<string, string>, appid: string): Promise<string[]> {
  return (await (await adminFetch(env, `/api/followers/${appid}`)).text()).split('\n').filter((l) => l !== '').sort();
}

export interface Outage {
  /** Epoch ms the callback process was stopped and started again (ready). */
  readonly start: number;
  readonly end: number;
  /** Pushes that failed every delivery attempt: lost. */
  readonly lost: number;
  readonly callback: RunningWxsync;
}

/**
 * Issue 15's outage: the callback role's process is stopped for `outageMs` while the simulator churns every 5 s
 * (so its pushes fail and are lost), then started again with `restart`, which resolves once it is ready.
 */
export async function callbackOutage(sim: SimHarness, appid: string, callback: RunningWxsync, restart: () => Promise<RunningWxsync>, outageMs: number): Promise<Outage> {
  await callback.stop();
  const start = Date.now();
  let lost = 0;
  while (Date.now() - start < outageMs - 5000) {
    const churn = await sim.admin('POST', `/__sim/accounts/${appid}/churn`, { subscribe: 60, unsubscribe: 15 }) as { failed: number };
    lost += churn.failed;
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, start + outageMs - Date.now())));
  const restarted = await restart();
  return { start, end: Date.now(), lost, callback: restarted };
}
