/**
 * The reconcile job's decisions, free of I/O: whether a snapshot may be reconciled at all, whether the
 * stale set is plausible, and which confirmed differences become which correction records.
 */
import { correctionEventId } from '../../lib/contracts/event-id.ts';
import type { CorrectionRule, UserEvent, UserEventType } from '../../lib/contracts/user-event.ts';
import { MAX_MS, MIN_MS, compact } from '../../lib/contracts/fields.ts';
import type { WechatUserProfile } from '../../lib/wechat/client.ts';

export interface SnapshotFacts {
  readonly appid: string;
  readonly snapshotId: string;
  readonly complete: boolean;
  readonly loaded: boolean;
  /** Why the snapshot ended incomplete, from its `end` record. */
  readonly reason: string;
  /** T0: taken before the first user/get call, epoch ms. */
  readonly startedAt: number;
  /** T1: after the last page, epoch ms. */
  readonly endedAt: number;
  /** WeChat's follower count as the snapshot's last page reported it. */
  readonly total: number;
  /** Distinct openids loaded for the snapshot. */
  readonly openids: number;
  /** Events the store holds from T0 − δ to T1 + δ: the churn seen while the snapshot paged. */
  readonly windowEvents: number;
}

/** ⚑ Never reconcile from an incomplete snapshot; a distinct count off `total` by more than the churn seen counts as incomplete. */
export function snapshotRefusal(facts: SnapshotFacts): string | undefined {
  const name = `snapshot ${facts.snapshotId} of ${facts.appid}`;
  if (!facts.complete) return `${name} is incomplete (${facts.reason === '' ? 'it has no end record' : facts.reason}); an incomplete snapshot never produces corrections`;
  if (!facts.loaded) return `${name} is not fully loaded into the store yet`;
  const gap = Math.abs(facts.openids - facts.total);
  if (gap > facts.windowEvents) {
    return `${name} holds ${facts.openids} distinct openids but WeChat reported ${facts.total} followers: a gap of ${gap}, more than the ${facts.windowEvents} events seen while it ran, so it is treated as incomplete`;
  }
  return undefined;
}

/** Refuses a stale set too large to be missed unfollows: more likely a broken snapshot or store than a mass exodus. */
export function staleShareRefusal(stale: number, followers: number, maxShare: number): string | undefined {
  if (stale === 0 || stale <= followers * maxShare) return undefined;
  const share = followers === 0 ? '∞' : `${(100 * stale / followers).toFixed(2)}%`;
  return `the stale set (${stale} followers to unsubscribe) is ${share} of the snapshot's ${followers} followers, above the limit of ${(100 * maxShare).toFixed(2)}% (WXSYNC_RECONCILE_MAX_STALE_SHARE); refusing to unsubscribe en masse, nothing was emitted`;
}

export interface CorrectionBasis {
  readonly appid: string;
  readonly snapshotId: string;
  /** T0: the time an unfollow correction takes, and a follow's when WeChat gives no usable subscribe_time. */
  readonly startedAt: number;
  readonly receivedAt: number;
}

/** One difference (or window user) to confirm, as the store saw it when the run compared. */
export interface Candidate {
  /** `live`: a user with an event in the window on whom the snapshot and the store agree. */
  readonly rule: CorrectionRule;
  readonly openid: string;
  /** The user has an event at or after T0 − δ: newer than the snapshot, so only a live answer may correct it. */
  readonly inWindow: boolean;
  /** The user's newest event order in the store (eventOrder), 0 when the store has none. */
  readonly storeOrd: bigint;
}

/** The bits of `ord` below `at` (consumers/clickhouse/route.ts eventOrder); bit 0 is the type, 1 = unsubscribe. */
const ORD_AT_SHIFT = 22n;

export interface StoreView {
  readonly following: boolean;
  /** `at` of the user's newest event, undefined when the store has none. */
  readonly lastAt: number | undefined;
}

/** What the store holds for a user, read off its newest event order alone. */
export function storeView(ord: bigint): StoreView {
  if (ord === 0n) return { following: false, lastAt: undefined };
  return { following: (ord & 1n) === 0n, lastAt: Number(ord >> ORD_AT_SHIFT) };
}

