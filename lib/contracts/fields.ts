import { ErrorCode, WxsyncError } from '../errors.ts';

export const OPENID = /^[A-Za-z0-9_-]{1,64}$/;
export const APPID = /^[A-Za-z0-9_-]{1,64}$/;
export const EVENT_ID = /^[0-9a-f]{32}$/;
export const SNAPSHOT_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/**
 * Timestamps are milliseconds since the epoch from 2000-01-01 to before 2100-01-01: anything else is a unit
 * mix-up or garbage. The upper bound is also what the store can order: an event's `ord` (consumers/clickhouse
 * route.ts) packs `at` into the high 42 bits of a UInt64, which holds ms up to 2109, and a wider encoding would
 * mix old and new orders inside the stored argMax states.
 */
export const MIN_MS = Date.UTC(2000, 0, 1);
export const MAX_MS = Date.UTC(2100, 0, 1) - 1;
const MAX_TEXT = 1024;

/** Raw values larger than these are refused before parsing. */
export const MAX_EVENT_BYTES = 64 * 1024;
/** A page of 10,000 openids of at most 64 characters, with room for the envelope. */
export const MAX_SNAPSHOT_RECORD_BYTES = 1024 * 1024;

/**
 * Reads the fields of one decoded JSON object, collecting every problem so a rejected record's reason
 * names all that is wrong with it.
 */
export class FieldReader {
  readonly problems: string[] = [];
  constructor(private readonly record: Readonly<Record<string, unknown>>) {}

  text(key: string, pattern?: RegExp): string {
    const value = this.optionalText(key, pattern);
    if (value === undefined && (this.record[key] === undefined || this.record[key] === null)) this.missing(key);
    return value ?? '';
  }

  optionalText(key: string, pattern?: RegExp, maxLength = MAX_TEXT): string | undefined {
    const value = this.record[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' || value.length > maxLength || (pattern !== undefined && !pattern.test(value))) {
      this.problems.push(`${key} is not ${pattern === undefined ? 'a string' : `a string matching ${pattern.source}`}`);
      return undefined;
    }
    return value;
  }

  oneOf<const T extends string>(key: string, allowed: readonly T[]): T {
    const value = this.record[key];
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    if (value === undefined) this.missing(key);
    else this.problems.push(`${key} must be one of ${allowed.join(', ')}`);
    return allowed[0] as T;
  }

  int(key: string, min: number, max: number): number {
    const value = this.optionalInt(key, min, max);
    if (value === undefined && (this.record[key] === undefined || this.record[key] === null)) this.missing(key);
    return value ?? min;
  }

  optionalInt(key: string, min: number, max: number): number | undefined {
    const value = this.record[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.problems.push(`${key} must be an integer from ${min} to ${max}`);
      return undefined;
    }
    return value;
  }

  timestampMs(key: string): number {
    return this.int(key, MIN_MS, MAX_MS);
  }

  optionalTimestampMs(key: string): number | undefined {
    return this.optionalInt(key, MIN_MS, MAX_MS);
  }

  bool(key: string): boolean {
    const value = this.record[key];
    if (typeof value === 'boolean') return value;
    if (value === undefined) this.missing(key);
    else this.problems.push(`${key} must be a boolean`);
    return false;
  }

  textArray(key: string, pattern: RegExp, maxItems: number): string[] {
    const value = this.record[key];
    if (!Array.isArray(value)) {
      if (value === undefined) this.missing(key);
      else this.problems.push(`${key} must be an array`);
      return [];
    }
    if (value.length > maxItems) {
      this.problems.push(`${key} holds ${value.length} items, more than ${maxItems}`);
      return [];
    }
    for (const item of value) {
      if (typeof item !== 'string' || !pattern.test(item)) {
        this.problems.push(`${key} holds an item that is not a string matching ${pattern.source}`);
        return [];
      }
    }
    return value as string[];
  }

  intArray(key: string, min: number, max: number, maxItems: number): number[] {
    const value = this.record[key];
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.length > maxItems
      || !value.every((n) => typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max)) {
      this.problems.push(`${key} must be an array of at most ${maxItems} integers from ${min} to ${max}`);
      return [];
    }
    return value as number[];
  }

  object(key: string): FieldReader | undefined {
    const value = this.record[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) {
      this.problems.push(`${key} must be an object`);
      return undefined;
    }
    return new FieldReader(value as Record<string, unknown>);
  }

  /** Folds a nested reader's problems into this one under the given key. */
  adopt(key: string, nested: FieldReader): void {
    for (const problem of nested.problems) this.problems.push(`${key}.${problem}`);
  }

  /** Throws RECORD_INVALID naming every problem found, if any. */
  check(what: string): void {
    if (this.problems.length > 0) {
      throw new WxsyncError(ErrorCode.RecordInvalid, `invalid ${what}: ${this.problems.join('; ')}`);
    }
  }

  private missing(key: string): void {
    this.problems.push(`${key} is missing`);
  }
}

/**
 * Parses the raw bytes of a record into a versioned JSON object. Undecodable input (too large, not UTF-8
 * JSON, not an object, unknown version) gives RECORD_UNDECODABLE; field problems are the caller's.
 */
export function readVersionedObject(raw: Buffer | null, what: string, version: number, maxBytes: number): FieldReader {
  if (raw === null || raw.length === 0) throw undecodable(what, 'empty value');
  checkRecordSize(raw, what, maxBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw undecodable(what, `not JSON (${(error as Error).message})`);
  }
  return versionedReader(parsed, what, version);
}

/**
 * A reader over a value not (or no longer) in bytes: an encoder checks the record it is about to write
 * with the decoder's rules this way, without parsing its own output again.
 */
export function versionedReader(value: unknown, what: string, version: number): FieldReader {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw undecodable(what, 'not a JSON object');
  const record = value as Record<string, unknown>;
  if (record['v'] !== version) throw undecodable(what, `unsupported version ${JSON.stringify(record['v'])}, expected ${version}`);
  return new FieldReader(record);
}

/** RECORD_UNDECODABLE when a raw value is larger than its contract allows. */
export function checkRecordSize(raw: Buffer, what: string, maxBytes: number): void {
  if (raw.length > maxBytes) throw undecodable(what, `value of ${raw.length} bytes exceeds ${maxBytes}`);
}

function undecodable(what: string, reason: string): WxsyncError {
  return new WxsyncError(ErrorCode.RecordUndecodable, `undecodable ${what}: ${reason}`);
}

/** Drops undefined members so encoded records carry no `"x": null` noise and round-trip exactly. */
export function compact<T extends object>(value: { readonly [K in keyof T]: T[K] | undefined }): T {
  // A plain loop: this runs once per consumed record, and entries/filter/fromEntries cost more than the parse.
  const result: Record<string, unknown> = {};
  for (const key in value) {
    const member = value[key];
    if (member !== undefined) result[key] = member;
  }
  return result as T;
}
