import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, readdir, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { REPEAT_LOG_INTERVAL_MS } from '../../lib/log-throttle.ts';
import { ErrorCode, WxsyncError, isWxsyncError } from '../../lib/errors.ts';
import type { OutRecord } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';
import { Counter, Gauge, type Registry } from '../../lib/metrics.ts';

/**
 * The local spool: where an accepted callback waits, fsynced, while Kafka is unreachable.
 *
 * Append-only segment files `<seq>.seg` of records framed as
 *   magic ‖ u32 payload length ‖ u32 crc32(length ‖ payload) ‖ payload = u16 key length (0xffff: null key) ‖ key ‖ value
 * and a `position` file naming the first record not yet acknowledged by Kafka. Appends are fsynced before
 * they resolve (the request is answered `success` only then). The magic marker makes the framing
 * resynchronisable: a record that does not check out (a flipped bit, a bad length) is skipped by scanning
 * forward to the next marker whose record checks out, so one bad record never takes the valid ones after it
 * along. Bad bytes with no valid record after them are a torn tail (a crash mid-append, whose request was
 * never answered) and are cut off on open. Records are drained in append order; a segment is deleted once
 * everything in it is acknowledged, and the writer rolls to a new segment then, so a drained spool takes no
 * space. Segments of the earlier format (no magic, crc over the payload only) are still read, never appended
 * to, and deleted once drained.
 *
 * One process at a time: a `lock` file naming host:pid keeps a second spool off the directory, since two
 * writers would interleave appends and each would delete what the other has not drained.
 */

/** 0xf5 never occurs in UTF-8, so the marker cannot appear inside a key or a JSON value. */
const MAGIC = Buffer.from([0xf5, 0x57, 0x58, 0x02]);
const HEADER = 12;
const LEGACY_HEADER = 8;
const NULL_KEY = 0xffff;
const MAX_PAYLOAD = 16 * 1024 * 1024;
/** A busy outage rolls segments at this size, so acknowledged ones can be deleted while the outage lasts. */
const SEGMENT_ROLL_BYTES = 64 * 1024 * 1024;
const POSITION = 'position';
const LOCK = 'lock';
/** Where the bytes of skipped corrupt records are kept for a post-mortem. */
const CORRUPT_DIR = 'corrupt';

/** Bytes of a segment that hold no valid record, skipped when reading. */
interface Hole {
  readonly from: number;
  readonly to: number;
}

interface Segment {
  readonly seq: number;
  /** Bytes of complete, fsynced records (and of skipped holes between them). */
  size: number;
  /** Written in the earlier format: read only, never appended to. */
  readonly legacy: boolean;
  readonly holes: readonly Hole[];
}

export interface SpoolBatch {
  readonly records: readonly OutRecord[];
  /** Where the next batch starts; hand it to ack() once Kafka acknowledged `records`. */
  readonly next: { readonly seq: number; readonly offset: number };
}

export interface SpoolMetrics {
  readonly full: Counter;
  readonly corruptRecords: Counter;
  readonly corruptBytes: Counter;
}

export interface SpoolOptions {
  /** Bytes of segment files at most; an append past it is refused (retriable), so its request gets 503. */
  readonly maxBytes?: number;
  readonly metrics?: SpoolMetrics;
}

/** The spool's counters, created before it opens (corruption is found while opening); gauges read `spool()`. */
export function createSpoolMetrics(registry: Registry, spool: () => Spool | undefined): SpoolMetrics {
  const registers = [registry];
  new Gauge({ name: 'wxsync_callback_spool_bytes', help: 'Bytes of spool segment files on disk', registers, collect() { this.set(spool()?.bytes ?? 0); } });
  new Gauge({ name: 'wxsync_callback_spool_max_bytes', help: 'The spool size cap (WXSYNC_CALLBACK_SPOOL_MAX_BYTES)', registers, collect() { this.set(spool()?.maxBytes ?? 0); } });
  return {
    full: new Counter({ name: 'wxsync_callback_spool_full_total', help: 'Callbacks answered 503 because the spool was at its size cap', registers }),
    corruptRecords: new Counter({ name: 'wxsync_callback_spool_corrupt_total', help: 'Corrupt spans of spool records skipped (each kept aside under corrupt/)', registers }),
    corruptBytes: new Counter({ name: 'wxsync_callback_spool_corrupt_bytes_total', help: 'Bytes of corrupt spool records skipped', registers }),
  };
}

