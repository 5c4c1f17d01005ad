import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoadPipeline, stallState, type Ack, type PipelineOptions } from '../../../consumers/clickhouse/pipeline.ts';
import { emptyRouted, routedSize, type Routed } from '../../../consumers/clickhouse/route.ts';
import { silentLogger } from '../../../lib/logger.ts';
import { waitFor } from '../../support/env.ts';

const options: PipelineOptions = {
  maxRows: 10, maxWaitMs: 1000, lingerMs: 20, maxPendingRows: 30, maxConcurrentWrites: 1, retryInitialMs: 5, retryMaxMs: 20, stallMs: 60_000,
};

const origin = { topic: 't', partition: 0, offset: '0', key: null, value: null, timestamp: '0' };

function rows(n: number): Routed {
  const routed = emptyRouted();
  routed.snapshotMembers.push({ origin, appid: 'a', snapshot_id: 's', page: 0, fetched_at: 0, openids: Array.from({ length: n }, (_, i) => `o${i}`) });
  return routed;
}

function ack(partition: number, nextOffset: number, current = true): Ack {
  return { topic: 't', partition, nextOffset: BigInt(nextOffset), isCurrent: () => current };
}

const noHeartbeat = (): Promise<void> => Promise.resolve();

describe('LoadPipeline', () => {
  it('writes many batches as one set and commits the highest offset per partition after the write', async () => {
    const writes: number[] = [];
    const commits: string[] = [];
    const pipeline = new LoadPipeline(options, { write: (r) => { writes.push(routedSize(r)); return Promise.resolve(); } },
      (topic, partition, offset) => { commits.push(`${topic}/${partition}@${offset}`); return Promise.resolve(); }, silentLogger());
    await pipeline.submit(rows(3), ack(0, 5), noHeartbeat);
    await pipeline.submit(rows(3), ack(1, 7), noHeartbeat);
    await pipeline.submit(rows(3), ack(0, 9), noHeartbeat);
    await waitFor('the linger flush', 2000, () => (commits.length === 2 ? true : undefined), 5);
    assert.deepEqual(writes, [9]);
    assert.deepEqual(commits.sort(), ['t/0@9', 't/1@7']);
    await pipeline.close(1000);
  });

  it('flushes the tail of a stream that waited while every writer was busy', async () => {
    const written: number[] = [];
    let release: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => { release = resolve; });
    const pipeline = new LoadPipeline({ ...options, lingerMs: 5, maxConcurrentWrites: 1 }, {
      async write(r) {
        if (written.length === 0) await slow;
        written.push(routedSize(r));
      },
    }, () => Promise.resolve(), silentLogger());
    await pipeline.submit(rows(3), ack(0, 3), noHeartbeat);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await pipeline.submit(rows(2), ack(0, 5), noHeartbeat);
    await new Promise((resolve) => setTimeout(resolve, 30));
    release();
    await waitFor('the tail to be flushed without any new record', 2000, () => (written.length === 2 ? true : undefined), 5);
    assert.deepEqual(written, [3, 2]);
    await pipeline.close(1000);
  });

  it('flushes at once when the size bound is reached', async () => {
    const writes: number[] = [];
    const pipeline = new LoadPipeline({ ...options, lingerMs: 10_000, maxWaitMs: 10_000 },
      { write: (r) => { writes.push(routedSize(r)); return Promise.resolve(); } }, () => Promise.resolve(), silentLogger());
    await pipeline.submit(rows(12), ack(0, 1), noHeartbeat);
    await waitFor('the size flush', 1000, () => (writes.length === 1 ? true : undefined), 5);
    await pipeline.close(1000);
  });

  it('retries a failed write with the same rows and commits nothing until it succeeds', async () => {
    let attempts = 0;
    const written: number[] = [];
    const commits: string[] = [];
    const pipeline = new LoadPipeline(options, {
      write: (r) => {
        attempts += 1;
        if (attempts <= 3) return Promise.reject(new Error('down'));
        written.push(routedSize(r));
        return Promise.resolve();
      },
    }, (_t, p, o) => { commits.push(`${p}@${o}`); return Promise.resolve(); }, silentLogger());
    await pipeline.submit(rows(4), ack(0, 4), noHeartbeat);
    await waitFor('the write to succeed', 2000, () => (commits.length > 0 ? true : undefined), 5);
    assert.equal(attempts, 4);
    assert.deepEqual(written, [4]);
    assert.deepEqual(commits, ['0@4']);
    assert.equal(pipeline.stats.retries, 3);
    await pipeline.close(1000);
  });

  it('applies backpressure while too many rows wait, heart-beating meanwhile', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const pipeline = new LoadPipeline({ ...options, maxPendingRows: 15 }, { write: () => gate }, () => Promise.resolve(), silentLogger());
    await pipeline.submit(rows(10), ack(0, 1), noHeartbeat);
    let admitted = false;
    const blocked = pipeline.submit(rows(10), ack(0, 2), noHeartbeat).then(() => { admitted = true; });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(admitted, false);
    release();
    await blocked;
    assert.equal(admitted, true);
    await pipeline.close(1000);
  });

  it('skips commits for revoked partitions and never moves a partition backwards', async () => {
    const commits: string[] = [];
    const pipeline = new LoadPipeline({ ...options, maxRows: 1 }, { write: () => Promise.resolve() },
      (_t, p, o) => { commits.push(`${p}@${o}`); return Promise.resolve(); }, silentLogger());
    await pipeline.submit(rows(1), ack(0, 10), noHeartbeat);
    await waitFor('first commit', 1000, () => (commits.length === 1 ? true : undefined), 5);
    await pipeline.submit(rows(1), ack(0, 8), noHeartbeat);
    await pipeline.submit(rows(1), ack(1, 3, false), noHeartbeat);
    await pipeline.close(1000);
    assert.deepEqual(commits, ['0@10']);
  });

  it('with concurrent writes, commits in formation order only: a later set waits for an earlier failing one', async () => {
    const commits: string[] = [];
    let firstAttempts = 0;
    let release: () => void = () => undefined;
    const firstMayFinish = new Promise<void>((resolve) => { release = resolve; });
    const pipeline = new LoadPipeline({ ...options, maxRows: 2, maxConcurrentWrites: 2 }, {
      async write(r) {
        if (routedSize(r) === 2) {
          firstAttempts += 1;
          if (firstAttempts < 3) throw new Error('down');
          await firstMayFinish;
        }
      },
    }, (_t, p, o) => { commits.push(`${p}@${o}`); return Promise.resolve(); }, silentLogger());
    await pipeline.submit(rows(2), ack(0, 2), noHeartbeat);
    await pipeline.submit(rows(3), ack(1, 3), noHeartbeat);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(commits, [], 'the second set is written but waits for the first');
    release();
    await waitFor('both commits', 2000, () => (commits.length === 2 ? true : undefined), 5);
    assert.deepEqual(commits, ['0@2', '1@3']);
    await pipeline.close(1000);
  });

  it('never commits a set written after an earlier one was abandoned', async () => {
    const commits: string[] = [];
    const pipeline = new LoadPipeline({ ...options, maxRows: 2, maxConcurrentWrites: 2 }, {
      async write(r) {
        if (routedSize(r) === 2) throw new Error('down for good');
        await new Promise((resolve) => setTimeout(resolve, 150));
      },
    }, (_t, p, o) => { commits.push(`${p}@${o}`); return Promise.resolve(); }, silentLogger());
    await pipeline.submit(rows(2), ack(0, 2), noHeartbeat);
    await pipeline.submit(rows(3), ack(0, 5), noHeartbeat);
    await pipeline.close(50);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(commits, []);
  });

  it('on close past its deadline, abandons the write uncommitted', async () => {
    const commits: string[] = [];
    const pipeline = new LoadPipeline(options, { write: () => Promise.reject(new Error('down')) },
      (_t, p, o) => { commits.push(`${p}@${o}`); return Promise.resolve(); }, silentLogger());
    await pipeline.submit(rows(2), ack(0, 2), noHeartbeat);
    await pipeline.close(100);
    assert.deepEqual(commits, []);
    await assert.rejects(pipeline.submit(rows(1), ack(0, 3), noHeartbeat), { code: 'SHUTTING_DOWN' });
  });

  it('reports stalled once a write has kept failing past stallMs, and recovers once it is stored', async () => {
    let failing = true;
    const commits: string[] = [];
    const pipeline = new LoadPipeline({ ...options, stallMs: 150, retryMaxMs: 10 }, {
      write: () => (failing ? Promise.reject(new Error('down')) : Promise.resolve()),
    }, (_t, p, o) => { commits.push(`${p}@${o}`); return Promise.resolve(); }, silentLogger());
    assert.equal(pipeline.stall().stalled, false, 'idle is not stalled');
    await pipeline.submit(rows(2), ack(0, 2), noHeartbeat);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(pipeline.stall().stalled, false, 'failing, but not for longer than stallMs yet');
    await waitFor('the stall to be reported', 2000, () => (pipeline.stall().stalled ? true : undefined), 10);
    assert.ok(pipeline.stall().secondsSinceWrite >= 0.15);
    assert.deepEqual(commits, []);
    failing = false;
    await waitFor('the write to be stored', 2000, () => (commits.length === 1 ? true : undefined), 5);
    assert.equal(pipeline.stall().stalled, false);
    assert.ok(pipeline.stall().secondsSinceWrite < 0.15);
    await pipeline.close(1000);
  });
});

describe('stallState', () => {
  const base = { waitingRows: 10, waitingSince: 0, lastStoredAt: 0, now: 0, stallMs: 1000 };

  it('is never stalled while nothing waits, however long ago the last write was', () => {
    assert.deepEqual(stallState({ ...base, waitingRows: 0, now: 3_600_000 }), { stalled: false, secondsSinceWrite: 3600 });
  });

  it('is stalled once rows have waited longer than stallMs with nothing stored', () => {
    assert.equal(stallState({ ...base, now: 1000 }).stalled, false, 'at the limit, not past it');
    assert.equal(stallState({ ...base, now: 1001 }).stalled, true);
    assert.equal(stallState({ ...base, lastStoredAt: 500, now: 1200 }).stalled, false, 'a store resets the clock');
  });

  it('gives a wait that began after a quiet spell the full stallMs', () => {
    const state = stallState({ ...base, lastStoredAt: 0, waitingSince: 3_600_000, now: 3_600_500 });
    assert.equal(state.stalled, false);
    assert.equal(state.secondsSinceWrite, 3600.5);
    assert.equal(stallState({ ...base, lastStoredAt: 0, waitingSince: 3_600_000, now: 3_601_001 }).stalled, true);
  });
});
