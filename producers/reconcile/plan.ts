/**
 * The reconcile job's decisions, free of I/O: whether a snapshot may be reconciled at all, whether the
 * stale set is plausible, and which confirmed differences become which correction records.
 */
import { correctionEventId } from '../../lib/contracts/event-id.ts';
import type { CorrectionRule, UserEvent, UserEventType } from '../../lib/contracts/user-event.ts';
import { compact } from '../../lib/contracts/fields.ts';
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
  /** T0: the time an unfollow correction takes, and a follow's when WeChat gives no subscribe_time. */
  readonly startedAt: number;
  readonly receivedAt: number;
}

export interface Decided {
  readonly events: readonly UserEvent[];
  /** Openids batchget did not confirm (they changed since the snapshot): no correction. */
  readonly unconfirmed: readonly string[];
}

const MAX_SCENE = 128;

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
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

/** missing → `subscribe` at the user's real subscribe_time, for those batchget says still follow. */
export function missingCorrections(basis: CorrectionBasis, profiles: readonly WechatUserProfile[]): Decided {
  const events: UserEvent[] = [];
  const unconfirmed: string[] = [];
  for (const profile of profiles) {
    if (profile.subscribe !== 1) {
      unconfirmed.push(profile.openid);
      continue;
    }
    const qrScene = nonEmpty(profile.qrSceneStr) ?? (profile.qrScene === undefined || profile.qrScene === 0 ? undefined : String(profile.qrScene));
    events.push(correction(basis, profile.openid, 'subscribe', 'missing', profile.subscribeTime ?? basis.startedAt, nonEmpty(profile.subscribeScene), qrScene));
  }
  return { events, unconfirmed };
}

/** stale → `unsubscribe` at T0, only for those batchget confirms no longer follow. */
export function staleCorrections(basis: CorrectionBasis, profiles: readonly WechatUserProfile[]): Decided {
  const events: UserEvent[] = [];
  const unconfirmed: string[] = [];
  for (const profile of profiles) {
    if (profile.subscribe === 0) events.push(correction(basis, profile.openid, 'unsubscribe', 'stale', basis.startedAt));
    else unconfirmed.push(profile.openid);
  }
  return { events, unconfirmed };
}
