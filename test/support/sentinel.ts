import type { SentinelRow } from '../../producers/snapshot/sentinel-store.ts';
import { adminFetch } from './wxsync.ts';

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
