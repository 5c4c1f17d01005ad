import { backoffDelay, sleep } from '../../lib/backoff.ts';
import { ErrorCode, WxsyncError, describeError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { appendRouted, emptyRouted, routedSize, type Routed } from './route.ts';
import type { RoutedWriter } from './sink.ts';

export interface PipelineOptions {
  /** Flush as soon as this many rows wait. */
  readonly maxRows: number;
  /** Flush when the oldest waiting row is this old. */
  readonly maxWaitMs: number;
  /** Flush when nothing new arrived for this long (low latency when traffic is light). */
  readonly lingerMs: number;
  /** Submitters block while this many rows wait or are being written (bounded memory). */
  readonly maxPendingRows: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
}

/** Where a submitted set came from: committed as "everything before nextOffset" once it is stored. */
export interface Ack {
  readonly topic: string;
  readonly partition: number;
  readonly nextOffset: bigint;
  isCurrent(): boolean;
}

export type Committer = (topic: string, partition: number, nextOffset: string) => Promise<void>;

export interface PipelineStats {
  flushes: number;
  rowsWritten: number;
  retries: number;
  dlq: number;
  commitFailures: number;
}

interface Entry {
  readonly routed: Routed;
  readonly size: number;
  readonly ack: Ack;
}

const HEARTBEAT_EVERY_MS = 2000;

/**
 * The consumer's engine: it owns batching, retries and acknowledgement, so the writer only writes.
 * Rows from many Kafka batches are written as one set; offsets are committed only after that set is stored;
 * a failed write is retried with backoff, never skipped, and nothing after it is committed meanwhile.
 */
export class LoadPipeline {
  readonly stats: PipelineStats = { flushes: 0, rowsWritten: 0, retries: 0, dlq: 0, commitFailures: 0 };
  private pending: Entry[] = [];
  private pendingRows = 0;
  private inFlightRows = 0;
  private oldestAt = 0;
  private lingerTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly committed = new Map<string, bigint>();
  private readonly spaceWaiters = new Set<() => void>();
  private readonly abort = new AbortController();
  private closing = false;

  constructor(
    private readonly options: PipelineOptions,
    private readonly writer: RoutedWriter,
    private readonly commit: Committer,
    private readonly logger: Logger,
  ) {}

  /**
   * Queues a routed set for writing. Resolves once it is queued (not written): the Kafka fetch goes on while
   * earlier sets are written. Blocks while too much waits, heart-beating so the group keeps this member.
   */
  async submit(routed: Routed, ack: Ack, heartbeat: () => Promise<void>): Promise<void> {
    const size = routedSize(routed);
    while (!this.closing && this.pendingRows + this.inFlightRows > 0
      && this.pendingRows + this.inFlightRows + size > this.options.maxPendingRows) {
      await this.waitForSpace();
      await heartbeat();
    }
    if (this.closing) throw new WxsyncError(ErrorCode.ShuttingDown, 'the consumer is stopping', { retriable: true });
    if (this.pending.length === 0) this.oldestAt = Date.now();
    this.pending.push({ routed, size, ack });
    this.pendingRows += size;
    this.schedule();
  }

  /**
   * Writes what is queued and stops. Gives the write until `deadlineMs`; past it the queued sets are left
   * uncommitted, so Kafka redelivers them to the next consumer (idempotent, nothing lost).
   */
  async close(deadlineMs: number): Promise<void> {
    this.closing = true;
    for (const wake of this.spaceWaiters) wake();
    clearTimeout(this.lingerTimer);
    const done = this.kick();
    const timedOut = Symbol('timeout');
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      done,
      new Promise<typeof timedOut>((resolve) => { timer = setTimeout(() => { resolve(timedOut); }, deadlineMs); }),
    ]);
    clearTimeout(timer);
    if (result === timedOut) {
      this.logger.warn({ pendingRows: this.pendingRows + this.inFlightRows }, 'stopping with rows unwritten; Kafka will redeliver them');
      this.abort.abort();
      await done;
    }
  }

  private schedule(): void {
    if (this.pendingRows >= this.options.maxRows) {
      void this.kick();
      return;
    }
    clearTimeout(this.lingerTimer);
    const age = Date.now() - this.oldestAt;
    const wait = Math.max(0, Math.min(this.options.lingerMs, this.options.maxWaitMs - age));
    this.lingerTimer = setTimeout(() => { void this.kick(); }, wait);
  }

  private kick(): Promise<void> {
    this.flushing ??= this.flushLoop().finally(() => { this.flushing = undefined; });
    return this.flushing;
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0 && !this.abort.signal.aborted) {
      clearTimeout(this.lingerTimer);
      const entries = this.pending;
      this.pending = [];
      this.inFlightRows = this.pendingRows;
      this.pendingRows = 0;
      const routed = emptyRouted();
      for (const entry of entries) appendRouted(routed, entry.routed);
      const written = await this.writeWithRetry(routed);
      this.inFlightRows = 0;
      for (const wake of this.spaceWaiters) wake();
      if (!written) return;
      this.stats.flushes += 1;
      this.stats.rowsWritten += routedSize(routed) - routed.dlq.length;
      this.stats.dlq += routed.dlq.length;
      await this.commitEntries(entries);
      // What arrived during the write is flushed now only if it is already due; otherwise its timer does it.
      if (this.pending.length > 0 && !this.closing && this.pendingRows < this.options.maxRows
        && Date.now() - this.oldestAt < this.options.maxWaitMs) {
        this.schedule();
        return;
      }
    }
  }

  private async writeWithRetry(routed: Routed): Promise<boolean> {
    for (let attempt = 0; !this.abort.signal.aborted; attempt += 1) {
      try {
        const started = Date.now();
        await this.writer.write(routed);
        this.logger.debug({ rows: routedSize(routed), ms: Date.now() - started }, 'flushed');
        return true;
      } catch (error) {
        this.stats.retries += 1;
        const delay = backoffDelay(attempt, this.options.retryInitialMs, this.options.retryMaxMs);
        this.logger.warn({ attempt: attempt + 1, delayMs: delay, err: describeError(error) }, 'write failed; retrying the same batch');
        await sleep(delay, this.abort.signal);
      }
    }
    return false;
  }

  private async commitEntries(entries: readonly Entry[]): Promise<void> {
    const next = new Map<string, { topic: string; partition: number; offset: bigint }>();
    for (const { ack } of entries) {
      if (!ack.isCurrent()) continue;
      const key = `${ack.topic}\u0000${ack.partition}`;
      const seen = next.get(key);
      if (seen === undefined || ack.nextOffset > seen.offset) next.set(key, { topic: ack.topic, partition: ack.partition, offset: ack.nextOffset });
    }
    for (const [key, { topic, partition, offset }] of next) {
      // A re-fetch after a rebalance may bring older offsets again: committing them would only cause
      // redelivery, never loss, but there is no reason to move the group backwards.
      if ((this.committed.get(key) ?? -1n) >= offset) continue;
      try {
        await this.commit(topic, partition, offset.toString());
        this.committed.set(key, offset);
      } catch (error) {
        // The rows are stored; an uncommitted offset only means they are delivered (and deduplicated) again.
        this.stats.commitFailures += 1;
        this.logger.warn({ topic, partition, offset: offset.toString(), err: describeError(error) }, 'offset commit failed');
      }
    }
  }

  private async waitForSpace(): Promise<void> {
    await new Promise<void>((resolve) => {
      const wake = (): void => { clearTimeout(timer); this.spaceWaiters.delete(wake); resolve(); };
      const timer = setTimeout(wake, HEARTBEAT_EVERY_MS);
      this.spaceWaiters.add(wake);
    });
  }
}
