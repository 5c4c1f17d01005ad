/**
 * The drift sentinel's decisions, free of I/O: how long to wait before an account's next check so the check
 * never spends user/get calls the day's snapshot needs, which store events are ambiguous against WeChat's
 * count, whether a difference is drift, how overdue the scheduled snapshot is, and the words of the record.
 */
import { neededCalls, quotaResetAt } from './plan.ts';

/**
 * Calls kept back beyond a crawl of the last known size: a page retried after a transient error, or a list that
 * grew past a page boundary since that crawl.
 */
export const RESERVE_MARGIN_CALLS = 2;

export interface IntervalInput {
  readonly nowMs: number;
  /** WXSYNC_SENTINEL_INTERVAL_S: the shortest time between two checks. */
  readonly configuredMs: number;
  /** user/get calls left today (WeChat's figure, or the configured limit minus our count). */
  readonly remaining: number;
  /** Followers the last complete crawl saw; undefined before the first. */
  readonly lastTotal: number | undefined;
}

export type IntervalDecision =
  | { readonly kind: 'check'; readonly intervalMs: number; readonly spare: number }
  | { readonly kind: 'skip'; readonly reason: string };

/**
 * One check costs one call. The calls a snapshot of the last known size needs (plus a margin) are kept for it;
 * the rest are spread evenly over the time left until the quota resets at midnight Beijing time, so the
 * interval is the configured one or longer, never shorter. No spare call: no check until the quota resets.
 * Example: 10 h before the reset, 10 calls left, 25,001 followers (4 calls + 2 kept back): 4 spare, one check
 * every 2.5 h.
 */
export function checkInterval(input: IntervalInput): IntervalDecision {
  const reserve = neededCalls(input.lastTotal ?? 0) + RESERVE_MARGIN_CALLS;
  const spare = input.remaining - reserve;
  if (spare <= 0) {
    return {
      kind: 'skip',
      reason: `only ${input.remaining} user/get calls left today, ${reserve} kept for a snapshot of ~${input.lastTotal ?? 0} followers; next check after the quota resets at 00:00 Beijing time`,
    };
  }
  const untilReset = quotaResetAt(input.nowMs) - input.nowMs;
  return { kind: 'check', intervalMs: Math.max(input.configuredMs, Math.ceil(untilReset / spare)), spare };
}

/**
 * The store events that may or may not be in WeChat's `total`: WeChat's CreateTime counts whole seconds, and
 * WeChat counts at some instant between our sending the call and its answer, so every event dated in a
 * second the call touched is ambiguous. The store is counted as of the window's start.
 */
export function checkWindow(sentAtMs: number, answeredAtMs: number): { readonly beforeMs: number; readonly untilMs: number } {
  return { beforeMs: Math.floor(sentAtMs / 1000) * 1000, untilMs: Math.floor(answeredAtMs / 1000) * 1000 + 999 };
}

export interface Figures {
  readonly wechatTotal: number;
  readonly storeCount: number;
  /** Users with an event inside the check's window. */
  readonly inFlight: number;
}

/** Each user in flight can move the count by one either way; a difference beyond them is drift. */
export function driftDecision(figures: Figures): { readonly result: 'equal' | 'drift'; readonly drift: number } {
  const drift = figures.wechatTotal - figures.storeCount;
  return { result: Math.abs(drift) > figures.inFlight ? 'drift' : 'equal', drift };
}

/**
 * Seconds the scheduled snapshot is overdue: its cron came due at `dueAtMs`, it had `graceMs` to complete, and no
 * snapshot has completed since the due time. 0 with no schedule, within the grace, or once one completed. An
 * account that never had a complete snapshot (a new installation) is overdue only for a due time since
 * `watchingSinceMs`, the role's start: before it nothing was there to take one.
 */
export function overdueSeconds(nowMs: number, dueAtMs: number | undefined, graceMs: number, lastCompleteMs: number | undefined, watchingSinceMs: number): number {
  if (dueAtMs === undefined || (lastCompleteMs !== undefined && lastCompleteMs >= dueAtMs)) return 0;
  if (lastCompleteMs === undefined && dueAtMs < watchingSinceMs) return 0;
  return Math.max(0, Math.floor((nowMs - dueAtMs - graceMs) / 1000));
}

/** What a finished reconcile of the sentinel's snapshot says, and what the check right after it found. */
export interface FollowUp {
  readonly reconcile: { readonly status: string; readonly reason: string; readonly corrections: number } | undefined;
  readonly waitedS: number;
  readonly recheck: { readonly result: 'equal' | 'drift'; readonly drift: number } | { readonly result: 'failed'; readonly reason: string } | undefined;
}

export function outcomeText(followUp: FollowUp): string {
  const { reconcile, recheck } = followUp;
  if (reconcile === undefined) return `no reconcile within ${followUp.waitedS} s`;
  if (reconcile.status !== 'done') return `reconcile ${reconcile.status}: ${reconcile.reason}`;
  const head = `reconciled: ${reconcile.corrections} corrections`;
  if (recheck === undefined) return head;
  if (recheck.result === 'failed') return `${head}; the check after it failed: ${recheck.reason}`;
  return recheck.result === 'equal' ? `${head}; store = WeChat` : `${head}; store ≠ WeChat (drift ${recheck.drift})`;
}