/** Whether an append was refused because the spool is at its cap (the caller answers 503; nothing is wrong). */
export function isSpoolFull(error: unknown): boolean {
  return isWxsyncError(error, ErrorCode.SpoolFull);
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
  const out = Buffer.allocUnsafe(HEADER + 2 + key.length + record.value.length);
  MAGIC.copy(out, 0);
  out.writeUInt32BE(out.length - HEADER, 4);
  out.writeUInt16BE(record.key === null ? NULL_KEY : key.length, HEADER);
  key.copy(out, HEADER + 2);
  record.value.copy(out, HEADER + 2 + key.length);
  out.writeUInt32BE(checksum(out, 0), 8);
  return out;
}

/** crc32 over the length field and the payload, so a corrupt length is caught as surely as a corrupt payload. */
function checksum(data: Buffer, at: number): number {
  const length = data.readUInt32BE(at + 4);
  return crc32(data.subarray(at + HEADER, at + HEADER + length), crc32(data.subarray(at + 4, at + 8)));
}

/** The byte length of the valid record at `at`, or undefined when none starts there. */
function recordAt(data: Buffer, at: number): number | undefined {
  if (data.length - at < HEADER || data.compare(MAGIC, 0, MAGIC.length, at, at + MAGIC.length) !== 0) return undefined;
  const length = data.readUInt32BE(at + 4);
  if (length < 2 || length > MAX_PAYLOAD || data.length - at - HEADER < length) return undefined;
  if (checksum(data, at) !== data.readUInt32BE(at + 8)) return undefined;
  const keyLength = data.readUInt16BE(at + HEADER);
  if (2 + (keyLength === NULL_KEY ? 0 : keyLength) > length) return undefined;
  return HEADER + length;
}

function decode(payload: Buffer): OutRecord {
  const keyLength = payload.readUInt16BE(0);
  const keyBytes = keyLength === NULL_KEY ? 0 : keyLength;
  return {
    key: keyLength === NULL_KEY ? null : payload.subarray(2, 2 + keyBytes).toString('utf8'),
    value: Buffer.from(payload.subarray(2 + keyBytes)),
  };
}

/** Complete records of `data` from its start, and the byte length they cover; stops at the first bad frame. */
export function unframe(data: Buffer, max = Number.POSITIVE_INFINITY): { records: OutRecord[]; bytes: number } {
  const records: OutRecord[] = [];
  let at = 0;
  for (let length = recordAt(data, at); length !== undefined && records.length < max; length = recordAt(data, at)) {
    records.push(decode(data.subarray(at + HEADER, at + length)));
    at += length;
  }
  return { records, bytes: at };
}

/** The earlier format (u32 length ‖ u32 crc32(payload) ‖ payload), read so segments an older version left drain. */
export function unframeLegacy(data: Buffer, max = Number.POSITIVE_INFINITY): { records: OutRecord[]; bytes: number } {
  const records: OutRecord[] = [];
  let at = 0;
  while (records.length < max && data.length - at >= LEGACY_HEADER) {
    const length = data.readUInt32BE(at);
    if (length < 2 || length > MAX_PAYLOAD || data.length - at - LEGACY_HEADER < length) break;
    const payload = data.subarray(at + LEGACY_HEADER, at + LEGACY_HEADER + length);
    if (crc32(payload) !== data.readUInt32BE(at + 4)) break;
    const keyLength = payload.readUInt16BE(0);
    if (2 + (keyLength === NULL_KEY ? 0 : keyLength) > payload.length) break;
    records.push(decode(payload));
    at += LEGACY_HEADER + length;
  }
  return { records, bytes: at };
}

