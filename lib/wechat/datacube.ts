/**
 * WeChat's own daily follower figures, the datacube "user analysis" (wechat-protocol.md §11): follows and
 * unfollows per China day and user_source, and followers at the end of each day. They are WeChat's count,
 * independent of pushes and snapshots, so analytics can set the store's days beside them.
 *
 * WeChat answers at most 7 days a call, never today, and yesterday only after 08:00 China time; its days are
 * China days (UTC+8). The pure parts plan the calls and check the answers; the fetchers only loop over calls.
 */
import { ErrorCode, WxsyncError, isWxsyncError } from '../errors.ts';
import { badAnswer } from './errors.ts';
import type { JsonObject } from './http.ts';

export const USER_SUMMARY_API = '/datacube/getusersummary';
export const USER_CUMULATE_API = '/datacube/getusercumulate';
/** §11: at most 7 days per call. */
export const DATACUBE_MAX_DAYS = 7;
/** §11: WeChat keeps figures from this day on. */
export const DATACUBE_FIRST_DATE = '2014-12-01';
/** Rows one answer may hold: 7 days of a generous 64 sources each. A longer list is not a WeChat answer. */
export const MAX_DATACUBE_ROWS = DATACUBE_MAX_DAYS * 64;
/** Above any account's followers, so larger figures can only be garbage (and sums stay exact). */
const MAX_FIGURE = 2_000_000_000;
const MAX_USER_SOURCE = 0x7fff_ffff;

const DAY_SECONDS = 86_400;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The China (UTC+8) day of a Unix time, as a day number: days since 1970-01-01. */
export function beijingDay(unixSeconds: number): number {
  return Math.floor((unixSeconds + 8 * 3600) / DAY_SECONDS);
}

/** The `YYYY-MM-DD` of a day number. */
export function dayDate(day: number): string {
  return new Date(day * DAY_SECONDS * 1000).toISOString().slice(0, 10);
}

/** The day number of a `YYYY-MM-DD` date, or undefined for anything else (2026-02-30 included). */
export function dateDay(date: string): number | undefined {
  const match = DATE.exec(date);
  if (match === null) return undefined;
  const ms = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  const day = ms / (DAY_SECONDS * 1000);
  return Number.isInteger(day) && dayDate(day) === date ? day : undefined;
}

/** An inclusive range of days, as WeChat's `begin_date`/`end_date`. */
export interface DayRange {
  readonly from: string;
  readonly to: string;
}

export interface DatacubePlan {
  /** In order, each at most 7 days. */
  readonly chunks: readonly DayRange[];
  /** When the range reached today or later: the first day left out, since WeChat has no figures for it yet. */
  readonly skippedFrom?: string;
}

/**
 * The calls that cover `from`..`to` (inclusive), given `today` (a China date). Days from today on are
 * clipped off and reported in `skippedFrom`: WeChat refuses them (61501), and a caller asking "up to now"
 * should get the days that exist rather than an error.
 */
export function datacubeChunks(from: string, to: string, today: string): DatacubePlan {
  const first = requestDay(from, 'from');
  const last = requestDay(to, 'to');
  const todayDay = requestDay(today, 'today');
  const firstKept = dateDay(DATACUBE_FIRST_DATE) ?? 0;
  if (first > last) throw new WxsyncError(ErrorCode.UsageInvalid, `datacube range ${from}..${to} ends before it begins`);
  if (first < firstKept) {
    throw new WxsyncError(ErrorCode.UsageInvalid, `datacube range ${from}..${to} begins before ${DATACUBE_FIRST_DATE}, the first day WeChat keeps`);
  }
  const end = Math.min(last, todayDay - 1);
  const chunks: DayRange[] = [];
  for (let start = first; start <= end; start += DATACUBE_MAX_DAYS) {
    chunks.push({ from: dayDate(start), to: dayDate(Math.min(end, start + DATACUBE_MAX_DAYS - 1)) });
  }
  return last > end ? { chunks, skippedFrom: dayDate(Math.max(first, todayDay)) } : { chunks };
}

function requestDay(date: string, name: string): number {
  const day = dateDay(date);
  if (day === undefined) throw new WxsyncError(ErrorCode.UsageInvalid, `datacube ${name} must be a YYYY-MM-DD date, got ${JSON.stringify(date)}`);
  return day;
}

/** Follows and unfollows of one user_source on one day. */
export interface SourceFigures {
  readonly new: number;
  readonly cancel: number;
}

/**
 * One day of getusersummary. A day WeChat sent no row for is not ready (yesterday before 08:00), which is
 * not the same as a day without follows: WeChat sends a zero row for that.
 */
export type UserSummaryDay =
  | {
    readonly day: string;
    readonly ready: true;
    readonly newUsers: number;
    readonly cancelUsers: number;
    /** By user_source code; codes wxsync does not know are kept as they came. */
    readonly bySource: Readonly<Record<number, SourceFigures>>;
  }
  | { readonly day: string; readonly ready: false };

export type UserCumulateDay =
  | { readonly day: string; readonly ready: true; readonly cumulate: number }
  | { readonly day: string; readonly ready: false };

export interface DatacubeDays<T> {
  /** Every day asked for up to yesterday, in order. */
  readonly days: readonly T[];
  /** As in DatacubePlan: the first day asked for that was not fetched because it is today or later. */
  readonly skippedFrom?: string;
}

type ReadyDay<T> = Extract<T, { ready: true }>;

