/**
 * The drift sentinel (issue 15): per account, every few minutes, one user/get call reads WeChat's live follower
 * `total`; once WeChat's retry window has passed and the consumer has loaded everything published up to then,
 * the store's count as of the call is compared with it. A difference beyond the users in flight is drift: it is
 * logged, counted, and a snapshot starts at once through the role's own path (per-account queue, lease, quota
 * rules); when its reconcile is done the sentinel checks again, so the drift gauge returns to 0 once the store
 * equals WeChat, and records what happened. Decisions live in sentinel-plan.ts.
 *
 * Lost follows and unfollows of different users can cancel out in a count: the scheduled snapshot catches those.
 */
import type http from 'node:http';
import { sleep } from '../../lib/backoff.ts';
import type { Config } from '../../lib/config.ts';
import { describeError, ErrorCode, isWxsyncError } from '../../lib/errors.ts';
import { countParam, errorAnswer, routedAccount, sendJson } from '../../lib/http-server.ts';
import type { Logger } from '../../lib/logger.ts';
import type { SnapshotCall } from './main.ts';
import type { StateStore } from './checkpoint.ts';
import type { SnapshotMetrics } from './metrics.ts';
import { ledgerFor, remainingCalls } from './plan.ts';
import { reportedQuota, type SnapshotResult, type SnapshotSource } from './runner.ts';
import { checkInterval, checkWindow, driftDecision, outcomeText, type FollowUp } from './sentinel-plan.ts';
import type { SentinelRow, SentinelStore } from './sentinel-store.ts';

/** Runs `fn` alone among the account's user/get work in this process (snapshots and checks). */
export type AccountExclusive = <T>(appid: string, fn: () => Promise<T>) => Promise<T>;

export interface QuotaFigures {
  readonly remaining: number;
  readonly limit: number;
  readonly lastTotal: number | undefined;
}

export interface QuotaReaderDeps {
  readonly source: (appid: string) => SnapshotSource;
  readonly state: StateStore;
  readonly dailyQuota: number;
  readonly metrics: SnapshotMetrics;
  readonly logger: Logger;
  readonly now: () => number;
}

/** Today's user/get quota of an account, as the snapshot runner reckons it, also set on the quota gauges. */
export function quotaReader(deps: QuotaReaderDeps): (appid: string) => Promise<QuotaFigures> {
  return async (appid) => {
    const ledger = ledgerFor(await deps.state.readLedger(appid), deps.now());
    const reported = await reportedQuota(deps.source(appid), deps.logger, appid);
    const remaining = remainingCalls(ledger, deps.dailyQuota, reported?.remain);
    const limit = reported?.dailyLimit ?? deps.dailyQuota;
    deps.metrics.quota(appid, remaining, limit);
    return { remaining, limit, lastTotal: ledger.lastTotal };
  };
}

export interface SentinelDeps {
  readonly appids: readonly string[];
  readonly settings: Config['sentinel'];
  readonly source: (appid: string) => SnapshotSource;
  readonly state: StateStore;
  readonly exclusive: AccountExclusive;
  readonly quota: (appid: string) => Promise<QuotaFigures>;
  /** A snapshot through the role's path (the process-wide limit, the account's queue and lease, the quota rules). */
  readonly snapshot: (appid: string, call: SnapshotCall) => Promise<SnapshotResult>;
  /** A complete, loaded snapshot of the account that no reconcile has finished yet: its reconcile is the correction. */
  readonly pendingReconcile: (appid: string) => Promise<string | undefined>;
  /** Resolves once the consumer has loaded everything published to the events topic before `notBefore`. */
  readonly loaded: (notBefore: number) => Promise<void>;
  readonly store: SentinelStore;
  readonly metrics: SnapshotMetrics;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly now?: () => number;
  /** How often the follow-up looks for the reconcile of the snapshot it started. */
  readonly followPollMs?: number;
}

type Checked =
  | { readonly result: 'equal' | 'drift'; readonly checkedAt: number; readonly wechatTotal: number; readonly storeCount: number; readonly inFlight: number; readonly drift: number }
  | { readonly result: 'failed'; readonly checkedAt: number; readonly reason: string };

