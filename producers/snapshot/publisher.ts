/**
 * Publishes a stream of records in order with one Kafka send in flight at a time, each send carrying every
 * record queued while the previous one was out. Waiting for each page's acks=all round trip (and its
 * checkpoint) before fetching the next held the snapshot producer to a third of the pager's rate; here the
 * caller fetches on while pages are out, and a batch of them costs one round trip.
 *
 * One send at a time, not several: kafkajs numbers an idempotent producer's batches when it builds a request
 * and takes the numbers back when one fails, so a failure among concurrent sends to one partition would leave
 * the later ones out of sequence. It also makes the order of acknowledgements the order of the records.
 */
import type { OutRecord, RecordProducer } from '../../lib/kafka.ts';

export interface PublisherOptions<T> {
  readonly producer: RecordProducer;
  readonly topic: string;
  /**
   * Bytes one send may carry, records with their keys and overhead; a record larger than that goes alone.
   * Kafka refuses a batch above the topic's max.message.bytes, and all the records of one key are one batch.
   */
  readonly maxSendBytes: number;
  /** Called once per acknowledged send with its items in order, before anything later is sent. */
  readonly onAcked: (items: readonly T[]) => void;
}

interface Entry<T> {
  readonly item: T;
  readonly record: OutRecord;
  readonly bytes: number;
}

/** A record's framing in a Kafka batch (lengths, offset and timestamp deltas, headers) is at most this. */
const RECORD_OVERHEAD_BYTES = 64;
/** The batch header (61 bytes) with room to spare. */
const BATCH_OVERHEAD_BYTES = 1024;

export function sendBytes(record: OutRecord): number {
  return record.value.length + (record.key === null ? 0 : Buffer.byteLength(record.key)) + RECORD_OVERHEAD_BYTES;
}

export class BatchPublisher<T> {
  private readonly queue: Entry<T>[] = [];
  /** Bytes queued or in flight: `publish` waits while two full sends' worth wait, one out and one filling. */
  private pendingBytes = 0;
  private sending: Promise<void> | undefined;
  private failure: { readonly error: unknown } | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly budget: number;

  constructor(private readonly options: PublisherOptions<T>) {
    this.budget = options.maxSendBytes - BATCH_OVERHEAD_BYTES;
  }

  /**
   * Queues a record and returns once it is queued, not sent; waits while the queue is full. Rejects with the
   * error of a failed send: that send and everything queued after it is dropped, never sent.
   */
  async publish(item: T, record: OutRecord): Promise<void> {
    this.throwIfFailed();
    while (this.pendingBytes > 0 && this.pendingBytes >= 2 * this.budget) {
      await new Promise<void>((resolve) => { this.waiters.add(resolve); });
      this.throwIfFailed();
    }
    const bytes = sendBytes(record);
    this.queue.push({ item, record, bytes });
    this.pendingBytes += bytes;
    this.sending ??= this.send();
  }

  /** Resolves once everything queued is acknowledged; rejects with the error of a failed send. */
  async drain(): Promise<void> {
    while (this.sending !== undefined) await this.sending;
    this.throwIfFailed();
  }

  private async send(): Promise<void> {
    try {
      while (this.queue.length > 0 && this.failure === undefined) {
        let bytes = 0;
        let count = 0;
        for (const entry of this.queue) {
          if (count > 0 && bytes + entry.bytes > this.budget) break;
          bytes += entry.bytes;
          count += 1;
        }
        const batch = this.queue.slice(0, count);
        try {
          await this.options.producer.send(this.options.topic, batch.map((e) => e.record));
          this.queue.splice(0, count);
          this.pendingBytes -= bytes;
          this.options.onAcked(batch.map((e) => e.item));
        } catch (error) {
          this.failure = { error };
        }
        this.wakeAll();
      }
    } finally {
      this.queue.length = 0;
      this.sending = undefined;
      this.wakeAll();
    }
  }

  private wakeAll(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }
}
