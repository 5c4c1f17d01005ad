import { Counter, Gauge, Histogram, type Registry } from '../../lib/metrics.ts';
import type { Reconciler } from './runner.ts';
import type { LastRun } from './store.ts';

/**
 * A reconciler that counts every run it finishes at /metrics: by status, and per rule what it emitted or skipped;
 * and per account what its last real run did (the pushes-lost and reconcile-refused alerts read those).
 */
export function observedReconciler(reconciler: Reconciler, registry: Registry, lastRuns: readonly LastRun[] = []): Reconciler {
  const registers = [registry];
  const runs = new Counter({ name: 'wxsync_reconcile_runs_total', help: 'Reconcile runs by status (done, dry-run, refused, failed)', labelNames: ['status'], registers });
  const corrections = new Counter({ name: 'wxsync_reconcile_corrections_total', help: 'Corrections published, by rule (missing, stale, live)', labelNames: ['rule'], registers });
  const skipped = new Counter({
    name: 'wxsync_reconcile_skipped_total',
    help: 'Differences not corrected, by rule and why (unconfirmed: batchget no longer confirmed it; unordered: the correction could not be ordered after the store\'s newest event)',
    labelNames: ['rule', 'why'],
    registers,
  });
  const live = new Counter({ name: 'wxsync_reconcile_live_checked_total', help: 'Users with an event inside a snapshot\'s window, confirmed live by batchget', registers });
  const seconds = new Histogram({ name: 'wxsync_reconcile_seconds', help: 'Duration of a reconcile run', buckets: [0.5, 1, 2, 5, 10, 30, 60, 300, 900], registers });
  const lastCorrections = new Gauge({
    name: 'wxsync_reconcile_last_corrections',
    help: 'Corrections published by the account\'s last done reconcile; 0 for its first (the import: followers the store did not know yet, not lost pushes)',
    labelNames: ['appid'],
    registers,
  });
  const lastFollowers = new Gauge({ name: 'wxsync_reconcile_last_followers', help: 'Followers in the snapshot the account\'s last done reconcile compared (the denominator of the lost share)', labelNames: ['appid'], registers });
  const lastRefused = new Gauge({ name: 'wxsync_reconcile_last_refused', help: '1 when the account\'s last reconcile run was refused (e.g. a stale share too large), else 0', labelNames: ['appid'], registers });
  /** Accounts with a done run: a later done run is not their import. */
  const imported = new Set<string>();
  const lastDone = (appid: string, corrections: number, snapshotOpenids: number, first: boolean): void => {
    lastCorrections.set({ appid }, first ? 0 : corrections);
    lastFollowers.set({ appid }, snapshotOpenids);
    imported.add(appid);
  };
  // The runs of earlier processes, so a restart neither forgets nor resolves what the last run said.
  for (const run of lastRuns) {
    lastRefused.set({ appid: run.appid }, run.status === 'refused' ? 1 : 0);
    if (run.done !== undefined) lastDone(run.appid, run.done.corrections, run.done.snapshotOpenids, run.done.first);
  }
  return {
    async run(request) {
      let report;
      try {
        report = await reconciler.run(request);
      } catch (error) {
        runs.inc({ status: 'failed' });
        if (!request.dryRun) lastRefused.set({ appid: request.appid }, 0);
        throw error;
      }
      runs.inc({ status: report.status });
      seconds.observe(report.durationMs / 1000);
      if (report.joined === true) return report;
      if (!report.dryRun) {
        const { appid } = report;
        lastRefused.set({ appid }, report.status === 'refused' ? 1 : 0);
        if (report.status === 'done') lastDone(appid, report.missing.emitted + report.stale.emitted + report.live.emitted, report.snapshotOpenids, !imported.has(appid));
      }
      for (const rule of ['missing', 'stale'] as const) {
        const counts = report[rule];
        if (!report.dryRun) corrections.inc({ rule }, counts.emitted);
        skipped.inc({ rule, why: 'unconfirmed' }, counts.unconfirmed);
        skipped.inc({ rule, why: 'unordered' }, counts.skipped);
      }
      if (!report.dryRun) corrections.inc({ rule: 'live' }, report.live.emitted);
      skipped.inc({ rule: 'live', why: 'unordered' }, report.live.skipped);
      live.inc(report.live.checked);
      return report;
    },
  };
}
