import type { SimAccount } from './account.ts';
import type { PushOutcome } from './ledger.ts';
import type { ChurnEvent, Scene } from './population.ts';
import { callbackUrl, type Delivery, type PushJob } from './push.ts';
import type { SimState } from './state.ts';

/**
 * Follows and unfollows: the truth changes first (and the ledger records it), then the matching pushes go
 * out (subject to the account's drop and duplicate rates), as on WeChat, where the event exists before its
 * delivery; the ledger then learns each push's outcome.
 */

export const MAX_CHURN_EVENTS = 100_000;

export interface ChurnRequest {
  readonly subscribe: number;
  readonly unsubscribe: number;
  /** Share of subscribes through a parametrised QR code (default 0.4). */
  readonly qrRate?: number;
  /** Share of subscribes that bring back a former follower (default 0.2). */
  readonly resubscribeRate?: number;
  /** Every subscribe of the request comes through this subscribe_scene (default: drawn at random). */
  readonly scene?: Scene;
  /** Every subscribe comes through the QR code with this qr_scene_str (so the scene is ADD_SCENE_QR_CODE). */
  readonly qrScene?: string;
  /** Override the account's push faults for this request only. */
  readonly dropRate?: number;
  readonly dupRate?: number;
  /** These followers leave, before the random events. */
  readonly unsubscribeOpenids?: readonly string[];
  /** These former followers come back, before the random events. */
  readonly resubscribeOpenids?: readonly string[];
}

/** The request cannot apply to the account as it is now (e.g. more unfollows than followers). */
export class ChurnRejected extends Error {}

export interface ChurnEventReport {
  readonly openid: string;
  readonly type: 'subscribe' | 'unsubscribe';
  readonly createTime: number;
  readonly resubscribe: boolean;
  readonly scene?: string;
  readonly eventKey?: string;
  readonly ticket?: string;
  /** Whether a push was attempted at all (false without a callback URL). */
  readonly pushed: boolean;
  readonly dropped: boolean;
  readonly duplicated: boolean;
  /** Successful deliveries: 2 for a duplicated push. */
  readonly deliveries: number;
  readonly attempts: number;
  /** Requests repeated after a failed one. */
  readonly retries: number;
  readonly status?: number;
  readonly error?: string;
}

export interface ChurnSummary {
  readonly appid: string;
  readonly followers: number;
  readonly subscribed: number;
  readonly unsubscribed: number;
  readonly resubscribed: number;
  readonly dropped: number;
  readonly duplicated: number;
  /** Pushes neither dropped nor delivered: the callback endpoint failed all attempts. */
  readonly failed: number;
  /** Pushes WeChat sent more than once because a delivery failed (delivered in the end or not). */
  readonly retried: number;
  readonly events: readonly ChurnEventReport[];
}

