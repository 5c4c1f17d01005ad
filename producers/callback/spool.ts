import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';
import type { OutRecord } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';

/**
 * The local spool: where an accepted callback waits, fsynced, while Kafka is unreachable.
 *
 * Append-only segment files `<seq>.seg` of records framed as
 *   u32 payload length ‖ u32 crc32(payload) ‖ payload = u16 key length (0xffff: null key) ‖ key ‖ value
 * and a `position` file naming the first record not yet acknowledged by Kafka. Appends are fsynced before
 * they resolve (the request is answered `success` only then). On open, a torn or corrupt tail (a crash
 * mid-append, whose request was never answered) is cut off. Records are drained in append order; a segment
 * is deleted once everything in it is acknowledged, and the writer rolls to a new segment then, so a drained
 * spool takes no space.
 */

const HEADER = 8;
const NULL_KEY = 0xffff;
const MAX_PAYLOAD = 16 * 1024 * 1024;
/** A busy outage rolls segments at this size, so acknowledged ones can be deleted while the outage lasts. */
const SEGMENT_ROLL_BYTES = 64 * 1024 * 1024;
const POSITION = 'position';

interface Segment {
  readonly seq: number;
  /** Bytes of complete, fsynced records. */
  size: number;
}

export interface SpoolBatch {
  readonly records: readonly OutRecord[];
  /** Where the next batch starts; hand it to ack() once Kafka acknowledged `records`. */
  readonly next: { readonly seq: number; readonly offset: number };
}

function segmentName(seq: number): string {
  return `${String(seq).padStart(12, '0')}.seg`;
}

function failure(what: string, error: unknown): WxsyncError {
  return new WxsyncError(ErrorCode.SpoolFailed, `spool: ${what}: ${(error as Error).message}`, { cause: error });
}

export function frame(record: OutRecord): Buffer {
  const key = record.key === null ? Buffer.alloc(0) : Buffer.from(record.key, 'utf8');
  if (key.length >= NULL_KEY) throw new RangeError('a spooled record key must be shorter than 65535 bytes');
  const payload = Buffer.allocUnsafe(2 + key.length + record.value.length);
  payload.writeUInt16BE(record.key === null ? NULL_KEY : key.length, 0);
  key.copy(payload, 2);
  record.value.copy(payload, 2 + key.length);
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt32BE(payload.length, 0);
  header.writeUInt32BE(crc32(payload), 4);
  return Buffer.concat([header, payload]);
}

/** Complete records of `data` from its start, and the byte length they cover; stops at the first bad frame. */
export function unframe(data: Buffer, max = Number.POSITIVE_INFINITY): { records: OutRecord[]; bytes: number } {
  const records: OutRecord[] = [];
  let at = 0;
  while (records.length < max && data.length - at >= HEADER) {
    const length = data.readUInt32BE(at);
    if (length < 2 || length > MAX_PAYLOAD || data.length - at - HEADER < length) break;
    const payload = data.subarray(at + HEADER, at + HEADER + length);
    if (crc32(payload) !== data.readUInt32BE(at + 4)) break;
    const keyLength = payload.readUInt16BE(0);
    const keyBytes = keyLength === NULL_KEY ? 0 : keyLength;
    if (2 + keyBytes > payload.length) break;
    records.push({
      key: keyLength === NULL_KEY ? null : payload.subarray(2, 2 + keyBytes).toString('utf8'),
      value: Buffer.from(payload.subarray(2 + keyBytes)),
    });
    at += HEADER + length;
  }
  return { records, bytes: at };
}

export class Spool {
  private writer: FileHandle;
  private lock: Promise<unknown> = Promise.resolve();
  private broken: WxsyncError | undefined;
  private position: { seq: number; offset: number };

  private constructor(
    private readonly dir: string,
    private readonly segments: Segment[],
    writer: FileHandle,
    position: { seq: number; offset: number },
    private pending: number,
    private readonly logger: Logger,
  ) {
    this.writer = writer;
    this.position = position;
  }

  /** Opens (creating) the spool in `dir`, cutting off a torn tail and counting what an earlier process left. */
  static async open(dir: string, logger: Logger): Promise<Spool> {
    try {
      await mkdir(dir, { recursive: true });
      let position = { seq: 1, offset: 0 };
      try {
        const text = await readText(path.join(dir, POSITION));
        const [seq, offset] = text.trim().split(' ').map(Number);
        if (Number.isSafeInteger(seq) && Number.isSafeInteger(offset)) position = { seq: seq ?? 1, offset: offset ?? 0 };
      } catch {
        // No position yet: everything in the spool is unacknowledged.
      }
      const seqs = (await readdir(dir)).map((n) => /^(\d{12})\.seg$/.exec(n)?.[1]).filter((s): s is string => s !== undefined).map(Number).sort((a, b) => a - b);
      const segments: Segment[] = [];
      let pending = 0;
      for (const seq of seqs) {
        const file = path.join(dir, segmentName(seq));
        if (seq < position.seq) {
          await rm(file, { force: true });
          continue;
        }
        const data = await readBuffer(file);
        const { records, bytes } = unframe(data);
        if (bytes < data.length) {
          logger.warn({ segment: file, kept: bytes, cut: data.length - bytes }, 'spool: cut a torn or corrupt tail left by a crash');
          const handle = await open(file, 'r+');
          try {
            await handle.truncate(bytes);
            await handle.sync();
          } finally {
            await handle.close();
          }
        }
        const from = seq === position.seq ? Math.min(position.offset, bytes) : 0;
        pending += seq === position.seq ? unframe(data.subarray(from, bytes)).records.length : records.length;
        segments.push({ seq, size: bytes });
      }
      if (segments.length === 0) segments.push({ seq: Math.max(position.seq, 1), size: 0 });
      const first = segments[0] as Segment;
      if (first.seq !== position.seq) position = { seq: first.seq, offset: 0 };
      position.offset = Math.min(position.offset, first.size);
      const last = segments[segments.length - 1] as Segment;
      const writer = await open(path.join(dir, segmentName(last.seq)), 'a+');
      if (pending > 0) logger.info({ dir, pending }, 'spool: records left by an earlier process will be drained');
      return new Spool(dir, segments, writer, position, pending, logger);
    } catch (error) {
      throw error instanceof WxsyncError ? error : failure(`cannot open ${dir}`, error);
    }
  }

