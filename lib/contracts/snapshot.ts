import {
  MAX_SNAPSHOT_RECORD_BYTES, APPID, OPENID, SNAPSHOT_ID, checkRecordSize, compact, readVersionedObject, versionedReader, type FieldReader,
} from './fields.ts';

export const SNAPSHOT_VERSION = 1;
/** One user/get page holds at most 10,000 openids. */
export const MAX_PAGE_OPENIDS = 10_000;
const MAX_TOTAL = 1_000_000_000;
const MAX_PAGES = 1_000_000;

interface SnapshotRecordBase {
  readonly v: typeof SNAPSHOT_VERSION;
  readonly appid: string;
  readonly snapshotId: string;
}

/** Published before the first user/get call: its startedAt opens the snapshot window (T0). */
export interface SnapshotBegin extends SnapshotRecordBase {
  readonly kind: 'begin';
  readonly startedAt: number;
}

/** One whole user/get page, never split into one message per openid. */
export interface SnapshotPage extends SnapshotRecordBase {
  readonly kind: 'page';
  /** 0-based position of the page in the snapshot. */
  readonly page: number;
  /** The next_openid sent to get this page ('' for the first). */
  readonly cursor: string;
  /** The next_openid WeChat answered with. */
  readonly nextOpenid: string;
  readonly total: number;
  readonly openids: readonly string[];
  readonly fetchedAt: number;
}

/** Published after the last call: complete only after a clean terminal condition (T1 = endedAt). */
export interface SnapshotEnd extends SnapshotRecordBase {
  readonly kind: 'end';
  readonly complete: boolean;
  readonly reason?: string;
  readonly pages: number;
  readonly openids: number;
  readonly total: number;
  readonly startedAt: number;
  readonly endedAt: number;
}

export type SnapshotRecord = SnapshotBegin | SnapshotPage | SnapshotEnd;

export function snapshotKey(record: Pick<SnapshotRecordBase, 'appid' | 'snapshotId'>): string {
  return `${record.appid}:${record.snapshotId}`;
}

const WHAT = 'snapshot record';

export function decodeSnapshotRecord(raw: Buffer | null): SnapshotRecord {
  return readSnapshotRecord(readVersionedObject(raw, WHAT, SNAPSHOT_VERSION, MAX_SNAPSHOT_RECORD_BYTES));
}

function readSnapshotRecord(reader: FieldReader): SnapshotRecord {
  const kind = reader.oneOf('kind', ['begin', 'page', 'end'] as const);
  const base = { v: SNAPSHOT_VERSION, appid: reader.text('appid', APPID), snapshotId: reader.text('snapshotId', SNAPSHOT_ID) } as const;
  let record: SnapshotRecord;
  switch (kind) {
    case 'begin':
      record = { ...base, kind, startedAt: reader.timestampMs('startedAt') };
      break;
    case 'page':
      record = {
        ...base,
        kind,
        page: reader.int('page', 0, MAX_PAGES),
        cursor: reader.optionalText('cursor', /^[A-Za-z0-9_-]{0,64}$/) ?? '',
        nextOpenid: reader.optionalText('nextOpenid', /^[A-Za-z0-9_-]{0,64}$/) ?? '',
        total: reader.int('total', 0, MAX_TOTAL),
        openids: reader.textArray('openids', OPENID, MAX_PAGE_OPENIDS),
        fetchedAt: reader.timestampMs('fetchedAt'),
      };
      break;
    case 'end':
      record = compact<SnapshotEnd>({
        ...base,
        kind,
        complete: reader.bool('complete'),
        reason: reader.optionalText('reason', undefined, 1024),
        pages: reader.int('pages', 0, MAX_PAGES),
        openids: reader.int('openids', 0, MAX_TOTAL),
        total: reader.int('total', 0, MAX_TOTAL),
        startedAt: reader.timestampMs('startedAt'),
        endedAt: reader.timestampMs('endedAt'),
      });
      break;
  }
  reader.check(`snapshot ${kind} record`);
  return record;
}

/**
 * The bytes of a record the decoder accepts, or the error it would throw. The record is checked as an object
 * rather than by decoding the bytes: JSON keeps every value the rules accept as it is, and a page is parsed
 * once less (a fifth of the encoding's cost).
 */
export function encodeSnapshotRecord(record: SnapshotRecord): Buffer {
  readSnapshotRecord(versionedReader(record, WHAT, SNAPSHOT_VERSION));
  const bytes = Buffer.from(JSON.stringify(record));
  checkRecordSize(bytes, WHAT, MAX_SNAPSHOT_RECORD_BYTES);
  return bytes;
}
