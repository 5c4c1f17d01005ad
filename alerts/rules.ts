/**
 * The alert rules, pure: each reads the newest sample of the process's metrics (and, for a rate, an older one) and
 * says per account whether its condition holds now, with the figures the texts show. How long it must hold before
 * it fires is the state machine's `for` (state.ts), as in a Prometheus rule, so the same rules read the same way in
 * deploy/prometheus's file.
 */
import type { AlertKind } from './kinds.ts';

/** One metric series' labels and value. */
export interface Series {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

/** The metrics the rules read, at one instant. */
export interface Sample {
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly metrics: ReadonlyMap<string, readonly Series[]>;
}

export type Figures = Readonly<Record<string, number | string>>;

/** A rule's answer for one account ('' for the process-wide rules): whether its condition holds, and the figures. */
export interface Evaluation {
  readonly kind: AlertKind;
  readonly appid: string;
  readonly active: boolean;
  readonly figures: Figures;
}

export interface RuleThresholds {
  readonly lostShare: number;
  readonly lostCount: number;
  readonly quotaShare: number;
  readonly refusedPerMinute: number;
}

/** Every metric a rule reads: the shell samples these and nothing else. */
export const RULE_METRICS = [
  'wxsync_sentinel_drift_followers',
  'wxsync_sentinel_last_check_timestamp_seconds',
  'wxsync_reconcile_last_corrections',
  'wxsync_reconcile_last_followers',
  'wxsync_reconcile_last_refused',
  'wxsync_callback_spool_depth',
  'wxsync_consumer_stalled',
  'wxsync_consumer_seconds_since_write',
  'wxsync_snapshot_last_failed',
  'wxsync_snapshot_last_complete_timestamp_seconds',
  'wxsync_snapshot_overdue_seconds',
  'wxsync_userget_quota_remaining',
  'wxsync_userget_quota_limit',
  'wxsync_callback_rejected_total',
  'wxsync_datacube_disagreeing_days',
] as const;
type RuleMetric = (typeof RULE_METRICS)[number];

/** The window a refused-push rate is measured over. */
export const RATE_WINDOW_MS = 60_000;

function series(sample: Sample, name: RuleMetric): readonly Series[] {
  return sample.metrics.get(name) ?? [];
}

/** Per appid, the value of a metric labelled by account. */
function byAppid(sample: Sample, name: RuleMetric): Map<string, number> {
  const values = new Map<string, number>();
  for (const s of series(sample, name)) {
    const appid = s.labels['appid'];
    if (typeof appid === 'string' && appid !== '') values.set(appid, s.value);
  }
  return values;
}

/** The value of an unlabelled metric, undefined when no role of this process exposes it. */
function single(sample: Sample, name: RuleMetric): number | undefined {
  return series(sample, name)[0]?.value;
}

/** A per-account rule: one evaluation per account the metric has a value for. */
function perAccount(sample: Sample, kind: AlertKind, name: RuleMetric, decide: (value: number, appid: string) => { active: boolean; figures: Figures }): Evaluation[] {
  return [...byAppid(sample, name)].map(([appid, value]) => ({ kind, appid, ...decide(value, appid) }));
}

/**
 * Every rule over `history` (oldest first, the newest being now). A rule whose metrics no role of this process
 * exposes gives no evaluation, which the state machine takes as false.
 */
export function evaluateRules(history: readonly Sample[], thresholds: RuleThresholds): Evaluation[] {
  const now = history.at(-1);
  if (now === undefined) return [];
  const previous = history.at(-2);
  const followers = byAppid(now, 'wxsync_reconcile_last_followers');
  const quotaLimit = byAppid(now, 'wxsync_userget_quota_limit');
  const lastComplete = byAppid(now, 'wxsync_snapshot_last_complete_timestamp_seconds');
  const lastCheck = byAppid(now, 'wxsync_sentinel_last_check_timestamp_seconds');
  const evaluations: Evaluation[] = [
    // The sentinel's drift is already net of what is in flight: any difference left is one. The check's time finds its row.
    ...perAccount(now, 'drift', 'wxsync_sentinel_drift_followers', (drift, appid) => ({ active: drift !== 0, figures: { drift, checkedAt: lastCheck.get(appid) ?? 0 } })),
    ...perAccount(now, 'pushes_lost', 'wxsync_reconcile_last_corrections', (corrections, appid) => {
      const total = followers.get(appid) ?? 0;
      return { active: corrections > thresholds.lostCount || (total > 0 && corrections / total > thresholds.lostShare), figures: { corrections, followers: total } };
    }),
    ...perAccount(now, 'snapshot_failed', 'wxsync_snapshot_last_failed', (failed, appid) => ({ active: failed === 1, figures: { lastComplete: lastComplete.get(appid) ?? 0 } })),
    ...perAccount(now, 'snapshot_overdue', 'wxsync_snapshot_overdue_seconds', (overdueSeconds) => ({ active: overdueSeconds > 0, figures: { overdueSeconds } })),
    ...perAccount(now, 'quota_low', 'wxsync_userget_quota_remaining', (remaining, appid) => {
      const limit = quotaLimit.get(appid) ?? 0;
      return { active: limit > 0 && remaining < thresholds.quotaShare * limit, figures: { remaining, limit } };
    }),
    ...perAccount(now, 'reconcile_refused', 'wxsync_reconcile_last_refused', (refused) => ({ active: refused === 1, figures: {} })),
    ...perAccount(now, 'datacube_disagrees', 'wxsync_datacube_disagreeing_days', (days) => ({ active: days > 0, figures: { days } })),
  ];
  const depth = single(now, 'wxsync_callback_spool_depth');
  if (depth !== undefined) {
    // Not draining: callbacks wait and there are no fewer than at the last evaluation (held for the `for` duration).
    const before = previous === undefined ? undefined : single(previous, 'wxsync_callback_spool_depth');
    evaluations.push({ kind: 'spool_not_draining', appid: '', active: depth > 0 && before !== undefined && depth >= before, figures: { depth } });
  }
  const stalled = single(now, 'wxsync_consumer_stalled');
  if (stalled !== undefined) {
    evaluations.push({ kind: 'consumer_stuck', appid: '', active: stalled === 1, figures: { secondsSinceWrite: Math.round(single(now, 'wxsync_consumer_seconds_since_write') ?? 0) } });
  }
  const spike = refusedSpike(history, thresholds.refusedPerMinute);
  if (spike !== undefined) evaluations.push(spike);
  return evaluations;
}

/**
 * Pushes refused over the last minute, against the newest sample at least a minute old (none yet: no evaluation).
 * A counter lower than before was reset (a restarted role): what it holds now is the increase.
 */
function refusedSpike(history: readonly Sample[], perMinute: number): Evaluation | undefined {
  const now = history.at(-1);
  if (now === undefined || !now.metrics.has('wxsync_callback_rejected_total')) return undefined;
  const base = history.findLast((s) => s.at <= now.at - RATE_WINDOW_MS);
  if (base === undefined) return undefined;
  const before = new Map(series(base, 'wxsync_callback_rejected_total').map((s) => [String(s.labels['reason']), s.value]));
  const increases = series(now, 'wxsync_callback_rejected_total').map((s) => {
    const old = before.get(String(s.labels['reason'])) ?? 0;
    return { reason: String(s.labels['reason']), n: s.value >= old ? s.value - old : s.value };
  }).filter((r) => r.n > 0).sort((a, b) => b.n - a.n || a.reason.localeCompare(b.reason));
  const refused = increases.reduce((sum, r) => sum + r.n, 0);
  const rate = Math.round(refused * RATE_WINDOW_MS / (now.at - base.at));
  return {
    kind: 'pushes_refused_spike', appid: '', active: rate > perMinute,
    figures: { perMinute: rate, reasons: increases.slice(0, 3).map((r) => `${r.reason} ${r.n}`).join(', ') },
  };
}
