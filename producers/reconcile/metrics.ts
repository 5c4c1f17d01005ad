import { Counter, Histogram, type Registry } from '../../lib/metrics.ts';
import type { Reconciler } from './runner.ts';

/** A reconciler that counts every run it finishes at /metrics: by status, and per rule what it emitted or skipped. */
export function observedReconciler(reconciler: Reconciler, registry: Registry): Reconciler {
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
  return {
    async run(request) {
      let report;
      try {
        report = await reconciler.run(request);
      } catch (error) {
        runs.inc({ status: 'failed' });
        throw error;
      }
      runs.inc({ status: report.status });
      seconds.observe(report.durationMs / 1000);
      if (report.joined === true) return report;
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
