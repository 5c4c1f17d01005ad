import { mkdirSync } from 'node:fs';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import type { Config } from './config.ts';
import { ErrorCode, WxsyncError } from './errors.ts';

export type { ClickHouseClient };
type ChConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;

/**
 * One factory for both deployments: embedded chDB (default) and a ClickHouse server (CLICKHOUSE_URL).
 * The rest of wxsync only sees a @clickhouse/client ClickHouseClient and cannot tell them apart.
 * ⚑ One chDB data directory belongs to one process at a time: call this once per process.
 */
export function createClickHouse(config: Config['clickhouse']): ClickHouseClient {
  const { target } = config;
  const settings = {
    // UInt64 openid keys must survive JSON output exactly.
    output_format_json_quote_64bit_integers: 1,
    // Strict parsing: wxsync always sends `seconds.mmm`, never a value whose unit must be guessed.
    date_time_input_format: 'basic',
  } as const;
  if (target.kind === 'server') {
    return createClient({
      url: target.url,
      username: target.username,
      password: target.password,
      clickhouse_settings: settings,
      request_timeout: 120_000,
    });
  }
  try {
    mkdirSync(target.path, { recursive: true });
    // chDB implements @clickhouse/client-common's Connection against its own copy of that package, whose
    // optional-property typings differ under exactOptionalPropertyTypes; the runtime contract is the same.
    const connection = createChdbConnection({ path: target.path }) as unknown as ChConnection;
    return createClient({ connection, clickhouse_settings: settings });
  } catch (error) {
    throw new WxsyncError(ErrorCode.ClickHouseFailed, `cannot open the embedded ClickHouse store in ${target.path}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * ClickHouse error codes that depend only on the rows of an insert, never on the moment: the same rows into the
 * same schema fail the same way every time, so retrying cannot help and the rows at fault must be set aside
 * (the consumer isolates them by bisection and sends their records to wx.dlq). Names as in ClickHouse's
 * src/Common/ErrorCodes.cpp (test/lib/clickhouse.test.ts checks each against errorCodeToName). Every code not
 * listed (server down, timeouts, memory, too many parts, network, unknown table or column, a bug of ours that
 * breaks every row alike) is treated as transient: retried with backoff, never a reason to drop a record.
 */
export const DETERMINISTIC_ERROR_CODES: ReadonlyMap<number, string> = new Map([
  [6, 'CANNOT_PARSE_TEXT'],
  [25, 'CANNOT_PARSE_ESCAPE_SEQUENCE'],
  [26, 'CANNOT_PARSE_QUOTED_STRING'],
  [27, 'CANNOT_PARSE_INPUT_ASSERTION_FAILED'],
  [38, 'CANNOT_PARSE_DATE'],
  [41, 'CANNOT_PARSE_DATETIME'],
  [53, 'TYPE_MISMATCH'],
  [69, 'ARGUMENT_OUT_OF_BOUND'],
  [70, 'CANNOT_CONVERT_TYPE'],
  [72, 'CANNOT_PARSE_NUMBER'],
  [117, 'INCORRECT_DATA'],
  [128, 'TOO_LARGE_ARRAY_SIZE'],
  [130, 'CANNOT_READ_ARRAY_FROM_TEXT'],
  [131, 'TOO_LARGE_STRING_SIZE'],
  [190, 'SIZES_OF_ARRAYS_DONT_MATCH'],
  [321, 'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE'],
  [349, 'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN'],
  [376, 'CANNOT_PARSE_UUID'],
  [395, 'FUNCTION_THROW_IF_VALUE_IS_NON_ZERO'],
  [407, 'DECIMAL_OVERFLOW'],
  [441, 'CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING'],
  [469, 'VIOLATED_CONSTRAINT'],
]);

/** What ClickHouse said about a failed query: its numeric code, the code's name and its message. */
export interface ClickHouseErrorInfo {
  readonly code: number;
  readonly type: string;
  readonly message: string;
}

/**
 * The ClickHouse error inside a thrown value, looking through `cause` chains. Matched by shape rather than
 * instanceof: chDB raises the ClickHouseError of its own copy of @clickhouse/client-common. Only the numeric
 * code is ever used to decide anything; the message is for the DLQ reason and logs.
 */
export function clickHouseErrorInfo(error: unknown): ClickHouseErrorInfo | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 8; current = current.cause, depth += 1) {
    const { code, type } = current as Error & { code?: unknown; type?: unknown };
    if (typeof code === 'string' && /^\d{1,6}$/.test(code)) {
      return { code: Number(code), type: typeof type === 'string' ? type : '', message: current.message.trim() };
    }
  }
  return undefined;
}

/** The ClickHouse error of a refusal that depends only on the rows written, or undefined when it may pass on a retry. */
export function deterministicClickHouseError(error: unknown): ClickHouseErrorInfo | undefined {
  const info = clickHouseErrorInfo(error);
  return info !== undefined && DETERMINISTIC_ERROR_CODES.has(info.code) ? info : undefined;
}

/** The rows a query answers, one object each (JSONEachRow), its parameters bound by the server. */
export async function queryRows<T>(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

/** Below this much free disk an insert may fail mid-batch: the store is reported not writable. */
const MIN_FREE_BYTES = 64 * 1024 * 1024;

/**
 * Whether the store takes writes: it answers, is not read-only, and every disk it writes to has room. Cheaper
 * than a test insert on every probe, and it names the two ways a store that still answers reads stops writing.
 */
export async function storeWritable(client: ClickHouseClient): Promise<boolean> {
  try {
    const [row] = await (await client.query({
      query: `SELECT getSetting('readonly') = 0 AND (SELECT min(free_space) FROM system.disks) >= {min:UInt64} AS writable`,
      query_params: { min: MIN_FREE_BYTES }, format: 'JSONEachRow',
    })).json<{ writable: number | boolean }>();
    return row?.writable === 1 || row?.writable === true;
  } catch {
    return false;
  }
}