/**
 * Walks a whole segment: the start of every valid record, the holes between them (bad bytes followed by a
 * valid record), and where the last valid record ends (anything after it is a torn tail).
 */
export function segmentScan(data: Buffer): { starts: number[]; holes: Hole[]; end: number } {
  const starts: number[] = [];
  const holes: Hole[] = [];
  let at = 0;
  let end = 0;
  while (at < data.length) {
    const length = recordAt(data, at);
    if (length !== undefined) {
      starts.push(at);
      at += length;
      end = at;
      continue;
    }
    let next = data.indexOf(MAGIC, at + 1);
    while (next !== -1 && recordAt(data, next) === undefined) next = data.indexOf(MAGIC, next + 1);
    if (next === -1) break;
    holes.push({ from: at, to: next });
    at = next;
  }
  return { starts, holes, end };
}

/** A segment in the earlier format: it does not start with the marker, and its first record checks out as one. */
function isLegacy(data: Buffer): boolean {
  return data.length > 0 && data.compare(MAGIC, 0, MAGIC.length, 0, Math.min(MAGIC.length, data.length)) !== 0 && unframeLegacy(data, 1).records.length === 1;
}

/** Makes a name created, renamed or removed in `dir` survive a crash (the file's own fsync does not cover it). */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface Holder {
  readonly host: string;
  readonly pid: number;
  readonly since: string;
}

/** Lock files this process holds: a second Spool on the same directory in this process is refused too. */
const heldHere = new Set<string>();

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    if (typeof value.host === 'string' && Number.isSafeInteger(value.pid) && typeof value.since === 'string') return value as Holder;
  } catch {
    // Not a lock this code wrote.
  }
  return undefined;
}

