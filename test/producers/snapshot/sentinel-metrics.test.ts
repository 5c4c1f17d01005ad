import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRegistry, type Registry } from '../../../lib/metrics.ts';
import { observedSnapshotter, SnapshotMetrics } from '../../../producers/snapshot/metrics.ts';
import type { SnapshotResult } from '../../../producers/snapshot/runner.ts';

async function value(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const found = await registry.getSingleMetric(name)?.get();
  return found?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

const HOUR = 3600_000;
const DUE = Date.UTC(2026, 5, 1, 3, 0, 0);

describe('snapshot role metrics', () => {
  it('counts runs by status on every path, and keeps the last complete and last failed per account', async () => {
    const registry = createRegistry();
    let clock = DUE + 10 * 60_000;
    const metrics = new SnapshotMetrics(['wxa', 'wxb'], { registry, dueAt: (appid) => (appid === 'wxa' ? DUE : undefined), overdueGraceMs: HOUR, now: () => clock });
    const results: (SnapshotResult | Error)[] = [
      { status: 'complete', snapshotId: 's1', pages: 1, openids: 5, total: 5, calls: 2, profiles: 0 },
      { status: 'busy', reason: 'held by another process' },
      { status: 'incomplete', snapshotId: 's2', pages: 1, openids: 5, total: 9, calls: 2, profiles: 0, reason: '45009' },
      { status: 'stopped', snapshotId: 's3', pages: 1, reason: 'shutting down' },
      new Error('the broker is down'),
    ];
    const refreshed: string[] = [];
    const stopping = new AbortController();
    const snapshot = observedSnapshotter(() => {
      const next = results.shift();
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next as SnapshotResult);
    }, metrics, (appid) => { refreshed.push(appid); return Promise.resolve(); }, stopping.signal, () => clock);

    await snapshot('wxa');
    assert.equal(await value(registry, 'wxsync_snapshot_last_complete_timestamp_seconds', { appid: 'wxa' }), clock / 1000);
    assert.equal(await value(registry, 'wxsync_snapshot_overdue_seconds', { appid: 'wxa' }), 0, 'completed after its due time');
    await snapshot('wxa');
    assert.equal(await value(registry, 'wxsync_snapshot_last_failed', { appid: 'wxa' }), 0, 'a refusal is not a failed run');
    await snapshot('wxa');
    assert.equal(await value(registry, 'wxsync_snapshot_last_failed', { appid: 'wxa' }), 1);
    await snapshot('wxa');
    await assert.rejects(snapshot('wxa'), /broker is down/);
    for (const [status, n] of [['complete', 1], ['refused', 1], ['incomplete', 1], ['failed', 1]] as const) {
      assert.equal(await value(registry, 'wxsync_snapshot_runs_total', { appid: 'wxa', status }), n, status);
    }
    assert.equal(await value(registry, 'wxsync_snapshot_runs_total', { appid: 'wxb', status: 'complete' }), 0, 'every series exists from the start');
    assert.deepEqual(refreshed, ['wxa', 'wxa', 'wxa', 'wxa', 'wxa'], 'the quota figures are read after every run');

    // The next day's due time passes with no complete snapshot since: overdue once the grace is over.
    clock = DUE + 25 * HOUR + 42_000;
    const nextDay = createRegistry();
    const restarted = new SnapshotMetrics(['wxa'], { registry: nextDay, dueAt: () => DUE + 24 * HOUR, overdueGraceMs: HOUR, now: () => clock });
    restarted.restore('wxa', { lastCompleteMs: DUE + 10 * 60_000, lastFailed: false });
    assert.equal(await value(nextDay, 'wxsync_snapshot_last_complete_timestamp_seconds', { appid: 'wxa' }), (DUE + 10 * 60_000) / 1000, 'restored from the store');
    assert.equal(await value(nextDay, 'wxsync_snapshot_overdue_seconds', { appid: 'wxa' }), 42);
  });

  it('reports the scheduled snapshot overdue from its due time plus the grace', async () => {
    const registry = createRegistry();
    let clock = DUE + 30 * 60_000;
    const metrics = new SnapshotMetrics(['wxa'], { registry, dueAt: () => DUE, overdueGraceMs: HOUR, now: () => clock });
    metrics.restore('wxa', { lastCompleteMs: DUE - 23 * HOUR, lastFailed: true });
    assert.equal(await value(registry, 'wxsync_snapshot_overdue_seconds', { appid: 'wxa' }), 0, 'inside the grace');
    assert.equal(await value(registry, 'wxsync_snapshot_last_failed', { appid: 'wxa' }), 1, 'restored from the store');
    clock = DUE + HOUR + 42_000;
    assert.equal(await value(registry, 'wxsync_snapshot_overdue_seconds', { appid: 'wxa' }), 42);
  });

  it('does not call a new installation\'s first snapshot overdue for a due time before the role started', async () => {
    const registry = createRegistry();
    let clock = DUE + 3 * HOUR;
    new SnapshotMetrics(['wxa'], { registry, dueAt: (_, nowMs) => (nowMs < DUE + 24 * HOUR ? DUE : DUE + 24 * HOUR), overdueGraceMs: HOUR, now: () => clock });
    assert.equal(await value(registry, 'wxsync_snapshot_overdue_seconds', { appid: 'wxa' }), 0, 'never a complete snapshot, and due before the start');
    clock = DUE + 25 * HOUR + 42_000;
    assert.equal(await value(registry, 'wxsync_snapshot_overdue_seconds', { appid: 'wxa' }), 42, 'the next due time came while it ran');
  });

  it('keeps the drift gauge until a check finds WeChat and the store equal', async () => {
    const registry = createRegistry();
    const metrics = new SnapshotMetrics(['wxa'], { registry, dueAt: () => undefined, overdueGraceMs: 0 });
    metrics.checked('wxa', 'drift', 1_000_000, -17);
    assert.equal(await value(registry, 'wxsync_sentinel_drift_followers', { appid: 'wxa' }), -17);
    metrics.checked('wxa', 'failed', 2_000_000);
    metrics.checked('wxa', 'skipped', 3_000_000);
    assert.equal(await value(registry, 'wxsync_sentinel_drift_followers', { appid: 'wxa' }), -17, 'a failed or skipped check knows nothing new');
    assert.equal(await value(registry, 'wxsync_sentinel_last_check_timestamp_seconds', { appid: 'wxa' }), 1000);
    metrics.checked('wxa', 'equal', 4_000_000, 0);
    assert.equal(await value(registry, 'wxsync_sentinel_drift_followers', { appid: 'wxa' }), 0);
    assert.equal(await value(registry, 'wxsync_sentinel_last_check_timestamp_seconds', { appid: 'wxa' }), 4000);
    metrics.quota('wxa', 480, 500);
    assert.equal(await value(registry, 'wxsync_userget_quota_remaining', { appid: 'wxa' }), 480);
    assert.equal(await value(registry, 'wxsync_userget_quota_limit', { appid: 'wxa' }), 500);
  });
});
