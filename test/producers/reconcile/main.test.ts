import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, WxsyncError } from '../../../lib/errors.ts';
import { reconcileRoute } from '../../../producers/reconcile/main.ts';
import type { ReconcileReport, ReconcileRequest, Reconciler } from '../../../producers/reconcile/runner.ts';

const EMPTY = { found: 0, inWindow: 0, unconfirmed: 0, skipped: 0, emitted: 0, sample: [] };

describe('POST /api/reconcile/<appid>', () => {
  const requests: ReconcileRequest[] = [];
  let fail: false | 'wxsync' | 'internal' = false;
  const reconciler: Reconciler = {
    run(request) {
      requests.push(request);
      if (fail === 'wxsync') return Promise.reject(new WxsyncError(ErrorCode.StoreBehind, 'the consumer is behind', { retriable: true }));
      if (fail === 'internal') return Promise.reject(new Error('ENOENT /secret/internal/path at Object.<anonymous>'));
      const report: ReconcileReport = {
        runId: 'r1', appid: request.appid, snapshotId: request.snapshotId ?? 's1', status: request.dryRun ? 'dry-run' : 'done', dryRun: request.dryRun,
        snapshotOpenids: 0, followers: 0, missing: EMPTY, stale: EMPTY, live: { checked: 0, emitted: 0, skipped: 0, sample: [] }, fallbackTimes: 0, phases: { waitMs: 0, queryMs: 0, confirmMs: 0, publishMs: 0 }, durationMs: 1,
      };
      return Promise.resolve(report);
    },
  };
  const server = http.createServer((req, res) => { void reconcileRoute(reconciler, new Set(['wxa']))(req, res); });
  let base = '';
  before(async () => {
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => { server.close(); });

  const post = async (path: string, method = 'POST'): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${base}${path}`, { method });
    return { status: res.status, body: await res.json() as Record<string, unknown> };
  };

  it('runs a manual reconcile, dry or not, of a given snapshot', async () => {
    assert.deepEqual((await post('/api/reconcile/wxa?dryRun=1&snapshot=wxa:s-2')).body['status'], 'dry-run');
    assert.deepEqual((await post('/api/reconcile/wxa')).body['status'], 'done');
    assert.deepEqual(requests.splice(0), [
      { appid: 'wxa', dryRun: true, trigger: 'manual', snapshotId: 'wxa:s-2' },
      { appid: 'wxa', dryRun: false, trigger: 'manual' },
    ]);
  });

  it('refuses unknown accounts, other methods, hostile paths and snapshot ids, running nothing', async () => {
    assert.equal((await post('/api/reconcile/wxb')).status, 404);
    assert.equal((await post('/api/reconcile/wxa', 'GET')).status, 405);
    assert.equal((await post('/api/reconcile/..%2F..%2Fetc')).status, 404);
    assert.equal((await post(`/api/reconcile/${'a'.repeat(65)}`)).status, 404);
    const bad = await post(`/api/reconcile/wxa?snapshot=${encodeURIComponent("x' OR 1=1")}`);
    assert.equal(bad.status, 400);
    assert.match(String(bad.body['error']), /snapshot must match/);
    assert.equal((await post(`/api/reconcile/wxa?snapshot=${'s'.repeat(10_000)}`)).status, 400);
    assert.deepEqual(requests, []);
  });

  it('answers a failed run with its error code, and never echoes an internal error', async () => {
    fail = 'wxsync';
    const { status, body } = await post('/api/reconcile/wxa');
    fail = 'internal';
    const internal = await post('/api/reconcile/wxa');
    fail = false;
    assert.equal(status, 500);
    assert.deepEqual(body, { error: 'the consumer is behind', code: 'STORE_BEHIND' });
    assert.deepEqual([internal.status, internal.body], [500, { error: 'internal error (see the log of wxsync run)', code: 'INTERNAL' }]);
  });
});