export interface Sentinel {
  /** One round for the account: the quota plan, a check, and on drift the correction and its follow-up. Resolves to the wait before the next. */
  round(appid: string): Promise<number>;
  stop(): Promise<void>;
}

const NO_FIGURES = { wechatTotal: 0, storeCount: 0, inFlight: 0, drift: 0 };

export function createSentinel(deps: SentinelDeps): Sentinel {
  const now = deps.now ?? Date.now;
  const { settings, logger, signal, store, metrics } = deps;
  const skipping = new Set<string>();
  // A function, not the property: TypeScript would keep the narrowing of an earlier check across an await.
  const stopped = (): boolean => signal.aborted;

  const rowOf = (appid: string, checked: Checked, extra: Partial<SentinelRow> = {}): SentinelRow => ({
    appid, checkedAt: checked.checkedAt, result: checked.result, action: '', snapshotId: '', outcome: '',
    ...(checked.result === 'failed' ? { ...NO_FIGURES, reason: checked.reason } : { ...checked, reason: '' }),
    ...extra,
  });

  const check = async (appid: string): Promise<Checked> => {
    let checkedAt = now();
    try {
      const call = await deps.exclusive(appid, async () => {
        // Counted before the call, as the snapshot runner counts its own: a call that fails may still have cost quota.
        const ledger = ledgerFor(await deps.state.readLedger(appid), now());
        await deps.state.writeLedger(appid, { ...ledger, calls: ledger.calls + 1 });
        const sentAt = now();
        const answer = await deps.source(appid).userGet('');
        return { total: answer.total, sentAt, answeredAt: now() };
      });
      checkedAt = call.sentAt;
      // Pushes of events WeChat counted may still be retried for a while, then must be loaded.
      await deps.loaded(call.answeredAt + settings.settleMs);
      const window = checkWindow(call.sentAt, call.answeredAt);
      const figures = { wechatTotal: call.total, ...await store.count(appid, window.beforeMs, window.untilMs) };
      return { checkedAt, ...figures, ...driftDecision(figures) };
    } catch (error) {
      if (signal.aborted) throw error;
      const reason = describeError(error);
      logger.warn({ appid, reason }, 'sentinel check failed; no drift claimed');
      return { result: 'failed', checkedAt, reason };
    }
  };

  /** Counts a check at /metrics; the caller writes its row (on drift, once the action taken is known: correct below). */
  const counted = (appid: string, checked: Checked): void => {
    metrics.checked(appid, checked.result, checked.checkedAt, checked.result === 'failed' ? undefined : checked.drift);
  };

  const follow = async (appid: string, snapshotId: string, drifted: Checked, action: string): Promise<void> => {
    const started = now();
    const deadline = started + settings.followTimeoutMs;
    let reconcile = await store.reconcileOf(appid, snapshotId);
    while (reconcile === undefined && now() < deadline && !signal.aborted) {
      await sleep(deps.followPollMs ?? 2000, signal);
      reconcile = await store.reconcileOf(appid, snapshotId);
    }
    if (signal.aborted) return;
    let recheck: FollowUp['recheck'];
    if (reconcile?.status === 'done') {
      const plan = checkInterval({ nowMs: now(), configuredMs: settings.intervalMs, ...await deps.quota(appid) });
      if (plan.kind === 'check') {
        const again = await check(appid);
        counted(appid, again);
        await store.record(rowOf(appid, again, { action: `check after the reconcile of snapshot ${snapshotId}`, snapshotId }));
        recheck = again.result === 'failed' ? { result: 'failed', reason: again.reason } : { result: again.result, drift: again.drift };
      }
    }
    const outcome = outcomeText({ reconcile, waitedS: Math.round((now() - started) / 1000), recheck });
    logger.info({ appid, snapshotId, outcome }, 'sentinel: the correction of the drift ended');
    await store.record({ ...rowOf(appid, drifted, { action, snapshotId, outcome }), result: 'outcome', checkedAt: now() });
  };

  /** Starts the snapshot that corrects the drift (or follows one waiting for its reconcile), recording what was done. */
  const correct = async (appid: string, drifted: Checked): Promise<void> => {
    let recorded: Promise<void> | undefined;
    const recordOnce = (action: string, snapshotId = ''): Promise<void> => {
      recorded ??= store.record(rowOf(appid, drifted, { action, snapshotId }));
      return recorded;
    };
    const pending = await deps.pendingReconcile(appid);
    if (pending !== undefined) {
      const action = `snapshot ${pending} awaiting its reconcile`;
      await recordOnce(action, pending);
      await follow(appid, pending, drifted, action);
      return;
    }
    let result: SnapshotResult;
    try {
      result = await deps.snapshot(appid, {
        signal,
        // Recorded as soon as the snapshot has published a page: the alert can say what is under way.
        onProgress: (progress) => { recordOnce(`snapshot ${progress.snapshotId} started`, progress.snapshotId).catch(() => undefined); },
      });
    } catch (error) {
      if (signal.aborted) throw error;
      await recordOnce(`snapshot failed: ${describeError(error)}`);
      return;
    }
    switch (result.status) {
      case 'busy':
      case 'refused':
        logger.warn({ appid, reason: result.reason }, 'sentinel: the snapshot that would correct the drift was refused');
        await recordOnce(`snapshot refused: ${result.reason}`);
        return;
      case 'stopped':
        await recordOnce(`snapshot ${result.snapshotId} stopped: ${result.reason}`, result.snapshotId);
        return;
      case 'incomplete':
        await recordOnce(`snapshot ${result.snapshotId} started`, result.snapshotId);
        await store.record({ ...rowOf(appid, drifted, { action: `snapshot ${result.snapshotId} started`, snapshotId: result.snapshotId }), result: 'outcome', checkedAt: now(), outcome: `snapshot ended incomplete: ${result.reason ?? ''}` });
        return;
      case 'complete': {
        const action = `snapshot ${result.snapshotId} started`;
        await recordOnce(action, result.snapshotId);
        await follow(appid, result.snapshotId, drifted, action);
      }
    }
  };

  const round = async (appid: string): Promise<number> => {
    const plan = checkInterval({ nowMs: now(), configuredMs: settings.intervalMs, ...await deps.quota(appid) });
    if (plan.kind === 'skip') {
      metrics.checked(appid, 'skipped', now());
      if (!skipping.has(appid)) logger.warn({ appid, reason: plan.reason }, 'sentinel checks skipped: no spare user/get calls today');
      skipping.add(appid);
      return settings.intervalMs;
    }
    if (skipping.delete(appid)) logger.info({ appid }, 'sentinel checks resumed');
    const checked = await check(appid);
    counted(appid, checked);
    if (checked.result !== 'drift') {
      await store.record(rowOf(appid, checked));
      return plan.intervalMs;
    }
    logger.warn({ appid, wechat: checked.wechatTotal, store: checked.storeCount, drift: checked.drift, inFlight: checked.inFlight }, 'drift: WeChat\'s follower total differs from the store; snapshotting now');
    await correct(appid, checked);
    return plan.intervalMs;
  };

  const loops = settings.intervalMs === 0 ? [] : deps.appids.map(async (appid) => {
    let wait = settings.intervalMs;
    for (;;) {
      await sleep(wait, signal);
      if (signal.aborted) return;
      try {
        wait = await round(appid);
      } catch (error) {
        if (stopped()) return;
        logger.error({ appid, err: error }, 'sentinel round failed');
        wait = settings.intervalMs;
      }
    }
  });

  return {
    round,
    async stop() {
      await Promise.all(loops);
    },
  };
}

/** `GET /api/sentinel/<appid>[?limit=N]`: the account's newest sentinel records (checks and outcomes), newest first. */
export function sentinelRoute(store: SentinelStore, accounts: ReadonlySet<string>): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  return async (req, res) => {
    const routed = routedAccount(req, res, '/api/sentinel/', accounts, 'GET');
    if (routed === undefined) return;
    try {
      sendJson(res, 200, { checks: await store.recent(routed.appid, countParam(routed.query, 'limit', 20, 1000)) });
    } catch (error) {
      sendJson(res, isWxsyncError(error, ErrorCode.UsageInvalid) ? 400 : 500, errorAnswer(error));
    }
  };
}
