/**
 * WeChat's datacube has a small daily quota per account, and the dashboard asks for the same days each time it is
 * opened. A finished China day's figures never change once WeChat has them, so an answer covering only days before
 * yesterday is kept (per account, API and range) and answered again without a call; yesterday's may still be "not
 * ready" (before 08:00) and is always asked. Kept in memory: a restart asks once more.
 */
import type { JsonObject } from '../lib/wechat/http.ts';
import { beijingDay, dateDay, type DatacubeSource } from '../lib/wechat/datacube.ts';

/** Entries kept at most; the oldest goes first (a dashboard asks a handful of ranges per account). */
export const DATACUBE_CACHE_ENTRIES = 4096;

/** Whether an answer for days up to `endDate` can be kept: every day of it is before yesterday (China). */
export function settled(endDate: string, nowMs: number): boolean {
  const end = dateDay(endDate);
  return end !== undefined && end < beijingDay(Math.floor(nowMs / 1000)) - 1;
}

export interface DatacubeCache {
  /** The account's source, answering settled ranges from the cache. */
  source(inner: DatacubeSource): DatacubeSource;
}

export function datacubeCache(now: () => number = Date.now): DatacubeCache {
  const kept = new Map<string, JsonObject>();
  return {
    source: (inner) => ({
      appid: inner.appid,
      async datacube(api, beginDate, endDate) {
        const key = `${inner.appid} ${api} ${beginDate} ${endDate}`;
        const hit = kept.get(key);
        if (hit !== undefined) return hit;
        const answer = await inner.datacube(api, beginDate, endDate);
        if (settled(endDate, now())) {
          if (kept.size >= DATACUBE_CACHE_ENTRIES) kept.delete(kept.keys().next().value as string);
          kept.set(key, answer);
        }
        return answer;
      },
    }),
  };
}
