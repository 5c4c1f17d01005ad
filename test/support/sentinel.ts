import { adminFetch } from './wxsync.ts';

/** One row of `GET /api/sentinel/<appid>` (producers/snapshot/sentinel-store.ts SentinelRow). */
export interface SentinelCheck {
  readonly appid: string;
  readonly checkedAt: number;
  readonly result: 'equal' | 'drift' | 'failed' | 'outcome';
  readonly wechatTotal: number;
  readonly storeCount: number;
  readonly inFlight: number;
  readonly drift: number;
  readonly action: string;
  readonly snapshotId: string;
  readonly outcome: string;
  readonly reason: string;
}

/** The drift sentinel's records of an account in the running `wxsync run`, oldest first. */
export async function sentinelChecks(env: Record<string, string>, appid: string): Promise<SentinelCheck[]> {
  const res = await adminFetch(env, `/api/sentinel/${appid}?limit=1000`);
  if (res.status !== 200) throw new Error(`GET /api/sentinel/${appid}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { checks: SentinelCheck[] }).checks.reverse();
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
