/**
 * The period a report covers and its time buckets, in the operator's time zone. Pure: reports and their tests
 * share it, and every bucket of the range is listed, so a period without events shows as zeros, not as a gap.
 */
import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import { checkTimeZone } from '../lib/time-zone.ts';

export const GRANULARITIES = ['hour', 'day', 'week', 'month'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

/** A range longer than this is a typo, not a question: ten years. */
export const MAX_RANGE_DAYS = 3660;
/** Hourly buckets for longer than this would print tens of thousands of rows. */
export const MAX_HOURLY_DAYS = 31;
const MIN_DATE = '2000-01-01';
const DAY_MS = 86_400_000;

export interface RangeInput {
  readonly from?: string | undefined;
  readonly to?: string | undefined;
  readonly days?: string | undefined;
  readonly by?: string | undefined;
  readonly tz: string;
}

export interface Bucket {
  /** `YYYY-MM-DD` (day, and the Monday of a week, the 1st of a month) or `YYYY-MM-DD HH:00` (hour), local. */
  readonly label: string;
}

export interface ReportRange {
  /** First and last local day covered, inclusive. */
  readonly from: string;
  readonly to: string;
  readonly tz: string;
  readonly by: Granularity;
  /** UTC instants: the local midnight starting `from`, and the one ending `to` (exclusive). */
  readonly startMs: number;
  readonly endMs: number;
  readonly buckets: readonly Bucket[];
}

function usage(message: string): WxsyncError {
  return new WxsyncError(ErrorCode.UsageInvalid, message);
}

/** Days since 1970-01-01 of a real calendar date `YYYY-MM-DD`, or undefined. */
export function dayNumber(date: string): number | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (match === null) return undefined;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const ms = Date.UTC(year, month - 1, day);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day) return undefined;
  return ms / DAY_MS;
}

export function dateOf(dayNo: number): string {
  return new Date(dayNo * DAY_MS).toISOString().slice(0, 10);
}

/** The zone's offset from UTC at an instant, in ms (Beijing: +8 h). */
export function zoneOffsetMs(tz: string, utcMs: number): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  }).formatToParts(new Date(utcMs));
  const part = (type: string): number => Number(parts.find((p) => p.type === type)?.value);
  const local = Date.UTC(part('year'), part('month') - 1, part('day'), part('hour'), part('minute'), part('second'));
  return local - Math.floor(utcMs / 1000) * 1000;
}

/** The UTC instant of local midnight starting a day. */
export function zonedMidnightMs(dayNo: number, tz: string): number {
  const wall = dayNo * DAY_MS;
  const guess = wall - zoneOffsetMs(tz, wall);
  return wall - zoneOffsetMs(tz, guess);
}

/** The local calendar day an instant falls on. */
export function localDay(utcMs: number, tz: string): number {
  return Math.floor((utcMs + zoneOffsetMs(tz, utcMs)) / DAY_MS);
}

function wholeHours(tz: string, ...instants: number[]): boolean {
  return instants.every((ms) => zoneOffsetMs(tz, ms) % 3_600_000 === 0);
}

function integerOption(name: string, text: string, max: number): number {
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1 || Number(text) > max) throw usage(`--${name} must be a whole number from 1 to ${max}, not ${JSON.stringify(text)}`);
  return Number(text);
}

function dateOption(name: string, text: string): number {
  const day = dayNumber(text);
  if (day === undefined) throw usage(`--${name} must be a date YYYY-MM-DD, not ${JSON.stringify(text)}`);
  return day;
}

/**
 * The range a report's options ask for, relative to `nowMs`: `--from`/`--to` (inclusive local dates; `--to`
 * defaults to today), or `--days N` (the N days ending today), default the last 30 days, by day. Refuses what
 * cannot be meant: reversed or empty ranges, dates before 2000 or after today, more than ten years.
 */
export function reportRange(input: RangeInput, nowMs: number): ReportRange {
  const tzProblem = checkTimeZone(input.tz);
  if (tzProblem !== undefined) throw usage(tzProblem);
  const by = input.by ?? 'day';
  if (!(GRANULARITIES as readonly string[]).includes(by)) throw usage(`--by must be one of ${GRANULARITIES.join(', ')}, not ${JSON.stringify(by)}`);
  const today = localDay(nowMs, input.tz);
  let from: number;
  let to: number;
  if (input.days !== undefined) {
    if (input.from !== undefined || input.to !== undefined) throw usage('give either --days or --from/--to, not both');
    to = today;
    from = to - integerOption('days', input.days, MAX_RANGE_DAYS) + 1;
  } else {
    to = input.to === undefined ? today : dateOption('to', input.to);
    from = input.from === undefined ? to - 29 : dateOption('from', input.from);
  }
  if (from > to) throw usage(`--from ${dateOf(from)} is after --to ${dateOf(to)}`);
  if (to > today) throw usage(`--to ${dateOf(to)} is after today (${dateOf(today)} in ${input.tz})`);
  if (from < (dayNumber(MIN_DATE) as number)) throw usage(`--from ${dateOf(from)} is before ${MIN_DATE}`);
  if (to - from + 1 > MAX_RANGE_DAYS) throw usage(`the range covers ${to - from + 1} days, more than ${MAX_RANGE_DAYS}`);
  if (by === 'hour' && to - from + 1 > MAX_HOURLY_DAYS) throw usage(`--by hour covers at most ${MAX_HOURLY_DAYS} days; use --by day`);
  const startMs = zonedMidnightMs(from, input.tz);
  const endMs = zonedMidnightMs(to + 1, input.tz);
  if (!wholeHours(input.tz, startMs, endMs - 1)) throw usage(`time zone ${input.tz} is not a whole number of hours from UTC; reports need one`);
  return { from: dateOf(from), to: dateOf(to), tz: input.tz, by: by as Granularity, startMs, endMs, buckets: bucketsOf(from, to, by as Granularity) };
}

function bucketsOf(from: number, to: number, by: Granularity): Bucket[] {
  const labels: string[] = [];
  for (let day = from; day <= to; day += 1) {
    const date = dateOf(day);
    if (by === 'hour') for (let h = 0; h < 24; h += 1) labels.push(`${date} ${String(h).padStart(2, '0')}:00`);
    else if (by === 'day') labels.push(date);
    else if (by === 'week') labels.push(dateOf(day - ((new Date(day * DAY_MS).getUTCDay() + 6) % 7)));
    else labels.push(`${date.slice(0, 8)}01`);
  }
  return [...new Set(labels)].map((label) => ({ label }));
}
