import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, WxsyncError } from '../../../lib/errors.ts';
import { silentLogger } from '../../../lib/logger.ts';
import type { ComparisonReport, DifferenceRow, SnapshotHistory, SnapshotListing } from '../../../producers/reconcile/compare.ts';
import { historyRoutes } from '../../../producers/reconcile/compare-api.ts';
import type { PairRequest, SnapshotEntry } from '../../../producers/reconcile/compare-plan.ts';

const entry = (snapshotId: string): SnapshotEntry => ({ snapshotId, startedAt: 1, endedAt: 2, ended: true, complete: true, loaded: true, reason: '', total: 1, openids: 1 });
const ROWS: DifferenceRow[] = [
  { openid: 'o1', side: 'added', explained: true, scene: 'ADD_SCENE_QR_CODE', campaign: 'spring' },
  { openid: 'o2', side: 'added', explained: false, scene: '', campaign: '' },
];

describe('GET /api/compare/<appid> and /api/snapshots/<appid>', () => {
  const requests: PairRequest[] = [];
  let failMidList = false;
  const history: SnapshotHistory = {
    list: (appid) => Promise.resolve<SnapshotListing>({ appid, keep: 7, snapshots: [] }),
    compare(appid, request) {
      requests.push(request);
      if (request.from === 'gone') return Promise.reject(new WxsyncError(ErrorCode.SnapshotUnavailable, 'snapshot gone of wxa was dropped by retention'));
      if (request.from === 'nope') return Promise.reject(new WxsyncError(ErrorCode.UsageInvalid, 'unknown snapshot nope of wxa'));
      if (request.from === 'boom') return Promise.reject(new Error('ECONNRESET at /internal/path'));
      return Promise.resolve({ appid, from: { snapshotId: request.from ?? 'a' }, to: { snapshotId: request.to ?? 'b' } } as unknown as ComparisonReport);
    },
    differences(_appid, request) {
      requests.push(request);
      async function* rows(): AsyncGenerator<DifferenceRow[]> {
        yield await Promise.resolve(ROWS);
        if (failMidList) throw new WxsyncError(ErrorCode.SnapshotUnavailable, 'snapshot b of wxa was dropped by retention while it was compared; the comparison is void');
        yield [];
      }
      return Promise.resolve({ pair: { from: entry('a'), to: entry('b') }, rows: rows() });
    },
    afterReconcile: () => Promise.resolve(),
  };
  const routes = historyRoutes(history, new Set(['wxa']), silentLogger());
  const server = http.createServer((req, res) => {
    const route = routes.find(([prefix]) => (req.url ?? '').startsWith(prefix));
    if (route === undefined) res.writeHead(404).end();
    else void route[1](req, res);
  });
  let base = '';
  before(async () => {
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => { server.close(); });

  const get = async (path: string, method = 'GET'): Promise<{ status: number; type: string; text: string }> => {
    const res = await fetch(`${base}${path}`, { method });
    return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
  };

  it('answers the listing and the comparison as JSON, passing --from and --to on', async () => {
    const listing = await get('/api/snapshots/wxa');
    assert.deepEqual([listing.status, JSON.parse(listing.text)], [200, { appid: 'wxa', keep: 7, snapshots: [] }]);
    const report = await get('/api/compare/wxa?from=s1&to=s2');
    assert.equal(report.status, 200);
    assert.deepEqual((JSON.parse(report.text) as ComparisonReport).to, { snapshotId: 's2' });
    assert.deepEqual(requests.splice(0), [{ from: 's1', to: 's2' }]);
  });

  it('streams a list as one difference a line, then a line saying it is complete', async () => {
    const list = await get('/api/compare/wxa?list=added');
    assert.equal(list.status, 200);
    assert.match(list.type, /application\/x-ndjson/);
    assert.deepEqual(list.text.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown), [...ROWS, { complete: true, rows: 2 }]);
    assert.deepEqual(requests.splice(0), [{ list: 'added' }]);
  });

  it('ends a list that failed after its first line with the error, never with the completion line', async () => {
    failMidList = true;
    const list = await get('/api/compare/wxa?list=added');
    failMidList = false;
    const lines = list.text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.at(-1), { error: 'snapshot b of wxa was dropped by retention while it was compared; the comparison is void', code: 'SNAPSHOT_UNAVAILABLE' });
    assert.ok(lines.every((l) => l['complete'] === undefined));
    requests.splice(0);
  });

  it('refuses bad requests (400), snapshots that cannot be compared (409), unknown accounts and paths (404), other methods (405)', async () => {
    const cases: [string, number, RegExp][] = [
      ['/api/compare/wxa?list=both', 400, /--list must be added or removed/],
      [`/api/compare/wxa?from=${encodeURIComponent("x' OR 1=1")}`, 400, /--from must be a snapshot id/],
      ['/api/compare/wxa?from=nope', 400, /unknown snapshot nope/],
      ['/api/compare/wxa?from=gone', 409, /dropped by retention/],
      ['/api/compare/wxb', 404, /unknown account wxb/],
      ['/api/snapshots/wxb', 404, /unknown account wxb/],
      ['/api/compare/..%2Fetc', 404, /not found/],
      [`/api/snapshots/${'a'.repeat(65)}`, 404, /not found/],
    ];
    for (const [path, status, pattern] of cases) {
      const answer = await get(path);
      assert.equal(answer.status, status, path);
      assert.match(answer.text, pattern, path);
    }
    assert.equal((await get('/api/compare/wxa', 'POST')).status, 405);
    assert.deepEqual(requests.splice(0).map((r) => r.from), ['nope', 'gone'], 'bad options never reach the store');
  });

  it('never echoes an internal error', async () => {
    const answer = await get('/api/compare/wxa?from=boom');
    assert.deepEqual([answer.status, JSON.parse(answer.text)], [500, { error: 'internal error (see the log of wxsync run)', code: 'INTERNAL' }]);
    requests.splice(0);
  });
});
