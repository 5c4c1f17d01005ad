import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../../lib/errors.ts';
import { LogThrottle } from '../../lib/log-throttle.ts';
import type { OutRecord, RecordProducer } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';
import type { CallbackMetrics } from './metrics.ts';
import { isSpoolFull, type Spool } from './spool.ts';

/**
 * Gets each accepted callback durable before its request is answered: acknowledged by Kafka, or fsynced to
 * the spool. Requests that arrive while a produce call is in flight are gathered and sent as the next
 * single call, so throughput does not hinge on one round trip per callback.
 *
 * Two modes. `direct`: a batch goes to Kafka with a deadline; past it (or on an error) the batch is spooled
 * and the publisher switches to `spool` mode, where batches go straight to the spool (no request waits for
 * a broker known to be down) while a drainer replays the spool in order. When the spool is empty the
 * publisher is `direct` again. A send abandoned at its deadline may still succeed later; the drainer waits
 * for it to settle and skips what it published, so the spool never publishes an event Kafka already has.
 */

export type Outcome = 'published' | 'spooled';

export interface PublishedRecord extends OutRecord {
  readonly id: string;
}

export interface PublisherOptions {
  readonly producer: RecordProducer;
  readonly topic: string;
  readonly spool: Spool;
  readonly produceTimeoutMs: number;
  readonly logger: Logger;
  readonly metrics: Pick<CallbackMetrics, 'produceSeconds' | 'spooled'>;
  /** Records per produce call or spool append. */
  readonly maxBatch?: number;
  readonly drainBatch?: number;
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
}

interface Waiter {
  readonly record: PublishedRecord;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

const TIMED_OUT = Symbol('timed out');

export class Publisher {
  private mode: 'direct' | 'spool';
  private queue: Waiter[] = [];
  private flushing = false;
  private draining: Promise<void> | undefined;
  private stopped = false;
  private readonly abandoned = new Set<Promise<void>>();
  /** Ids a late-completing abandoned send published: the drainer skips them. */
  private readonly publishedLate = new Set<string>();
  private readonly stopSignal = new AbortController();
  private readonly spoolFailures = new LogThrottle();

  constructor(private readonly options: PublisherOptions) {
    this.mode = options.spool.depth > 0 ? 'spool' : 'direct';
  }

  get spoolDepth(): number {
    return this.options.spool.depth;
  }

  get currentMode(): 'direct' | 'spool' {
    return this.mode;
  }

  /** Drains what an earlier process left in the spool. */
  start(): void {
    if (this.options.spool.depth > 0) this.ensureDraining();
  }

  /** Resolves once the record is durable; rejects when neither Kafka nor the spool took it. */
  publish(record: PublishedRecord): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      if (!this.flushing) void this.flushLoop();
    });
  }

  /** Stops draining; requests in flight finish (their records are in Kafka or the spool). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopSignal.abort();
    while (this.flushing) await sleep(5);
    await this.draining;
  }

  /** Resolves when the spool is empty and the drainer has stopped (tests, shutdown). */
  async drained(): Promise<void> {
    await this.draining;
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.options.maxBatch ?? 2000);
        await this.flush(batch);
      }
    } finally {
      this.flushing = false;
    }
  }

  private async flush(batch: readonly Waiter[]): Promise<void> {
    const records = batch.map((w) => w.record);
    if (this.mode === 'direct') {
      const started = performance.now();
      const send = this.options.producer.send(this.options.topic, records);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<typeof TIMED_OUT>((resolve) => { timer = setTimeout(() => { resolve(TIMED_OUT); }, this.options.produceTimeoutMs); });
      let result: unknown;
      try {
        result = await Promise.race([send, deadline]);
      } catch (error) {
        result = error;
      } finally {
        clearTimeout(timer);
      }
      if (result === undefined) {
        this.options.metrics.produceSeconds.observe((performance.now() - started) / 1000);
        for (const w of batch) w.resolve('published');
        return;
      }
      if (result === TIMED_OUT) {
        this.options.logger.warn({ records: records.length, timeoutMs: this.options.produceTimeoutMs }, 'Kafka did not acknowledge in time: spooling');
        this.track(send, records);
      } else {
        this.options.logger.warn({ err: describeError(result), records: records.length }, 'Kafka refused a produce call: spooling');
      }
      this.mode = 'spool';
    }
    try {
      await this.options.spool.append(records);
    } catch (error) {
      // A full spool logs itself; both are rate-limited, as a line per refused batch would flood the log.
      if (!isSpoolFull(error)) this.spoolFailures.hit((occurrences) => { this.options.logger.error({ err: describeError(error), occurrences }, 'cannot spool callbacks: answering 503'); });
      for (const w of batch) w.reject(error);
      return;
    }
    this.options.metrics.spooled.inc(records.length);
    for (const w of batch) w.resolve('spooled');
    this.ensureDraining();
  }

  /** Remembers what a send abandoned at its deadline published, if it ever completes. */
  private track(send: Promise<void>, records: readonly PublishedRecord[]): void {
    const settled = send.then(
      () => { for (const r of records) this.publishedLate.add(r.id); },
      () => undefined,
    ).finally(() => { this.abandoned.delete(settled); });
    this.abandoned.add(settled);
  }

  private ensureDraining(): void {
    if (this.draining !== undefined || this.stopped) return;
    this.draining = this.drainLoop().finally(() => { this.draining = undefined; });
  }

  private async drainLoop(): Promise<void> {
    const { spool, producer, topic, logger } = this.options;
    let backoff = this.options.retryInitialMs ?? 200;
    let drained = 0;
    while (!this.stopped) {
      // Checked and acted on without an await in between, so an append cannot slip past a mode switch.
      if (spool.depth === 0) {
        this.mode = 'direct';
        this.publishedLate.clear();
        if (drained > 0) logger.info({ drained }, 'spool drained: publishing to Kafka directly again');
        return;
      }
      try {
        while (this.abandoned.size > 0) await Promise.all([...this.abandoned]);
        const batch = await spool.read(this.options.drainBatch ?? 2000);
        const fresh = batch.records.filter((r) => !this.publishedLate.has(idOf(r)));
        await producer.send(topic, fresh);
        await spool.ack(batch);
        drained += batch.records.length;
        backoff = this.options.retryInitialMs ?? 200;
      } catch (error) {
        logger.warn({ err: describeError(error), depth: spool.depth, retryInMs: backoff }, 'cannot drain the spool yet');
        try {
          await sleep(backoff, undefined, { signal: this.stopSignal.signal });
        } catch {
          return;
        }
        backoff = Math.min(backoff * 2, this.options.retryMaxMs ?? 5000);
      }
    }
  }
}

function idOf(record: OutRecord): string {
  try {
    const id = (JSON.parse(record.value.toString('utf8')) as { id?: unknown }).id;
    return typeof id === 'string' ? id : '';
  } catch {
    return '';
  }
}
