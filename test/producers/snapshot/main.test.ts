import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, WxsyncError } from '../../../lib/errors.ts';
import { Limiter } from '../../../lib/schedule.ts';
import { snapshotRoute, type SnapshotCall, type SnapshotStreamLine, type Snapshotter } from '../../../producers/snapshot/main.ts';
import type { Progress } from '../../../producers/snapshot/runner.ts';
import { waitFor } from '../../support/env.ts';

const progress = (pages: number): Progress => ({
  appid: 'wxa', snapshotId: 'wxa:s-1', pages, openids: pages * 10_000, total: 25_001, pagesThisRun: pages, openidsThisRun: pages * 10_000, runStartedAt: 0,
});

describe('POST /api/snapshot/<appid>', () => {
  const calls: { appid: string; call: SnapshotCall | undefined }[] = [];
  let behaviour: 'complete' | 'fail' | 'wait' = 'complete';
  const snapshot: Snapshotter = async (appid, call) => {
    calls.push({ appid, call });
    if (behaviour === 'fail') throw new WxsyncError(ErrorCode.KafkaUnavailable, 'the broker is down', { retriable: true });
    call?.onProgress?.(progress(1));
    call?.onProgress?.(progress(2));
    if (behaviour === 'wait') {
      const signal = call?.signal;
      await new Promise<void>((resolve) => { signal?.addEventListener('abort', () => { resolve(); }); });
      return { status: 'stopped', snapshotId: 'wxa:s-1', pages: 2, reason: String(signal?.reason) };
    }
    return { status: 'complete', snapshotId: 'wxa:s-1', pages: 4, openids: 25_001, total: 25_001, calls: 4, profiles: 25_001 };
  };
  const server = http.createServer((req, res) => { void snapshotRoute(snapshot, new Limiter(1), new Set(['wxa']))(req, res); });
  let base = '';
  before(async () => {
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => { server.close(); });

  const lines = async (res: Response): Promise<SnapshotStreamLine[]> => (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as SnapshotStreamLine);

  it('streams the progress as JSON lines, then the result', async () => {
    behaviour = 'complete';
    const res = await fetch(`${base}/api/snapshot/wxa`, { method: 'POST' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const got = await lines(res);
    assert.deepEqual(got.slice(0, 2), [{ progress: progress(1) }, { progress: progress(2) }]);
    assert.deepEqual(got[2], { result: { status: 'complete', snapshotId: 'wxa:s-1', pages: 4, openids: 25_001, total: 25_001, calls: 4, profiles: 25_001 } });
    assert.equal(calls.splice(0).length, 1);
  });

  it('ends the stream with the error code of a failed run', async () => {
    behaviour = 'fail';
    const got = await lines(await fetch(`${base}/api/snapshot/wxa`, { method: 'POST' }));
    assert.deepEqual(got.at(-1), { error: 'the broker is down', code: ErrorCode.KafkaUnavailable });
    calls.splice(0);
  });

  it('stops the run when the client goes away', async () => {
    behaviour = 'wait';
    const abort = new AbortController();
    const res = await fetch(`${base}/api/snapshot/wxa`, { method: 'POST', signal: abort.signal });
    assert.equal(res.status, 200);
    const call = await waitFor('the run to start', 5000, () => calls[0]?.call);
    abort.abort();
    await waitFor('the run to be told', 5000, () => (call.signal?.aborted === true ? true : undefined));
    assert.match(String(call.signal?.reason), /went away/);
    calls.splice(0);
  });

  it('refuses unknown accounts, other methods and hostile paths, running nothing', async () => {
    const status = async (path: string, method = 'POST'): Promise<number> => {
      const res = await fetch(`${base}${path}`, { method });
      await res.arrayBuffer();
      return res.status;
    };
    assert.equal(await status('/api/snapshot/wxb'), 404);
    assert.equal(await status('/api/snapshot/wxa', 'GET'), 405);
    assert.equal(await status('/api/snapshot/..%2F..%2Fetc'), 404);
    assert.equal(await status(`/api/snapshot/${'a'.repeat(10_000)}`), 404);
    assert.deepEqual(calls, []);
  });
});
