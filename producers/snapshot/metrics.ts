/**
 * The snapshot role's figures at /metrics: its runs by status, the account's last complete snapshot and how
 * overdue the scheduled one is, the user/get quota, and the drift sentinel's checks. Per account (`appid`).
 */
import { Counter, Gauge, type Registry } from '../../lib/metrics.ts';
import type { Snapshotter } from './main.ts';
import type { SnapshotResult } from './runner.ts';
import { overdueSeconds } from './sentinel-plan.ts';

export type CheckResult = 'equal' | 'drift' | 'skipped' | 'failed';

/** What the store says about an account's snapshots when the role starts. */
export interface SnapshotHistory {
  readonly lastCompleteMs?: number;
  /** The newest ended snapshot was incomplete. */
  readonly lastFailed: boolean;
}

export interface SnapshotMetricsOptions {
  readonly registry: Registry;
  /** Per account, when its cron last came due (undefined: no schedule, or none within the lookback). */
  readonly dueAt: (appid: string, nowMs: number) => number | undefined;
  readonly overdueGraceMs: number;
  readonly now?: () => number;
}

export class SnapshotMetrics {
  private readonly runs: Counter<'appid' | 'status'>;
  private readonly lastComplete: Gauge<'appid'>;
  private readonly lastFailed: Gauge<'appid'>;
  private readonly quotaRemaining: Gauge<'appid'>;
  private readonly quotaLimit: Gauge<'appid'>;
  private readonly checks: Counter<'appid' | 'result'>;
  private readonly drift: Gauge<'appid'>;
  private readonly lastCheck: Gauge<'appid'>;
  private readonly completeAt = new Map<string, number>();

  constructor(appids: readonly string[], options: SnapshotMetricsOptions) {
    const registers = [options.registry];
    const now = options.now ?? Date.now;
    this.runs = new Counter({ name: 'wxsync_snapshot_runs_total', help: 'Snapshot runs by status (complete, incomplete, refused: by quota or a run holding the lease, failed)', labelNames: ['appid', 'status'], registers });
    this.lastComplete = new Gauge({ name: 'wxsync_snapshot_last_complete_timestamp_seconds', help: 'When the account\'s last complete snapshot ended', labelNames: ['appid'], registers });
    this.lastFailed = new Gauge({ name: 'wxsync_snapshot_last_failed', help: '1 while the account\'s newest snapshot run failed or ended incomplete, else 0', labelNames: ['appid'], registers });
    const completeAt = this.completeAt;
    const startedAt = now();
    // Computed when scraped: it grows with the clock, not with events.
    new Gauge({
      name: 'wxsync_snapshot_overdue_seconds',
      help: 'Seconds since the scheduled snapshot should have completed (cron due time + WXSYNC_SNAPSHOT_OVERDUE_S) without a complete one; 0 otherwise',
      labelNames: ['appid'],
      registers,
      collect() {
        const at = now();
        for (const appid of appids) this.set({ appid }, overdueSeconds(at, options.dueAt(appid, at), options.overdueGraceMs, completeAt.get(appid), startedAt));
      },
    });
    this.quotaRemaining = new Gauge({ name: 'wxsync_userget_quota_remaining', help: 'user/get calls left today (WeChat\'s figure when quota/get answers, else the limit minus wxsync\'s count)', labelNames: ['appid'], registers });
    this.quotaLimit = new Gauge({ name: 'wxsync_userget_quota_limit', help: 'user/get calls allowed a day', labelNames: ['appid'], registers });
    this.checks = new Counter({ name: 'wxsync_sentinel_checks_total', help: 'Drift sentinel checks by result (equal, drift, skipped: no spare quota, failed)', labelNames: ['appid', 'result'], registers });
    this.drift = new Gauge({ name: 'wxsync_sentinel_drift_followers', help: 'WeChat\'s follower total minus the store\'s count at the last check that found drift; 0 once a check finds them equal', labelNames: ['appid'], registers });
    this.lastCheck = new Gauge({ name: 'wxsync_sentinel_last_check_timestamp_seconds', help: 'When the sentinel last compared WeChat\'s follower total with the store', labelNames: ['appid'], registers });
    for (const appid of appids) {
      for (const status of ['complete', 'incomplete', 'refused', 'failed']) this.runs.inc({ appid, status }, 0);
      for (const result of ['equal', 'drift', 'skipped', 'failed']) this.checks.inc({ appid, result }, 0);
      this.lastFailed.set({ appid }, 0);
      this.drift.set({ appid }, 0);
    }
  }

  /** The store's account of snapshots before this process ran any. */
  restore(appid: string, history: SnapshotHistory): void {
    if (history.lastCompleteMs !== undefined) this.complete(appid, history.lastCompleteMs);
    this.lastFailed.set({ appid }, history.lastFailed ? 1 : 0);
  }

  /** Counts a run by how it ended; a run stopped by a shutdown resumes later and is not counted. */
  ran(appid: string, result: SnapshotResult | undefined, nowMs: number): void {
    if (result === undefined) {
      this.runs.inc({ appid, status: 'failed' });
      this.lastFailed.set({ appid }, 1);
      return;
    }
    if (result.status === 'stopped') return;
    const status = result.status === 'busy' ? 'refused' : result.status;
    this.runs.inc({ appid, status });
    if (status === 'complete') this.complete(appid, nowMs);
    if (status !== 'refused') this.lastFailed.set({ appid }, status === 'complete' ? 0 : 1);
  }

  quota(appid: string, remaining: number, limit: number): void {
    this.quotaRemaining.set({ appid }, remaining);
    this.quotaLimit.set({ appid }, limit);
  }

  checked(appid: string, result: CheckResult, nowMs: number, drift?: number): void {
    this.checks.inc({ appid, result });
    if (result === 'skipped' || result === 'failed') return;
    this.lastCheck.set({ appid }, nowMs / 1000);
    this.drift.set({ appid }, result === 'drift' ? drift ?? 0 : 0);
  }

  private complete(appid: string, atMs: number): void {
    this.completeAt.set(appid, atMs);
    this.lastComplete.set({ appid }, atMs / 1000);
  }
}

/**
 * A snapshotter whose every run is counted, whichever path asked for it (schedule, API, sentinel), and whose
 * quota figures are refreshed after it. A run cut short by the shutdown (`signal`) resumes later: not counted.
 */
export function observedSnapshotter(
  snapshot: Snapshotter, metrics: SnapshotMetrics, afterRun: (appid: string) => Promise<void>, signal: AbortSignal, now: () => number = Date.now,
): Snapshotter {
  return async (appid, call) => {
    let result: SnapshotResult | undefined;
    try {
      result = await snapshot(appid, call);
    } catch (error) {
      if (!signal.aborted) metrics.ran(appid, undefined, now());
      throw error;
    } finally {
      await afterRun(appid);
    }
    metrics.ran(appid, result, now());
    return result;
  };
}
