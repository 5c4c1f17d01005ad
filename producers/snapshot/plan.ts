/**
 * The snapshot producer's decisions, free of I/O: how many user/get calls a crawl needs, whether a
 * checkpoint is resumed or abandoned, and what the `end` record says about an outcome.
 */
import { MAX_PAGE_OPENIDS, SNAPSHOT_VERSION, type SnapshotEnd } from '../../lib/contracts/snapshot.ts';

/** What survives a crash: enough to continue the same snapshot at the next page. */
export interface Checkpoint {
  readonly appid: string;
  readonly snapshotId: string;
  readonly startedAt: number;
  /** Number of the next page to fetch = pages already published. */
  readonly page: number;
  /** The next_openid to send for that page. */
  readonly cursor: string;
  /** Openids published so far. */
  readonly openids: number;
  /** The `total` of the last page published (0 before the first). */
  readonly total: number;
  readonly updatedAt: number;
}

/** user/get calls of one account on one quota day. */
export interface CallLedger {
  readonly day: string;
  readonly calls: number;
  /** The follower count the last crawl saw: the estimate for the next one. */
  readonly lastTotal?: number;
}

/**
 * user/get calls a crawl of `total` followers makes from page `fromPage`: one per 10,000 plus WeChat's
 * empty end-of-list answer (§2.1). Total 25,001 → 4 calls.
 */
export function neededCalls(total: number, fromPage = 0): number {
  return Math.max(1, Math.ceil(total / MAX_PAGE_OPENIDS) + 1 - fromPage);
}

// WeChat's daily quotas reset at midnight Beijing time (UTC+8, no daylight saving).
const QUOTA_DAY_OFFSET_MS = 8 * 3600 * 1000;

export function quotaDay(nowMs: number): string {
  return new Date(nowMs + QUOTA_DAY_OFFSET_MS).toISOString().slice(0, 10);
}

/** When the quota day of `nowMs` ends: the next midnight Beijing time, epoch ms. */
export function quotaResetAt(nowMs: number): number {
  const day = 24 * 3600 * 1000;
  return (Math.floor((nowMs + QUOTA_DAY_OFFSET_MS) / day) + 1) * day - QUOTA_DAY_OFFSET_MS;
}

/** Today's ledger: yesterday's calls no longer count, the follower estimate carries over. */
export function ledgerFor(ledger: CallLedger | undefined, nowMs: number): CallLedger {
  const day = quotaDay(nowMs);
  if (ledger === undefined) return { day, calls: 0 };
  if (ledger.day === day) return ledger;
  return { day, calls: 0, ...(ledger.lastTotal === undefined ? {} : { lastTotal: ledger.lastTotal }) };
}

export type QuotaDecision = { readonly ok: true; readonly needed: number } | { readonly ok: false; readonly needed: number; readonly message: string };

/**
 * Refuses a crawl that cannot finish on what is left today: a snapshot stopped by 45009 half-way is
 * useless for reconciliation and has burnt the calls anyway. `remaining` undefined = nothing known.
 */
export function quotaDecision(appid: string, total: number | undefined, fromPage: number, remaining: number | undefined): QuotaDecision {
  const needed = neededCalls(total ?? 0, fromPage);
  if (remaining === undefined || total === undefined || remaining >= needed) return { ok: true, needed };
  return {
    ok: false,
    needed,
    message: `snapshot of ${appid} refused: ~${total} followers need ${needed} user/get calls from page ${fromPage}, ` +
      `only ${remaining} left today (quota resets at 00:00 Beijing time)`,
  };
}

/** The quota left for user/get: WeChat's own figure when it gives one, else the configured limit minus our count. */
export function remainingCalls(ledger: CallLedger, dailyQuota: number, reported: number | undefined): number {
  return reported ?? Math.max(0, dailyQuota - ledger.calls);
}

export type StartDecision =
  | { readonly kind: 'fresh' }
  | { readonly kind: 'resume'; readonly checkpoint: Checkpoint }
  | { readonly kind: 'abandon'; readonly checkpoint: Checkpoint; readonly reason: string };

/** A checkpoint is resumed while its cursor is young enough to be honoured (§2.2: cursors are short-lived). */
export function startDecision(checkpoint: Checkpoint | undefined, nowMs: number, resumeMaxAgeMs: number): StartDecision {
  if (checkpoint === undefined) return { kind: 'fresh' };
  const age = nowMs - checkpoint.updatedAt;
  if (age <= resumeMaxAgeMs) return { kind: 'resume', checkpoint };
  return { kind: 'abandon', checkpoint, reason: `abandoned: the run stopped at page ${checkpoint.page} and its checkpoint is ${Math.round(age / 1000)} s old` };
}

export function newSnapshotId(appid: string, nowMs: number, random: () => number = Math.random): string {
  const stamp = new Date(nowMs).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const suffix = Math.floor(random() * 0x1_0000_0000).toString(16).padStart(8, '0');
  return `${appid}-${stamp}-${suffix}`;
}

export function initialCheckpoint(appid: string, snapshotId: string, startedAt: number): Checkpoint {
  return { appid, snapshotId, startedAt, page: 0, cursor: '', openids: 0, total: 0, updatedAt: startedAt };
}

/** The checkpoint after page `page` (with `count` openids) is published. */
export function advance(checkpoint: Checkpoint, page: { readonly page: number; readonly nextOpenid: string; readonly total: number; readonly count: number }, nowMs: number): Checkpoint {
  return {
    ...checkpoint,
    page: page.page + 1,
    cursor: page.nextOpenid,
    openids: checkpoint.openids + page.count,
    total: page.total,
    updatedAt: nowMs,
  };
}

/** How a crawl ended: `reason` undefined only after the pager's clean terminal page. */
export interface Outcome {
  readonly complete: boolean;
  readonly reason?: string;
}

export function endRecord(checkpoint: Checkpoint, outcome: Outcome, endedAt: number): SnapshotEnd {
  // A snapshot with a reason is never complete, whatever the caller claims.
  const complete = outcome.complete && outcome.reason === undefined;
  return {
    v: SNAPSHOT_VERSION,
    kind: 'end',
    appid: checkpoint.appid,
    snapshotId: checkpoint.snapshotId,
    complete,
    ...(outcome.reason === undefined ? {} : { reason: outcome.reason.slice(0, 1024) }),
    pages: checkpoint.page,
    openids: checkpoint.openids,
    total: checkpoint.total,
    startedAt: checkpoint.startedAt,
    endedAt,
  };
}