/** Whether the holder is known to be gone: only a process on this host can be checked. */
function isStale(holder: Holder, file: string): boolean {
  if (holder.host !== hostname()) return false;
  // The same pid after a restart (pid 1 in a container, every time) is this process only if it holds the lock.
  if (holder.pid === process.pid) return !heldHere.has(file);
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    // EPERM: alive, owned by another user.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Takes the directory's lock: written whole to a temporary file, then linked into place, so the lock file
 * is never seen half-written and only one link can win. A stale lock is moved aside under a name of its
 * own before being removed, so of two processes taking over the same stale lock only one removes it.
 */
async function lockDir(dir: string, logger: Logger): Promise<string> {
  const file = path.join(dir, LOCK);
  const text = `${JSON.stringify({ host: hostname(), pid: process.pid, since: new Date().toISOString() })}\n`;
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, text, { flag: 'wx' });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (heldHere.has(file)) throw held(dir, file, parseHolder(await readFile(file, 'utf8').catch(() => '')));
      try {
        await link(tmp, file);
        heldHere.add(file);
        await syncDir(dir);
        return text;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      let current: string;
      try {
        current = await readFile(file, 'utf8');
      } catch {
        continue;
      }
      const holder = parseHolder(current);
      if (holder === undefined || !isStale(holder, file)) throw held(dir, file, holder);
      const aside = `${file}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
      try {
        await rename(file, aside);
      } catch {
        continue;
      }
      if ((await readFile(aside, 'utf8')) === current) {
        logger.warn({ dir, holder: `${holder.host}:${holder.pid}`, since: holder.since }, 'spool: took over the lock of a process that is gone');
      } else {
        // Another process took the stale lock over between our read and our rename: give it back.
        await link(aside, file).catch(() => undefined);
      }
      await rm(aside, { force: true });
    }
    throw new WxsyncError(ErrorCode.SpoolFailed, `spool: cannot take the lock of ${dir}: it keeps changing hands`, { retriable: true });
  } finally {
    await rm(tmp, { force: true });
  }
}

function held(dir: string, file: string, holder: Holder | undefined): WxsyncError {
  const who = holder === undefined ? 'an unreadable lock' : `${holder.host}:${holder.pid} since ${holder.since}`;
  return new WxsyncError(
    ErrorCode.SpoolFailed,
    `spool directory ${dir} is in use by ${who} (remove ${file} only if that process is gone)`,
    { details: { lock: file, ...(holder === undefined ? {} : { host: holder.host, pid: holder.pid, since: holder.since }) } },
  );
}

async function unlockDir(dir: string, text: string): Promise<void> {
  const file = path.join(dir, LOCK);
  heldHere.delete(file);
  // Only our own lock: a lock another process took over (after we were judged gone) stays its.
  if ((await readFile(file, 'utf8').catch(() => '')) === text) await rm(file, { force: true });
}

export class Spool {
  private writer: FileHandle;
  private lock: Promise<unknown> = Promise.resolve();
  private broken: WxsyncError | undefined;
  private position: { seq: number; offset: number };
  private closed = false;
  /** Refusals since the spool was last found full, and when that was last logged. */
  private full: { refused: number; loggedAt: number; logged: number } | undefined;
  readonly maxBytes: number;
  private readonly rollBytes: number;

  private constructor(
    private readonly dir: string,
    private readonly segments: Segment[],
    writer: FileHandle,
    position: { seq: number; offset: number },
    private pending: number,
    private readonly logger: Logger,
    private readonly lockText: string,
    private readonly options: SpoolOptions,
  ) {
    this.writer = writer;
    this.position = position;
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    // At most a sixteenth of the cap is held by acknowledged records waiting for their segment to be deleted.
    this.rollBytes = Math.min(SEGMENT_ROLL_BYTES, Math.max(4096, Math.floor(this.maxBytes / 16)));
  }

  /**
   * Opens (creating) the spool in `dir`: takes its lock, cuts off a torn tail, skips (and keeps aside)
   * corrupt records in the middle, and counts what an earlier process left.
   */
  static async open(dir: string, logger: Logger, options: SpoolOptions = {}): Promise<Spool> {
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      throw failure(`cannot open ${dir}`, error);
    }
    let lockText: string;
    try {
      lockText = await lockDir(dir, logger);
    } catch (error) {
      throw error instanceof WxsyncError ? error : failure(`cannot lock ${dir}`, error);
    }
    try {
      return await Spool.load(dir, logger, lockText, options);
    } catch (error) {
      await unlockDir(dir, lockText).catch(() => undefined);
      throw error instanceof WxsyncError ? error : failure(`cannot open ${dir}`, error);
    }
  }

  private static async load(dir: string, logger: Logger, lockText: string, options: SpoolOptions): Promise<Spool> {
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
      const from = seq === position.seq ? position.offset : 0;
      let end: number;
      let holes: Hole[] = [];
      const legacy = isLegacy(data);
      if (legacy) {
        const { records, bytes } = unframeLegacy(data);
        end = bytes;
        pending += seq === position.seq ? unframeLegacy(data.subarray(Math.min(from, bytes), bytes)).records.length : records.length;
      } else {
        const scan = segmentScan(data);
        end = scan.end;
        holes = scan.holes;
        pending += scan.starts.filter((start) => start >= from).length;
        for (const hole of holes) if (hole.to > from) await setAside(dir, seq, data, hole, logger, options.metrics);
      }
      if (end < data.length) {
        logger.warn({ segment: file, kept: end, cut: data.length - end }, 'spool: cut a torn or corrupt tail left by a crash');
        const handle = await open(file, 'r+');
        try {
          await handle.truncate(end);
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      segments.push({ seq, size: end, legacy, holes });
    }
    const last = segments.at(-1);
    // Appends never go to a legacy segment: one file keeps one format.
    if (last === undefined || last.legacy) segments.push({ seq: Math.max(position.seq, (last?.seq ?? 0) + 1, 1), size: 0, legacy: false, holes: [] });
    const first = segments[0] as Segment;
    if (first.seq !== position.seq) position = { seq: first.seq, offset: 0 };
    position.offset = Math.min(position.offset, first.size);
    const writer = await open(path.join(dir, segmentName((segments.at(-1) as Segment).seq)), 'a+');
    await syncDir(dir);
    if (pending > 0) logger.info({ dir, pending }, 'spool: records left by an earlier process will be drained');
    return new Spool(dir, segments, writer, position, pending, logger, lockText, options);
  }

  /** Records appended and not yet acknowledged. */
  get depth(): number {
    return this.pending;
  }

  /** Bytes of segment files on disk: what the cap limits. */
  get bytes(): number {
    return this.segments.reduce((sum, s) => sum + s.size, 0);
  }

  /**
   * Appends and fsyncs; resolves only when the records would survive a crash. Refuses (retriably, see
   * isSpoolFull) what would take the spool past its cap: the request is answered 503 and WeChat retries,
   * rather than accepting a callback the disk cannot keep.
   */
  append(records: readonly OutRecord[]): Promise<void> {
    return this.exclusive(async () => {
      if (this.broken !== undefined) throw this.broken;
      const data = Buffer.concat(records.map(frame));
      if (this.bytes + data.length > this.maxBytes) throw this.refuseFull(records.length, data.length);
      if (this.full !== undefined) {
        this.logger.info({ dir: this.dir, refused: this.full.refused, bytes: this.bytes }, 'spool has room again: accepting callbacks');
        this.full = undefined;
      }
      const last = this.segments.at(-1) as Segment;
      try {
        if (last.size >= this.rollBytes) await this.roll();
        await this.writer.write(data, 0, data.length, null);
        await this.writer.datasync();
      } catch (error) {
        // A partial frame must not stay in front of later appends (the next open would cut them off with it).
        // If even the cut fails, the spool refuses every later append: those requests get 503, not a lie.
        try {
          await this.writer.truncate((this.segments.at(-1) as Segment).size);
        } catch (truncateError) {
          this.broken = failure('cannot cut a failed append', truncateError);
        }
        throw failure('cannot append', error);
      }
      (this.segments.at(-1) as Segment).size += data.length;
      this.pending += records.length;
    });
  }

  /** Up to `max` records from the first unacknowledged one, in append order, skipping corrupt holes. */
  async read(max: number, maxBytes = 4 * 1024 * 1024): Promise<SpoolBatch> {
    let { seq, offset } = this.position;
    for (;;) {
      const index = this.segments.findIndex((s) => s.seq === seq);
      const segment = this.segments[index];
      if (segment === undefined) return { records: [], next: { seq, offset } };
      offset = skipHoles(segment, offset);
      const next = this.segments[index + 1];
      if (offset >= segment.size) {
        if (next === undefined) return { records: [], next: { seq, offset } };
        seq = next.seq;
        offset = 0;
        continue;
      }
      // A read never spans a hole, so the strict parse below sees only valid records.
      const limit = segment.holes.find((h) => h.from >= offset)?.from ?? segment.size;
      const length = Math.min(limit - offset, maxBytes);
      const data = Buffer.allocUnsafe(length);
      const handle = await open(path.join(this.dir, segmentName(seq)), 'r');
      try {
        await handle.read(data, 0, length, offset);
      } finally {
        await handle.close();
      }
      const { records, bytes } = segment.legacy ? unframeLegacy(data, max) : unframe(data, max);
      if (records.length === 0) throw new WxsyncError(ErrorCode.SpoolFailed, `spool: a record at ${segmentName(seq)}:${offset} is larger than ${maxBytes} bytes or corrupt`);
      return { records, next: { seq, offset: skipHoles(segment, offset + bytes) } };
    }
  }

  /** Kafka acknowledged a batch from read(): persist the new position and delete segments left behind. */
  ack(batch: SpoolBatch): Promise<void> {
    return this.exclusive(async () => {
      this.position = { ...batch.next };
      this.pending -= batch.records.length;
      const last = this.segments.at(-1) as Segment;
      if (this.pending === 0 && last.seq === this.position.seq && last.size === this.position.offset && last.size > 0) await this.roll();
      await this.savePosition();
      let removed = false;
      while ((this.segments[0]?.seq ?? Number.POSITIVE_INFINITY) < this.position.seq) {
        const done = this.segments.shift() as Segment;
        await rm(path.join(this.dir, segmentName(done.seq)), { force: true });
        removed = true;
      }
      // Not needed for correctness (open deletes segments behind the position), only so the space is freed for good.
      if (removed) await syncDir(this.dir);
    });
  }

  /** Closes the writer and releases the directory's lock. */
  close(): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed) return;
      this.closed = true;
      try {
        await this.writer.close();
      } finally {
        await unlockDir(this.dir, this.lockText);
      }
    });
  }

  private refuseFull(records: number, bytes: number): WxsyncError {
    this.options.metrics?.full.inc(records);
    const now = Date.now();
    this.full ??= { refused: 0, loggedAt: Number.NEGATIVE_INFINITY, logged: 0 };
    this.full.refused += records;
    // One line when the spool fills and one per interval while it stays full, never one per request.
    if (now - this.full.loggedAt >= REPEAT_LOG_INTERVAL_MS) {
      this.logger.warn(
        { dir: this.dir, bytes: this.bytes, maxBytes: this.maxBytes, refused: this.full.refused - this.full.logged, pending: this.pending },
        'spool full (WXSYNC_CALLBACK_SPOOL_MAX_BYTES): answering 503 until Kafka drains it',
      );
      this.full.loggedAt = now;
      this.full.logged = this.full.refused;
    }
    return new WxsyncError(ErrorCode.SpoolFull, `spool: full (${this.bytes} of ${this.maxBytes} bytes, ${bytes} more asked)`, { retriable: true });
  }

  /** A new writer segment; when everything was acknowledged the position moves to its start. */
  private async roll(): Promise<void> {
    const last = this.segments.at(-1) as Segment;
    const seq = last.seq + 1;
    const writer = await open(path.join(this.dir, segmentName(seq)), 'a+');
    // The new name must be durable before a record in it is acknowledged to anyone.
    await syncDir(this.dir);
    await this.writer.close();
    this.writer = writer;
    this.segments.push({ seq, size: 0, legacy: false, holes: [] });
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
    // Without this a crash could bring back the old position after its segments were deleted.
    await syncDir(this.dir);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch((error: unknown) => { this.logger.debug({ err: error }, 'spool operation failed'); });
    return run;
  }
}

/** `offset`, or the end of the hole it falls in or starts. */
function skipHoles(segment: Segment, offset: number): number {
  for (const hole of segment.holes) if (offset >= hole.from && offset < hole.to) return hole.to;
  return offset;
}

/** Counts a skipped hole, logs it once, and keeps its bytes in corrupt/ (once: a reopen finds the file there). */
async function setAside(dir: string, seq: number, data: Buffer, hole: Hole, logger: Logger, metrics: SpoolMetrics | undefined): Promise<void> {
  const file = path.join(dir, CORRUPT_DIR, `${segmentName(seq)}-${hole.from}.bin`);
  metrics?.corruptRecords.inc();
  metrics?.corruptBytes.inc(hole.to - hole.from);
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, data.subarray(hole.from, hole.to), { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
    logger.warn({ err: (error as Error).message, file }, 'spool: cannot keep the bytes of a corrupt record aside');
  }
  logger.warn({ segment: segmentName(seq), from: hole.from, bytes: hole.to - hole.from, keptIn: file }, 'spool: skipped a corrupt record; the records after it are drained');
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