/** getusersummary for one call's range: per day, the sum over its rows (one per user_source, maybe more). */
export function parseUserSummary(json: JsonObject, range: DayRange): Map<string, ReadyDay<UserSummaryDay>> {
  const api = USER_SUMMARY_API;
  const totals = new Map<string, { newUsers: number; cancelUsers: number; bySource: Record<number, { new: number; cancel: number }> }>();
  for (const [i, row] of rowsOf(json, api).entries()) {
    const day = refDate(row, range, api, i);
    const source = integer(row, 'user_source', MAX_USER_SOURCE, api, i);
    const added = integer(row, 'new_user', MAX_FIGURE, api, i);
    const cancelled = integer(row, 'cancel_user', MAX_FIGURE, api, i);
    let total = totals.get(day);
    if (total === undefined) {
      total = { newUsers: 0, cancelUsers: 0, bySource: {} };
      totals.set(day, total);
    }
    total.newUsers += added;
    total.cancelUsers += cancelled;
    const figures = total.bySource[source] ?? { new: 0, cancel: 0 };
    figures.new += added;
    figures.cancel += cancelled;
    total.bySource[source] = figures;
  }
  return new Map([...totals].map(([day, total]) => [day, { day, ready: true, ...total }]));
}

/** getusercumulate for one call's range. A stray user_source is ignored (§11); two different figures for a day are refused. */
export function parseUserCumulate(json: JsonObject, range: DayRange): Map<string, ReadyDay<UserCumulateDay>> {
  const api = USER_CUMULATE_API;
  const days = new Map<string, ReadyDay<UserCumulateDay>>();
  for (const [i, row] of rowsOf(json, api).entries()) {
    const day = refDate(row, range, api, i);
    const cumulate = integer(row, 'cumulate_user', MAX_FIGURE, api, i);
    const seen = days.get(day);
    if (seen !== undefined && seen.cumulate !== cumulate) {
      throw badAnswer(api, `list gives ${day} two follower counts, ${seen.cumulate} and ${cumulate}`);
    }
    days.set(day, { day, ready: true, cumulate });
  }
  return days;
}

function rowsOf(json: JsonObject, api: string): JsonObject[] {
  const list = json['list'];
  if (!Array.isArray(list)) throw badAnswer(api, 'list is missing or not an array');
  if (list.length > MAX_DATACUBE_ROWS) throw badAnswer(api, `list holds ${list.length} rows, more than the ${MAX_DATACUBE_ROWS} a 7-day answer can`);
  return (list as unknown[]).map((row, i) => {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw badAnswer(api, `list[${i}] is not an object`);
    return row as JsonObject;
  });
}

function refDate(row: JsonObject, range: DayRange, api: string, i: number): string {
  const value = row['ref_date'];
  if (typeof value !== 'string' || dateDay(value) === undefined) throw badAnswer(api, `list[${i}].ref_date is not a YYYY-MM-DD date`);
  // Same-shaped dates compare as strings in day order.
  if (value < range.from || value > range.to) throw badAnswer(api, `list[${i}].ref_date ${value} is outside the range asked, ${range.from}..${range.to}`);
  return value;
}

function integer(row: JsonObject, key: string, max: number, api: string, i: number): number {
  const value = row[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw badAnswer(api, `list[${i}].${key} is not an integer from 0 to ${max}`);
  }
  return value;
}

/** What the fetchers need of a WechatClient: its token, retries and error mapping, for one datacube call. */
export interface DatacubeSource {
  readonly appid: string;
  datacube(api: string, beginDate: string, endDate: string): Promise<JsonObject>;
}

export interface DatacubeOptions {
  /** Milliseconds since the epoch: decides which day is today. */
  readonly now?: () => number;
}

/** getusersummary for every day of `from`..`to` up to yesterday: one call per 7 days, one after another. */
export function fetchUserSummary(source: DatacubeSource, from: string, to: string, options: DatacubeOptions = {}): Promise<DatacubeDays<UserSummaryDay>> {
  return fetchDays(source, USER_SUMMARY_API, from, to, options, parseUserSummary);
}

/** getusercumulate for every day of `from`..`to` up to yesterday. */
export function fetchUserCumulate(source: DatacubeSource, from: string, to: string, options: DatacubeOptions = {}): Promise<DatacubeDays<UserCumulateDay>> {
  return fetchDays(source, USER_CUMULATE_API, from, to, options, parseUserCumulate);
}

async function fetchDays<T extends { readonly day: string }>(
  source: DatacubeSource,
  api: string,
  from: string,
  to: string,
  options: DatacubeOptions,
  parse: (json: JsonObject, range: DayRange) => ReadonlyMap<string, T>,
): Promise<DatacubeDays<T | { readonly day: string; readonly ready: false }>> {
  const now = options.now ?? Date.now;
  const plan = datacubeChunks(from, to, dayDate(beijingDay(Math.floor(now() / 1000))));
  const days: (T | { readonly day: string; readonly ready: false })[] = [];
  for (const chunk of plan.chunks) {
    const found = parse(await call(source, api, chunk), chunk);
    for (let day = dateDay(chunk.from) ?? 0; day <= (dateDay(chunk.to) ?? 0); day += 1) {
      const date = dayDate(day);
      days.push(found.get(date) ?? { day: date, ready: false });
    }
  }
  return plan.skippedFrom === undefined ? { days } : { days, skippedFrom: plan.skippedFrom };
}

async function call(source: DatacubeSource, api: string, range: DayRange): Promise<JsonObject> {
  try {
    return await source.datacube(api, range.from, range.to);
  } catch (error) {
    // 48001 here is no passing refusal: WeChat gives user analysis to verified accounts only (§11).
    if (isWxsyncError(error) && error.details['errcode'] === 48001) {
      throw new WxsyncError(
        ErrorCode.WechatAccountUnverified,
        `${source.appid} is not a verified account, so WeChat offers it no datacube figures (${api} answered 48001)`,
        { cause: error, details: { ...error.details, appid: source.appid } },
      );
    }
    throw error;
  }
}
