import { deterministicClickHouseError, type ClickHouseClient } from '../../lib/clickhouse.ts';
import { dlqRecord, encodeDlqRecord, type DlqRecord } from '../../lib/contracts/dlq.ts';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';
import type { RecordProducer } from '../../lib/kafka.ts';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Origin, Routed, SnapshotMemberPage, SnapshotRow, UserEventRow, UserProfileRow } from './route.ts';
import { toTsv, tsvArray, tsvIdArray, tsvMillis, tsvString } from './tsv.ts';

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
    // Before `snapshots`: a page's row there is what snapshot_status counts as loaded, so its members must
    // already be stored when it lands, or a reader could see a loaded snapshot with members missing.
    key: 'snapshotMembers', name: 'snapshot_member_pages',
    columns: ['appid', 'snapshot_id', 'page', 'fetched_at', 'openids'],
    encode: (rows: readonly SnapshotMemberPage[]): string => toTsv(rows, (r) =>
      `${r.appid}\t${r.snapshot_id}\t${r.page}\t${tsvMillis(r.fetched_at)}\t${tsvIdArray(r.openids)}`),
    // Merging duplicates at insert time buys nothing here (a redelivered page arrives in another insert, and
    // every reader deduplicates anyway) and cost about a third of the insert. snapshot_members has a partition per
    // snapshot (sql/013), and a set replayed from a backlog can hold pages of more than 100 small snapshots: past
    // max_partitions_per_insert_block ClickHouse refuses the insert every time, which would stall the consumer.
    settings: 'optimize_on_insert = 0, max_partitions_per_insert_block = 0',
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
    key: 'userProfiles', name: 'user_profiles',
    columns: ['appid', 'openid', 'subscribe', 'subscribe_time', 'unionid', 'subscribe_scene', 'qr_scene', 'qr_scene_str', 'tagid_list', 'remark', 'fetched_at'],
    encode: (rows: readonly UserProfileRow[]): string => toTsv(rows, (r) =>
      `${r.appid}\t${r.openid}\t${r.subscribe}\t${tsvMillis(r.subscribe_time)}\t${r.unionid}\t${r.subscribe_scene}\t${r.qr_scene}\t${
        tsvString(r.qr_scene_str)}\t${tsvArray(r.tagid_list)}\t${tsvString(r.remark)}\t${tsvMillis(r.fetched_at)}`),
  },
] as const;

type Table = (typeof TABLES)[number];
type Row = { readonly origin: Origin };

export interface ClickHouseWriterOptions {
  /** Told of the records ClickHouse refused, once they are in the DLQ: for logs and metrics. */
  readonly onRefused?: (records: readonly DlqRecord[]) => void;
  readonly now?: () => number;
}

/**
 * The store side of the consumer: rows into ClickHouse tables, rejected records into wx.dlq. Every table
 * deduplicates, so writing the same set twice (a retry after a partial failure) leaves the same state.
 *
 * A table whose insert ClickHouse refuses deterministically (lib/clickhouse.ts DETERMINISTIC_ERROR_CODES) is
 * bisected: each half is inserted, a refused half split again, until the rows at fault stand alone. Their
 * records go to the DLQ with ClickHouse's message, and no row of such a record is written to a later table
 * (a refused page's members must not leave its `snapshots` row to count the page as loaded). Any other
 * failure is thrown, so the pipeline retries the whole set with backoff: never skipped, never committed.
 */
export function clickHouseWriter(
  client: ClickHouseClient, database: string, dlqProducer: RecordProducer, dlqTopic: string, options: ClickHouseWriterOptions = {},
): RoutedWriter {
  const now = options.now ?? Date.now;

  async function insert(table: Table, rows: readonly Row[]): Promise<void> {
    // exec rather than insert, for a SETTINGS clause of this query alone: chDB applies clickhouse_settings
    // with SET, which stays in force for every later query of the session.
    const { stream } = await client.exec({
      query: `INSERT INTO ${database}.${table.name} (${table.columns.join(', ')})${'settings' in table ? ` SETTINGS ${table.settings}` : ''} FORMAT TabSeparated`,
      // A byte stream that yields the string as is (the `encoding`): chDB takes the body as a string, and
      // a Buffer chunk cost it a UTF-8 encode and decode of every flush, a sixth of the consumer's CPU.
      values: Readable.from([(table.encode as (r: readonly Row[]) => string)(rows)], { objectMode: false, encoding: 'utf8' }),
    });
    // Read to the end, as insert does, so an HTTP connection goes back to the pool.
    await finished(stream.resume());
  }

  /** Inserts rows; on a deterministic refusal, inserts each half on its own, down to the single rows at fault. */
  async function insertOrIsolate(table: Table, rows: readonly Row[], refused: Map<Origin, string>): Promise<void> {
    try {
      await insert(table, rows);
    } catch (error) {
      const refusal = deterministicClickHouseError(error);
      if (refusal === undefined) {
        throw new WxsyncError(ErrorCode.ClickHouseFailed, `insert into ${table.name} failed: ${(error as Error).message}`, { retriable: true, cause: error });
      }
      const [only] = rows;
      if (rows.length === 1 && only !== undefined) {
        if (!refused.has(only.origin)) refused.set(only.origin, `ClickHouse refused the row for ${table.name}: ${refusal.type} (${refusal.code}): ${refusal.message}`);
        return;
      }
      const half = Math.ceil(rows.length / 2);
      await insertOrIsolate(table, rows.slice(0, half), refused);
      await insertOrIsolate(table, rows.slice(half), refused);
    }
  }

  return {
    async write(routed) {
      const refused = new Map<Origin, string>();
      for (const table of TABLES) {
        let rows: readonly Row[] = routed[table.key];
        if (refused.size > 0) rows = rows.filter((row) => !refused.has(row.origin));
        if (rows.length === 0) continue;
        await insertOrIsolate(table, rows, refused);
      }
      const at = now();
      const refusedRecords = [...refused].map(([origin, reason]) => dlqRecord(origin, ErrorCode.RecordRefused, reason, at));
      const dlq = refusedRecords.length === 0 ? routed.dlq : [...routed.dlq, ...refusedRecords];
      if (dlq.length > 0) {
        await dlqProducer.send(dlqTopic, dlq.map((record) => ({
          key: `${record.source.topic}:${record.source.partition}:${record.source.offset}`,
          value: encodeDlqRecord(record),
        })));
      }
      if (refusedRecords.length > 0) options.onRefused?.(refusedRecords);
    },
  };
}
