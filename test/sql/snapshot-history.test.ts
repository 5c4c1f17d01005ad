import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { routeRecords } from '../../consumers/clickhouse/route.ts';
import { clickHouseWriter } from '../../consumers/clickhouse/sink.ts';
import { createClickHouse, type ClickHouseClient } from '../../lib/clickhouse.ts';
import { loadConfig } from '../../lib/config.ts';
import { encodeSnapshotRecord, type SnapshotRecord } from '../../lib/contracts/snapshot.ts';
import type { InRecord, RecordProducer } from '../../lib/kafka.ts';
import { silentLogger } from '../../lib/logger.ts';
import { SQL_DIR, migrate } from '../../lib/migrate.ts';

// sql/013's snapshot_members, one partition per snapshot: ClickHouse refuses an INSERT block that spans more than 100
// partitions (max_partitions_per_insert_block), every time. The upgrade's copy and the consumer's writes must pass
// with any number of snapshots at once, such as a backlog of small snapshots replayed from Kafka.
const DB = 'wx_history';
const APPID = 'wxhistory0000001';
const SNAPSHOTS = 150;
const { topics } = loadConfig({}).kafka;
const noDlq: RecordProducer = { send: () => Promise.reject(new Error('nothing is refused here')), close: () => Promise.resolve() };
let offset = 0;

function pages(from: number, count: number): InRecord[] {
  const records: SnapshotRecord[] = [];
  for (let k = from; k < from + count; k += 1) {
    records.push({ v: 1, kind: 'page', appid: APPID, snapshotId: `s${k}`, page: 0, cursor: '', nextOpenid: '', total: 2, openids: [`oa${k}`, `ob${k}`], fetchedAt: Date.UTC(2026, 0, 1) + k });
  }
  return records.map((r) => ({ topic: topics.snapshots, partition: 0, offset: String(offset++), key: null, value: encodeSnapshotRecord(r), timestamp: '0' }));
}

describe('snapshot_members partitioned per snapshot (sql/013)', () => {
  let dir: string;
  let client: ClickHouseClient;
  const query = async <T>(sql: string): Promise<T[]> => (await client.query({ query: sql, format: 'JSONEachRow' })).json<T>();
  const partitions = async (): Promise<number> =>
    Number((await query<{ n: string }>(`SELECT uniqExact(partition_id) AS n FROM system.parts WHERE database = '${DB}' AND table = 'snapshot_members' AND active`))[0]?.n);

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'wxsync-history-'));
    client = createClickHouse({ target: { kind: 'embedded', path: dir }, database: DB });
  });
  after(async () => {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('upgrades a store holding 150 snapshots in one copy, then takes 150 more in one consumer write', async () => {
    // The store as it was before sql/013: every migration up to it.
    const older = mkdtempSync(path.join(tmpdir(), 'wxsync-history-sql-'));
    try {
      for (const file of readdirSync(SQL_DIR).filter((f) => f < '013')) copyFileSync(path.join(SQL_DIR, file), path.join(older, file));
      await migrate(client, DB, silentLogger(), older);
    } finally {
      rmSync(older, { recursive: true, force: true });
    }
    const writer = clickHouseWriter(client, DB, noDlq, 'dlq');
    await writer.write(routeRecords(pages(0, SNAPSHOTS), topics, 1));
    const [unpartitioned] = await query<{ partition_key: string }>(`SELECT partition_key FROM system.tables WHERE database = '${DB}' AND name = 'snapshot_members'`);
    assert.equal(unpartitioned?.partition_key, '');

    await migrate(client, DB, silentLogger());
    assert.equal(await partitions(), SNAPSHOTS, 'one partition per snapshot');
    await writer.write(routeRecords(pages(SNAPSHOTS, SNAPSHOTS), topics, 1));
    assert.equal(await partitions(), 2 * SNAPSHOTS);
    const [members] = await query<{ n: string; snapshots: string }>(`SELECT count() AS n, uniqExact(snapshot_id) AS snapshots FROM ${DB}.snapshot_members`);
    assert.deepEqual(members, { n: String(4 * SNAPSHOTS), snapshots: String(2 * SNAPSHOTS) });

    await client.command({ query: `ALTER TABLE ${DB}.snapshot_members DROP PARTITION ({appid:String}, {id:String})`, query_params: { appid: APPID, id: 's7' } });
    const [left] = await query<{ n: string }>(`SELECT count() AS n FROM ${DB}.snapshot_members WHERE snapshot_id IN ('s6', 's7', 's8')`);
    assert.equal(left?.n, '4', 'a snapshot dropped alone, by its partition');
  });
});
