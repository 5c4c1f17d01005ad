import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { OutRecord, RecordProducer } from '../../../lib/kafka.ts';
import { createLogger } from '../../../lib/logger.ts';
import { createRegistry } from '../../../lib/metrics.ts';
import { createCallbackMetrics } from '../../../producers/callback/metrics.ts';
import { Publisher, type PublishedRecord } from '../../../producers/callback/publisher.ts';
import { Spool, createSpoolMetrics, frame, isSpoolFull } from '../../../producers/callback/spool.ts';
import { waitFor } from '../../support/env.ts';

/** A broker that is down until told otherwise, and remembers what it took. */
class FakeProducer implements RecordProducer {
  down = true;
  readonly sent: string[] = [];
  send(_topic: string, records: readonly OutRecord[]): Promise<void> {
    if (this.down) return Promise.reject(new Error('broker down'));
    this.sent.push(...records.map((r) => r.key ?? ''));
    return Promise.resolve();
  }
  close(): Promise<void> { return Promise.resolve(); }
}

const rec = (i: number): PublishedRecord => ({ id: `id${i}`, key: `wx:o${i}`, value: Buffer.from(JSON.stringify({ id: `id${i}` })) });

describe('Publisher with a full spool', () => {
  const dirs: string[] = [];
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  it('refuses callbacks (the route answers 503) while the spool is at its cap, logs that once, and accepts again once drained', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-publisher-'));
    dirs.push(dir);
    const lines: { level: number; msg: string }[] = [];
    const logger = createLogger('info', 'test', { write: (line: string) => { lines.push(JSON.parse(line) as { level: number; msg: string }); } });
    const registry = createRegistry();
    const opened: { spool?: Spool } = {};
    const spoolMetrics = createSpoolMetrics(registry, () => opened.spool);
    const spool = await Spool.open(dir, logger, { maxBytes: frame(rec(0)).length * 5, metrics: spoolMetrics });
    opened.spool = spool;
    const producer = new FakeProducer();
    const metrics = createCallbackMetrics(registry, () => spool.depth);
    const publisher = new Publisher({ producer, topic: 't', spool, produceTimeoutMs: 200, logger, metrics, retryInitialMs: 20, retryMaxMs: 50 });
    try {
      for (let i = 0; i < 5; i++) assert.equal(await publisher.publish(rec(i)), 'spooled');
      for (let i = 5; i < 15; i++) await assert.rejects(publisher.publish(rec(i)), (error: unknown) => isSpoolFull(error));
      assert.equal(spool.depth, 5, 'nothing refused was accepted');
      assert.match(await registry.metrics(), /wxsync_callback_spool_full_total 10\n/);
      assert.equal(lines.filter((l) => l.msg.startsWith('spool full')).length, 1, 'one log line, not one per refused callback');
      assert.equal(lines.filter((l) => l.msg.startsWith('cannot spool callbacks')).length, 0);

      producer.down = false;
      await waitFor('the spool to drain', 10_000, () => (spool.depth === 0 && publisher.currentMode === 'direct' ? true : undefined), 10);
      assert.equal(await publisher.publish(rec(15)), 'published');
      assert.deepEqual(producer.sent, ['wx:o0', 'wx:o1', 'wx:o2', 'wx:o3', 'wx:o4', 'wx:o15']);
      assert.equal(spool.bytes, 0);
      // Full again only if Kafka goes away again: the spool has room for a new outage.
      producer.down = true;
      assert.equal(await publisher.publish(rec(16)), 'spooled');
      assert.equal(lines.filter((l) => l.msg.startsWith('spool has room again')).length, 1);
    } finally {
      producer.down = false;
      await publisher.stop();
      await spool.close();
    }
  });
});