export type Outcome =
  | { readonly kind: 'emit'; readonly event: UserEvent; readonly fallbackTime: boolean }
  /** WeChat's answer matches the store: nothing to correct (for a snapshot difference: batchget did not confirm it). */
  | { readonly kind: 'agree' }
  /** The answer contradicts the store but cannot be ordered after the store's newest event: left alone, counted. */
  | { readonly kind: 'skip'; readonly why: string };

const MAX_SCENE = 128;

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

/** A time the event contract accepts, or undefined. */
function usableTime(ms: number | undefined): number | undefined {
  return ms !== undefined && Number.isInteger(ms) && ms >= MIN_MS && ms <= MAX_MS ? ms : undefined;
}

/** The whole second before `now`: a push WeChat stamps after this moment can never carry an earlier CreateTime. */
export function confirmationTime(now: number): number {
  return Math.floor(now / 1000) * 1000 - 1000;
}

/**
 * What one confirmed candidate becomes. `profile` is batchget's answer, asked at `confirmedAt` or later
 * (confirmationTime, taken before the call).
 * - Outside the window (the snapshot decides): missing users WeChat still counts as followers get a `subscribe`
 *   at their real subscribe_time (T0 when it is absent or outside the contract, flagged), stale users it confirms
 *   gone get an `unsubscribe` at T0.
 * - Inside the window (the snapshot cannot decide): the live answer against the store's newest event. A follower
 *   the store has as gone gets a `subscribe` at the subscribe_time WeChat gives; a user the store has as
 *   following whom WeChat reports gone gets an `unsubscribe` at `confirmedAt`.
 * ⚑ Either way a correction is emitted only when its `at` is later than the store's newest event, so it outranks
 * that event and every earlier one; a later real event still outranks it (and wins a tie: corrections rank below
 * callbacks at the same `at`). Anything that cannot be ordered so is skipped and counted.
 */
export function decide(basis: CorrectionBasis, candidate: Candidate, profile: WechatUserProfile, confirmedAt: number): Outcome {
  const store = storeView(candidate.storeOrd);
  const following = profile.subscribe === 1;
  if (following === store.following) return { kind: 'agree' };
  const rule: CorrectionRule = candidate.inWindow ? 'live' : candidate.rule;
  let at: number;
  let fallbackTime = false;
  if (following) {
    const subscribed = usableTime(profile.subscribeTime);
    if (subscribed === undefined && candidate.inWindow) return { kind: 'skip', why: 'WeChat gave no usable subscribe_time' };
    fallbackTime = subscribed === undefined;
    at = subscribed ?? basis.startedAt;
  } else {
    at = candidate.inWindow ? confirmedAt : basis.startedAt;
  }
  if (store.lastAt !== undefined && at <= store.lastAt) return { kind: 'skip', why: 'not later than the store\'s newest event' };
  if (!following) return { kind: 'emit', event: correction(basis, candidate.openid, 'unsubscribe', rule, at), fallbackTime };
  const qrScene = nonEmpty(profile.qrSceneStr) ?? (profile.qrScene === undefined || profile.qrScene === 0 ? undefined : String(profile.qrScene));
  return { kind: 'emit', event: correction(basis, candidate.openid, 'subscribe', rule, at, nonEmpty(profile.subscribeScene), qrScene), fallbackTime };
}

function correction(basis: CorrectionBasis, openid: string, type: UserEventType, rule: CorrectionRule, at: number, scene?: string, qrScene?: string): UserEvent {
  return compact<UserEvent>({
    v: 1,
    id: correctionEventId(basis.snapshotId, openid, type),
    appid: basis.appid,
    openid,
    type,
    at,
    source: 'correction',
    scene: scene?.slice(0, MAX_SCENE),
    qrScene: qrScene?.slice(0, MAX_SCENE),
    receivedAt: basis.receivedAt,
    correction: { snapshotId: basis.snapshotId, rule },
  });
}