  /** Records appended and not yet acknowledged. */
  get depth(): number {
    return this.pending;
  }

  /** Appends and fsyncs; resolves only when the records would survive a crash. */
  append(records: readonly OutRecord[]): Promise<void> {
    return this.exclusive(async () => {
      if (this.broken !== undefined) throw this.broken;
      const data = Buffer.concat(records.map(frame));
      const last = this.segments[this.segments.length - 1] as Segment;
      try {
        if (last.size >= SEGMENT_ROLL_BYTES) await this.roll();
        await this.writer.write(data, 0, data.length, null);
        await this.writer.datasync();
      } catch (error) {
        // A partial frame must not stay in front of later appends (the next open would cut them off with it).
        // If even the cut fails, the spool refuses every later append: those requests get 503, not a lie.
        try {
          await this.writer.truncate((this.segments[this.segments.length - 1] as Segment).size);
        } catch (truncateError) {
          this.broken = failure('cannot cut a failed append', truncateError);
        }
        throw failure('cannot append', error);
      }
      (this.segments[this.segments.length - 1] as Segment).size += data.length;
      this.pending += records.length;
    });
  }

  /** Up to `max` records from the first unacknowledged one, in append order. */
  async read(max: number, maxBytes = 4 * 1024 * 1024): Promise<SpoolBatch> {
    let { seq, offset } = this.position;
    for (;;) {
      const index = this.segments.findIndex((s) => s.seq === seq);
      const segment = this.segments[index];
      if (segment === undefined) return { records: [], next: { seq, offset } };
      const next = this.segments[index + 1];
      if (offset >= segment.size) {
        if (next === undefined) return { records: [], next: { seq, offset } };
        seq = next.seq;
        offset = 0;
        continue;
      }
      const length = Math.min(segment.size - offset, maxBytes);
      const data = Buffer.allocUnsafe(length);
      const handle = await open(path.join(this.dir, segmentName(seq)), 'r');
      try {
        await handle.read(data, 0, length, offset);
      } finally {
        await handle.close();
      }
      const { records, bytes } = unframe(data, max);
      if (records.length === 0) throw new WxsyncError(ErrorCode.SpoolFailed, `spool: a record at ${segmentName(seq)}:${offset} is larger than ${maxBytes} bytes or corrupt`);
      return { records, next: { seq, offset: offset + bytes } };
    }
  }

  /** Kafka acknowledged a batch from read(): persist the new position and delete segments left behind. */
  ack(batch: SpoolBatch): Promise<void> {
    return this.exclusive(async () => {
      this.position = { ...batch.next };
      this.pending -= batch.records.length;
      const last = this.segments[this.segments.length - 1] as Segment;
      if (this.pending === 0 && last.seq === this.position.seq && last.size === this.position.offset && last.size > 0) await this.roll();
      await this.savePosition();
      while ((this.segments[0]?.seq ?? Number.POSITIVE_INFINITY) < this.position.seq) {
        const done = this.segments.shift() as Segment;
        await rm(path.join(this.dir, segmentName(done.seq)), { force: true });
      }
    });
  }

  close(): Promise<void> {
    return this.exclusive(() => this.writer.close());
  }

  /** A new writer segment; when everything was acknowledged the position moves to its start. */
  private async roll(): Promise<void> {
    const last = this.segments[this.segments.length - 1] as Segment;
    const seq = last.seq + 1;
    const writer = await open(path.join(this.dir, segmentName(seq)), 'a+');
    await this.writer.close();
    this.writer = writer;
    this.segments.push({ seq, size: 0 });
    if (this.position.seq === last.seq && this.position.offset === last.size) this.position = { seq, offset: 0 };
  }

  private async savePosition(): Promise<void> {
    const file = path.join(this.dir, POSITION);
    const handle = await open(`${file}.tmp`, 'w');
    try {
      await handle.writeFile(`${this.position.seq} ${this.position.offset}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(`${file}.tmp`, file);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch((error: unknown) => { this.logger.debug({ err: error }, 'spool operation failed'); });
    return run;
  }
}

async function readBuffer(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

async function readText(file: string): Promise<string> {
  return (await readBuffer(file)).toString('utf8');
}
