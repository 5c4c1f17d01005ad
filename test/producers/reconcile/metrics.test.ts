import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRegistry, type Registry } from '../../../lib/metrics.ts';
import { observedReconciler } from '../../../producers/reconcile/metrics.ts';
import type { ReconcileReport, Reconciler } from '../../../producers/reconcile/runner.ts';

async function value(registry: Registry, name: string, appid: string): Promise<number | undefined> {
  return (await registry.getSingleMetric(name)?.get())?.values.find((v) => v.labels['appid'] === appid)?.value;
}

const counts = (emitted: number): ReconcileReport['missing'] => ({ found: emitted, inWindow: 0, unconfirmed: 0, skipped: 0, emitted, sample: [] });
const report = (status: ReconcileReport['status'], dryRun = false): ReconcileReport => ({
  runId: 'r', appid: 'wxa', snapshotId: 's', status, dryRun, snapshotOpenids: 10_000, followers: 9_990,
  missing: counts(12), stale: counts(3), live: { checked: 4, emitted: 1, skipped: 0, sample: [] }, fallbackTimes: 0,
  phases: { waitMs: 0, queryMs: 0, confirmMs: 0, publishMs: 0 }, durationMs: 5,
});

describe('reconcile metrics', () => {
  it('keeps per account the last real run\'s corrections, its snapshot\'s followers and whether it was refused', async () => {
    const registry = createRegistry();
    const answers: (ReconcileReport | Error)[] = [report('done'), report('done'), report('dry-run', true), report('refused'), new Error('store down'), { ...report('done'), joined: true }];
    const inner: Reconciler = { run: () => { const a = answers.shift(); return a instanceof Error ? Promise.reject(a) : Promise.resolve(a as ReconcileReport); } };
    const reconciler = observedReconciler(inner, registry);
    const request = { appid: 'wxa', dryRun: false, trigger: 'manual' as const };

    await reconciler.run(request);
    assert.equal(await value(registry, 'wxsync_reconcile_last_corrections', 'wxa'), 0, 'the import: its corrections are not lost pushes');
    assert.equal(await value(registry, 'wxsync_reconcile_last_followers', 'wxa'), 10_000);
    await reconciler.run(request);
    assert.equal(await value(registry, 'wxsync_reconcile_last_corrections', 'wxa'), 16);
    assert.equal(await value(registry, 'wxsync_reconcile_last_followers', 'wxa'), 10_000);
    assert.equal(await value(registry, 'wxsync_reconcile_last_refused', 'wxa'), 0);
    await reconciler.run({ ...request, dryRun: true });
    assert.equal(await value(registry, 'wxsync_reconcile_last_corrections', 'wxa'), 16, 'a dry run changes nothing');
    await reconciler.run(request);
    assert.equal(await value(registry, 'wxsync_reconcile_last_refused', 'wxa'), 1);
    assert.equal(await value(registry, 'wxsync_reconcile_last_corrections', 'wxa'), 16, 'the last *done* run\'s corrections');
    await assert.rejects(reconciler.run(request), /store down/);
    assert.equal(await value(registry, 'wxsync_reconcile_last_refused', 'wxa'), 0);
    await reconciler.run(request);
    assert.equal(await value(registry, 'wxsync_reconcile_last_corrections', 'wxa'), 16);
  });

  it('starts from the runs of earlier processes', async () => {
    const registry = createRegistry();
    observedReconciler({ run: () => Promise.reject(new Error('not called')) }, registry, [
      { appid: 'wxa', status: 'refused', done: { corrections: 7, snapshotOpenids: 900, first: false } },
      { appid: 'wxb', status: 'failed' },
      { appid: 'wxc', status: 'done', done: { corrections: 5000, snapshotOpenids: 5000, first: true } },
    ]);
    assert.equal(await value(registry, 'wxsync_reconcile_last_corrections', 'wxc'), 0, 'its only done run was the import');
    assert.deepEqual(
      [await value(registry, 'wxsync_reconcile_last_refused', 'wxa'), await value(registry, 'wxsync_reconcile_last_corrections', 'wxa'), await value(registry, 'wxsync_reconcile_last_followers', 'wxa')],
      [1, 7, 900],
    );
    assert.deepEqual([await value(registry, 'wxsync_reconcile_last_refused', 'wxb'), await value(registry, 'wxsync_reconcile_last_corrections', 'wxb')], [0, undefined]);
  });
});
