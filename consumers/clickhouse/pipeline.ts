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
  /** Writes in flight at once: one store insert is mostly single-threaded, so two use both cores. */
  readonly maxConcurrentWrites: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** Stalled: rows have waited this long without a set being stored (see stallState). */
  readonly stallMs: number;
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

interface Flush {
  readonly entries: readonly Entry[];
  readonly size: number;
  state: 'writing' | 'written' | 'abandoned';
}

const HEARTBEAT_EVERY_MS = 2000;

export interface StallInput {
  /** Rows queued or being written. */
  readonly waitingRows: number;
  /** When rows last started to wait after nothing did. */
  readonly waitingSince: number;
  /** When a set was last stored with every set formed before it (what lets offsets move on). */
  readonly lastStoredAt: number;
  readonly now: number;
  readonly stallMs: number;
}

export interface StallState {
  readonly stalled: boolean;
  readonly secondsSinceWrite: number;
}

/**
 * Stalled means records wait and nothing has been stored for longer than `stallMs`, counted from the later of
 * the last stored set and the moment the wait began: an idle consumer is never stalled, and one that receives
 * a record after a quiet hour has the full `stallMs` to store it. Progress is counted in formation order, so
 * a later set written while an earlier one keeps failing does not hide the stall.
 */
export function stallState(input: StallInput): StallState {
  const since = Math.max(input.lastStoredAt, input.waitingSince);
  return {
    stalled: input.waitingRows > 0 && input.now - since > input.stallMs,
    secondsSinceWrite: Math.max(0, input.now - input.lastStoredAt) / 1000,
  };
}

/**
 * The consumer's engine: it owns batching, retries and acknowledgement, so the writer only writes.
 * Rows from many Kafka batches are written as one set; several sets may be written at once, but offsets
 * are committed strictly in the order the sets were formed and only once every earlier set is stored: a
 * failed write is retried with backoff, never skipped, and nothing after it is committed meanwhile.
 */
export class LoadPipeline {
  readonly stats: PipelineStats = { flushes: 0, rowsWritten: 0, retries: 0, dlq: 0, commitFailures: 0 };
  private pending: Entry[] = [];
  private pendingRows = 0;
  private inFlightRows = 0;
  private oldestAt = 0;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** Flushes in formation order; the head is committed once written. */
  private readonly flushes: Flush[] = [];
  private writing = 0;
  private committing: Promise<void> = Promise.resolve();
  private readonly committed = new Map<string, bigint>();
  private readonly spaceWaiters = new Set<() => void>();
  private readonly idleWaiters = new Set<() => void>();
  private readonly abort = new AbortController();
  private closing = false;
  /** Set once a set was abandoned: from then on nothing may be committed, whatever finishes later. */
  private abandoned = false;
  private lastStoredAt = Date.now();
  private waitingSince = Date.now();

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
    if (this.pendingRows + this.inFlightRows === 0) this.waitingSince = Date.now();
    if (this.pending.length === 0) this.oldestAt = Date.now();
    this.pending.push({ routed, size, ack });
    this.pendingRows += size;
    this.schedule();
  }

  /** Whether records wait with nothing stored for too long, and how long ago a set was last stored. */
  stall(now = Date.now()): StallState {
    return stallState({
      waitingRows: this.pendingRows + this.inFlightRows, waitingSince: this.waitingSince, lastStoredAt: this.lastStoredAt, now, stallMs: this.options.stallMs,
    });
  }

  /**
   * Writes what is queued and stops. Gives the writes until `deadlineMs`; past it the queued sets are left
   * uncommitted, so Kafka redelivers them to the next consumer (idempotent, nothing lost).
   */
  async close(deadlineMs: number): Promise<void> {
    this.closing = true;
    for (const wake of this.spaceWaiters) wake();
    clearTimeout(this.lingerTimer);
    this.startFlushes(true);
    let timer: NodeJS.Timeout | undefined;
    const idle = this.whenIdle();
    const finished = await Promise.race([
      idle.then(() => true),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => { resolve(false); }, deadlineMs); }),
    ]);
    clearTimeout(timer);
    if (!finished) {
      this.logger.warn({ pendingRows: this.pendingRows + this.inFlightRows }, 'stopping with rows unwritten; Kafka will redeliver them');
      this.abort.abort();
      await idle;
    }
    await this.committing;
  }

  /** Flushes a full set now; otherwise (re)arms the timer that flushes what waits once it is due. */
  private schedule(): void {
    if (this.pendingRows >= this.options.maxRows) this.startFlushes(false);
    if (this.pending.length === 0) return;
    clearTimeout(this.lingerTimer);
    const age = Date.now() - this.oldestAt;
    const wait = Math.max(0, Math.min(this.options.lingerMs, this.options.maxWaitMs - age));
    this.lingerTimer = setTimeout(() => { this.startFlushes(true); }, wait);
  }

  /** Starts writes while there is room: always when `due` (timer, close), else only full sets. */
  private startFlushes(due: boolean): void {
    while (this.pending.length > 0 && this.writing < this.options.maxConcurrentWrites && !this.abort.signal.aborted
      && (due || this.closing || this.pendingRows >= this.options.maxRows)) {
      const flush: Flush = { entries: this.pending, size: this.pendingRows, state: 'writing' };
      this.pending = [];
      this.pendingRows = 0;
      this.inFlightRows += flush.size;
      this.writing += 1;
      this.flushes.push(flush);
      void this.runFlush(flush);
    }
    if (this.pending.length === 0) clearTimeout(this.lingerTimer);
  }

  private async runFlush(flush: Flush): Promise<void> {
    const routed = emptyRouted();
    for (const entry of flush.entries) appendRouted(routed, entry.routed);
    const written = await this.writeWithRetry(routed);
    flush.state = written ? 'written' : 'abandoned';
    if (written) {
      this.stats.flushes += 1;
      this.stats.rowsWritten += routedSize(routed) - routed.dlq.length;
      this.stats.dlq += routed.dlq.length;
    }
    this.committing = this.committing.then(() => this.commitWrittenHead());
    await this.committing;
    this.writing -= 1;
    this.inFlightRows -= flush.size;
    for (const wake of this.spaceWaiters) wake();
    // What waited for a free writer is flushed now or by a fresh timer: its own timer may have fired while
    // every writer was busy, and no new record may ever come to arm another.
    if (this.closing) this.startFlushes(true);
    else this.schedule();
    if (this.writing === 0 && this.pending.length === 0) for (const wake of this.idleWaiters) wake();
  }

  /** Commits the written flushes at the head of the formation order; stops at the first one still writing. */
  private async commitWrittenHead(): Promise<void> {
    while (!this.abandoned && this.flushes[0] !== undefined && this.flushes[0].state !== 'writing') {
      const head = this.flushes.shift() as Flush;
      if (head.state === 'abandoned') {
        // Nothing after an unwritten set may be committed: Kafka must redeliver from it.
        this.abandoned = true;
        return;
      }
      this.lastStoredAt = Date.now();
      await this.commitEntries(head.entries);
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

  private whenIdle(): Promise<void> {
    if (this.writing === 0 && this.pending.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = (): void => { this.idleWaiters.delete(wake); resolve(); };
      this.idleWaiters.add(wake);
    });
  }

  private async waitForSpace(): Promise<void> {
    await new Promise<void>((resolve) => {
      const wake = (): void => { clearTimeout(timer); this.spaceWaiters.delete(wake); resolve(); };
      const timer = setTimeout(wake, HEARTBEAT_EVERY_MS);
      this.spaceWaiters.add(wake);
    });
  }
}