export async function churn(state: SimState, account: SimAccount, request: ChurnRequest): Promise<ChurnSummary> {
  const population = account.population;
  const leaving = resolve(account, request.unsubscribeOpenids ?? [], true);
  const returning = resolve(account, request.resubscribeOpenids ?? [], false);
  if (request.unsubscribe + leaving.length > population.followerCount) {
    throw new ChurnRejected(`cannot unsubscribe ${request.unsubscribe + leaving.length}: the account has ${population.followerCount} followers`);
  }
  const now = state.clock.nowSeconds();
  const rng = account.churnRng;
  const choice = { qrRate: request.qrRate ?? 0.4, resubscribeRate: request.resubscribeRate ?? 0.2, scene: request.scene, qrScene: request.qrScene };
  const events: ChurnEvent[] = [];
  for (const index of leaving) events.push(population.unsubscribe(rng, now, index) as ChurnEvent);
  for (const index of returning) events.push(population.subscribe(rng, now, choice, index));
  let subscribes = request.subscribe;
  let unsubscribes = request.unsubscribe;
  // Interleaved at random, so a user can follow and leave within one request, as within one second on WeChat.
  while (subscribes + unsubscribes > 0) {
    if (rng.below(subscribes + unsubscribes) < subscribes) {
      subscribes -= 1;
      events.push(population.subscribe(rng, now, choice));
    } else {
      unsubscribes -= 1;
      const event = population.unsubscribe(rng, now);
      if (event !== undefined) events.push(event);
    }
  }

  const base = state.callback.base;
  const ledger = account.ledger;
  const seqs = events.map((event) => ledger.record(event, base === undefined ? 'not-pushed' : 'pending'));
  const faults = account.limits.faults;
  const dropRate = request.dropRate ?? faults.dropRate;
  const dupRate = request.dupRate ?? faults.dupRate;
  let deliveries: readonly (Delivery | undefined)[] = events.map(() => undefined);
  if (base !== undefined) {
    const target = {
      url: callbackUrl(base, account.appid),
      mode: state.callback.mode,
      appid: account.appid,
      token: account.credentials.token,
      aesKey: account.aesKey,
      originalId: account.credentials.originalId,
    };
    const jobs: PushJob[] = events.map((event) => ({
      target,
      event,
      drop: account.pushRng.chance(dropRate),
      duplicate: account.pushRng.chance(dupRate),
    }));
    deliveries = await state.pusher.deliverAll(jobs);
  }

  const counters = account.pushes;
  const reports = events.map((event, i): ChurnEventReport => {
    const delivery = deliveries[i];
    const duplicated = delivery !== undefined && delivery.deliveries > 1;
    const outcome = pushOutcome(delivery);
    ledger.settle(seqs[i] ?? 0, outcome);
    if (delivery !== undefined && outcome !== 'not-pushed') {
      counters.events += 1;
      counters.attempts += delivery.attempts;
      counters[outcome] += 1;
      if (duplicated) counters.duplicated += 1;
    }
    return {
      openid: event.openid,
      type: event.type,
      createTime: event.createTime,
      resubscribe: event.resubscribe,
      ...(event.scene === undefined ? {} : { scene: event.scene }),
      ...(event.eventKey === undefined ? {} : { eventKey: event.eventKey }),
      ...(event.ticket === undefined ? {} : { ticket: event.ticket }),
      pushed: delivery !== undefined,
      dropped: delivery?.dropped ?? false,
      duplicated,
      deliveries: delivery?.deliveries ?? 0,
      attempts: delivery?.attempts ?? 0,
      retries: delivery?.retries ?? 0,
      ...(delivery?.status === undefined ? {} : { status: delivery.status }),
      ...(delivery?.error === undefined ? {} : { error: delivery.error }),
    };
  });
  return {
    appid: account.appid,
    followers: population.followerCount,
    subscribed: reports.filter((r) => r.type === 'subscribe').length,
    unsubscribed: reports.filter((r) => r.type === 'unsubscribe').length,
    resubscribed: reports.filter((r) => r.resubscribe).length,
    dropped: reports.filter((r) => r.dropped).length,
    duplicated: reports.filter((r) => r.duplicated).length,
    failed: reports.filter((r) => r.pushed && !r.dropped && r.deliveries === 0).length,
    retried: reports.filter((r) => r.retries > 0).length,
    events: reports,
  };
}

function pushOutcome(delivery: Delivery | undefined): Exclude<PushOutcome, 'pending'> {
  if (delivery === undefined) return 'not-pushed';
  if (delivery.dropped) return 'dropped';
  return delivery.deliveries === 0 ? 'failed' : 'delivered';
}

/** The users named by openid, checked to be followers (or former followers) of the account, each once. */
function resolve(account: SimAccount, openids: readonly string[], following: boolean): number[] {
  const indices = new Set<number>();
  for (const openid of openids) {
    const index = account.population.indexOf(openid);
    if (index === undefined) throw new ChurnRejected(`${JSON.stringify(openid)} is not an openid of ${account.appid}`);
    if (account.population.isFollowing(index) !== following) {
      throw new ChurnRejected(`${openid} ${following ? 'does not follow' : 'already follows'} ${account.appid}`);
    }
    if (indices.has(index)) throw new ChurnRejected(`${openid} is named twice`);
    indices.add(index);
  }
  return [...indices];
}
