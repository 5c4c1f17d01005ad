import type { ErrorCode } from '../errors.ts';

export const DLQ_VERSION = 1;
/** How much of a rejected value the DLQ record keeps; a huge poison record must not make a huge DLQ record. */
export const DLQ_MAX_VALUE_BYTES = 64 * 1024;

/** A record of wx.dlq: what was rejected, where it came from, and why. */
export interface DlqRecord {
  readonly v: typeof DLQ_VERSION;
  readonly code: ErrorCode;
  readonly reason: string;
  readonly source: { readonly topic: string; readonly partition: number; readonly offset: string; readonly key: string | null };
  /** The original value, base64, cut to DLQ_MAX_VALUE_BYTES. */
  readonly value: string;
  readonly valueBytes: number;
  readonly truncated: boolean;
  readonly at: number;
}

export interface RejectedRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

export function dlqRecord(rejected: RejectedRecord, code: ErrorCode, reason: string, at: number): DlqRecord {
  const value = rejected.value ?? Buffer.alloc(0);
  const kept = value.subarray(0, DLQ_MAX_VALUE_BYTES);
  return {
    v: DLQ_VERSION,
    code,
    reason,
    source: {
      topic: rejected.topic,
      partition: rejected.partition,
      offset: rejected.offset,
      key: rejected.key === null ? null : rejected.key.subarray(0, 1024).toString('utf8'),
    },
    value: kept.toString('base64'),
    valueBytes: value.length,
    truncated: kept.length < value.length,
    at,
  };
}

export function encodeDlqRecord(record: DlqRecord): Buffer {
  return Buffer.from(JSON.stringify(record));
}
