import type { ClickHouseClient } from '../../lib/clickhouse.ts';
import { encodeDlqRecord } from '../../lib/contracts/dlq.ts';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';
import type { RecordProducer } from '../../lib/kafka.ts';
import type { Routed } from './route.ts';

/** Writes one routed set durably, or throws. Called again with the same set after a failure. */
export interface RoutedWriter {
  write(routed: Routed): Promise<void>;
}

const TABLES = [
  ['userEvents', 'user_events'],
  ['snapshots', 'snapshots'],
  ['snapshotMembers', 'snapshot_members'],
  ['userProfiles', 'user_profiles'],
] as const;

/**
 * The store side of the consumer: rows into ClickHouse tables, rejected records into wx.dlq. Every table
 * deduplicates, so writing the same set twice (a retry after a partial failure) leaves the same state.
 */
export function clickHouseWriter(client: ClickHouseClient, database: string, dlqProducer: RecordProducer, dlqTopic: string): RoutedWriter {
  return {
    async write(routed) {
      for (const [key, table] of TABLES) {
        const rows: readonly object[] = routed[key];
        if (rows.length === 0) continue;
        try {
          await client.insert({ table: `${database}.${table}`, values: rows, format: 'JSONEachRow' });
        } catch (error) {
          throw new WxsyncError(ErrorCode.ClickHouseFailed, `insert into ${table} failed: ${(error as Error).message}`, { retriable: true, cause: error });
        }
      }
      if (routed.dlq.length > 0) {
        await dlqProducer.send(dlqTopic, routed.dlq.map((record) => ({
          key: `${record.source.topic}:${record.source.partition}:${record.source.offset}`,
          value: encodeDlqRecord(record),
        })));
      }
    },
  };
}
