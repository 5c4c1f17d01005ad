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
