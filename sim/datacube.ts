import { DATACUBE_FIRST_DATE, DATACUBE_MAX_DAYS, beijingDay, dateDay, dayDate } from '../lib/wechat/datacube.ts';
import type { LedgerDay } from './ledger.ts';
import { SCENES, type Scene } from './population.ts';

/**
 * WeChat's datacube user analysis (wechat-protocol.md §11) answered from the ledger: which days a request may
 * ask for, and the rows of getusersummary and getusercumulate.
 */

/**
 * user_source of each subscribe_scene: 1 search, 17 profile card, 30 QR code, 57 account name in an article,
 * 100 ads, 161 reprint, 200 Channels, 201 live; WeChat counts the rest under 0 ("other, total").
 */
const USER_SOURCE: Readonly<Record<Scene, number>> = {
  ADD_SCENE_SEARCH: 1,
  ADD_SCENE_ACCOUNT_MIGRATION: 0,
  ADD_SCENE_PROFILE_CARD: 17,
  ADD_SCENE_QR_CODE: 30,
  ADD_SCENE_PROFILE_LINK: 57,
  ADD_SCENE_PROFILE_ITEM: 0,
  ADD_SCENE_PAID: 0,
  ADD_SCENE_WECHAT_ADVERTISEMENT: 100,
  ADD_SCENE_REPRINT: 161,
  ADD_SCENE_LIVESTREAM: 201,
  ADD_SCENE_CHANNELS: 200,
  ADD_SCENE_OTHERS: 0,
};

export function userSourceOf(scene: Scene): number {
  return USER_SOURCE[scene];
}

/** Yesterday's figures appear at 08:00 China time. */
const READY_SECONDS_INTO_DAY = 8 * 3600;
const FIRST_DAY = dateDay(DATACUBE_FIRST_DATE) ?? 0;

/** The days to answer (maybe none: first > last), or the errcode WeChat refuses the request with. */
export type DatacubeQuery =
  | { readonly first: number; readonly last: number }
  | { readonly errcode: 61500 | 61501; readonly detail: string };

/**
 * Checks `begin_date`/`end_date` as WeChat does: malformed dates are 61500; a span over 7 days, a reversed
 * range or an end_date of today or later are 61501. Yesterday is left out before 08:00 China time, and days
 * before WeChat kept figures are never there.
 */
export function datacubeQuery(body: Readonly<Record<string, unknown>>, nowSeconds: number): DatacubeQuery {
  const begin = body['begin_date'];
  const end = body['end_date'];
  const first = typeof begin === 'string' ? dateDay(begin) : undefined;
  const last = typeof end === 'string' ? dateDay(end) : undefined;
  if (first === undefined || last === undefined) return { errcode: 61500, detail: 'begin_date and end_date must be YYYY-MM-DD dates' };
  if (first > last) return { errcode: 61501, detail: 'begin_date is after end_date' };
  if (last - first + 1 > DATACUBE_MAX_DAYS) return { errcode: 61501, detail: `the range spans ${last - first + 1} days, at most ${DATACUBE_MAX_DAYS} allowed` };
  const today = beijingDay(nowSeconds);
  if (last >= today) return { errcode: 61501, detail: `end_date must be before today (${dayDate(today)})` };
  const secondsIntoToday = nowSeconds + 8 * 3600 - today * 86_400;
  const lastReady = secondsIntoToday >= READY_SECONDS_INTO_DAY ? today - 1 : today - 2;
  return { first: Math.max(first, FIRST_DAY), last: Math.min(last, lastReady) };
}

export interface SummaryRow {
  readonly ref_date: string;
  readonly user_source: number;
  readonly new_user: number;
  readonly cancel_user: number;
}

/**
 * One row per day and user_source that had a change, by source code; a day without any change has one zero
 * row for source 0, as WeChat's own example shows, so a day without rows means "not ready".
 */
export function summaryRows(days: readonly LedgerDay[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const day of days) {
    const bySource = new Map<number, { new_user: number; cancel_user: number }>();
    SCENES.forEach((scene, i) => {
      const added = day.subscribes[i] ?? 0;
      const cancelled = day.unsubscribes[i] ?? 0;
      if (added === 0 && cancelled === 0) return;
      const code = USER_SOURCE[scene];
      const figures = bySource.get(code) ?? { new_user: 0, cancel_user: 0 };
      figures.new_user += added;
      figures.cancel_user += cancelled;
      bySource.set(code, figures);
    });
    if (bySource.size === 0) bySource.set(0, { new_user: 0, cancel_user: 0 });
    const ref_date = dayDate(day.day);
    for (const [code, figures] of [...bySource].sort(([a], [b]) => a - b)) rows.push({ ref_date, user_source: code, ...figures });
  }
  return rows;
}

export interface CumulateRow {
  readonly ref_date: string;
  readonly cumulate_user: number;
}

export function cumulateRows(days: readonly LedgerDay[]): CumulateRow[] {
  return days.map((day) => ({ ref_date: dayDate(day.day), cumulate_user: day.followers }));
}
