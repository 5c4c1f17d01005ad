/**
 * ⚑ A reconcile reads the store only after the consumer has loaded everything published up to T1 + grace:
 * once that moment has passed, the topics' end offsets are the watermark, and the consumer group's
 * committed offsets (it commits only after ClickHouse took the rows) must reach it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';
import type { KafkaGateway } from '../../lib/kafka.ts';

export type OffsetSource = Pick<KafkaGateway, 'endOffsets' | 'committedOffsets'>;

/** Partitions whose committed offset is below the watermark; an empty partition needs nothing. */
export function lagging(watermark: ReadonlyMap<number, string>, committed: ReadonlyMap<number, string>): number[] {
  const behind: number[] = [];
  for (const [partition, end] of watermark) {
    if (end === '0') continue;
    const done = committed.get(partition) ?? '-1';
    if (BigInt(done) < BigInt(end)) behind.push(partition);
  }
  return behind;
}

export interface WaitForLoadedOptions {
  readonly offsets: OffsetSource;
  readonly groupId: string;
  readonly topics: readonly string[];
  /** T1 + grace, epoch ms: what is published before it must be loaded. */
  readonly notBefore: number;
  readonly timeoutMs: number;
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

export async function waitForLoaded(options: WaitForLoadedOptions): Promise<void> {
  const now = options.now ?? Date.now;
  const pollMs = options.pollMs ?? 200;
  const wait = options.notBefore - now();
  if (wait > 0) await sleep(wait, undefined, options.signal === undefined ? {} : { signal: options.signal });
  const watermarks = await Promise.all(options.topics.map(async (topic) => ({ topic, watermark: await options.offsets.endOffsets(topic) })));
  const deadline = now() + options.timeoutMs;
  for (;;) {
    const behind: string[] = [];
    for (const { topic, watermark } of watermarks) {
      const parts = lagging(watermark, await options.offsets.committedOffsets(options.groupId, topic));
      if (parts.length > 0) behind.push(`${topic} partitions ${parts.join(',')}`);
    }
    if (behind.length === 0) return;
    if (now() >= deadline) {
      throw new WxsyncError(ErrorCode.StoreBehind, `the consumer group ${options.groupId} has not loaded what was published before the snapshot ended (${behind.join('; ')}) after ${options.timeoutMs} ms; is the consumer role running?`, {
        retriable: true, details: { behind },
      });
    }
    await sleep(pollMs, undefined, options.signal === undefined ? {} : { signal: options.signal });
  }
}
