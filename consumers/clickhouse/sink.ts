import type { ClickHouseClient } from '../../lib/clickhouse.ts';
import { encodeDlqRecord } from '../../lib/contracts/dlq.ts';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';
import type { RecordProducer } from '../../lib/kafka.ts';
import { Readable } from 'node:stream';
import type { Routed, SnapshotMemberRow, SnapshotRow, UserEventRow, UserProfileRow } from './route.ts';
import { toTsv, tsvArray, tsvMillis, tsvString } from './tsv.ts';

/** Writes one routed set durably, or throws. Called again with the same set after a failure. */
export interface RoutedWriter {
  write(routed: Routed): Promise<void>;
}

// One encoder per table, written out: a generic column loop costs more than the ClickHouse side saves.
// Fields validated by the record contracts to hold only [A-Za-z0-9._:-] (ids, appids, openids, enums)
// need no escaping; every free-text field goes through tsvString.
const TABLES = [
  {
    key: 'userEvents', name: 'user_events',
    columns: ['id', 'appid', 'openid', 'type', 'at', 'source', 'scene', 'qr_scene', 'ticket', 'received_at', 'correction_snapshot_id', 'correction_rule', 'ord'],
    encode: (rows: readonly UserEventRow[]): string => toTsv(rows, (r) =>
      `${r.id}\t${r.appid}\t${r.openid}\t${r.type}\t${tsvMillis(r.at)}\t${r.source}\t${tsvString(r.scene)}\t${tsvString(r.qr_scene)}\t${
        tsvString(r.ticket)}\t${tsvMillis(r.received_at)}\t${r.correction_snapshot_id}\t${r.correction_rule}\t${r.ord}`),
  },
  {
    key: 'snapshots', name: 'snapshots',
    columns: ['appid', 'snapshot_id', 'kind', 'page', 'started_at', 'ended_at', 'fetched_at', 'complete', 'reason', 'total', 'pages', 'openids',
      'page_openids', 'cursor', 'next_openid'],
    encode: (rows: readonly SnapshotRow[]): string => toTsv(rows, (r) =>
      `${r.appid}\t${r.snapshot_id}\t${r.kind}\t${r.page}\t${tsvMillis(r.started_at)}\t${tsvMillis(r.ended_at)}\t${tsvMillis(r.fetched_at)}\t${
        r.complete}\t${tsvString(r.reason)}\t${r.total}\t${r.pages}\t${r.openids}\t${r.page_openids}\t${r.cursor}\t${r.next_openid}`),
  },
  {
    key: 'snapshotMembers', name: 'snapshot_members',
    columns: ['appid', 'snapshot_id', 'openid', 'page'],
    encode: (rows: readonly SnapshotMemberRow[]): string => toTsv(rows, (r) => `${r.appid}\t${r.snapshot_id}\t${r.openid}\t${r.page}`),
  },
  {
    key: 'userProfiles', name: 'user_profiles',
    columns: ['appid', 'openid', 'subscribe', 'subscribe_time', 'unionid', 'subscribe_scene', 'qr_scene', 'qr_scene_str', 'tagid_list', 'remark', 'fetched_at'],
    encode: (rows: readonly UserProfileRow[]): string => toTsv(rows, (r) =>
      `${r.appid}\t${r.openid}\t${r.subscribe}\t${tsvMillis(r.subscribe_time)}\t${r.unionid}\t${r.subscribe_scene}\t${r.qr_scene}\t${
        tsvString(r.qr_scene_str)}\t${tsvArray(r.tagid_list)}\t${tsvString(r.remark)}\t${tsvMillis(r.fetched_at)}`),
  },
] as const;

/**
 * The store side of the consumer: rows into ClickHouse tables, rejected records into wx.dlq. Every table
 * deduplicates, so writing the same set twice (a retry after a partial failure) leaves the same state.
 */
export function clickHouseWriter(client: ClickHouseClient, database: string, dlqProducer: RecordProducer, dlqTopic: string): RoutedWriter {
  return {
    async write(routed) {
      for (const { key, name, columns, encode } of TABLES) {
        const rows = routed[key];
        if (rows.length === 0) continue;
        try {
          await client.insert({
            table: `${database}.${name}`,
            values: Readable.from([(encode as (r: typeof rows) => string)(rows)], { objectMode: false }),
            format: 'TabSeparated',
            columns: [...columns] as [string, ...string[]],
          });
        } catch (error) {
          throw new WxsyncError(ErrorCode.ClickHouseFailed, `insert into ${name} failed: ${(error as Error).message}`, { retriable: true, cause: error });
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
