import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { routeRecords } from '../../../consumers/clickhouse/route.ts';
import { clickHouseWriter } from '../../../consumers/clickhouse/sink.ts';
import type { ClickHouseClient } from '../../../lib/clickhouse.ts';
import { loadConfig } from '../../../lib/config.ts';
import { encodeSnapshotRecord } from '../../../lib/contracts/snapshot.ts';
import type { RecordProducer } from '../../../lib/kafka.ts';
import { T0 } from '../../support/events.ts';

const { topics } = loadConfig({}).kafka;

describe('clickHouseWriter', () => {
  it('stores the members of a page before the page row that makes snapshot_status count it as loaded', async () => {
    const inserts: { query: string; body: string; settings: unknown }[] = [];
    const client = {
      async exec(params: { query: string; values: Readable; clickhouse_settings?: unknown }) {
        inserts.push({ query: params.query, body: await text(params.values), settings: params.clickhouse_settings });
        return { stream: Readable.from([]) };
      },
    } as unknown as ClickHouseClient;
    const noDlq: RecordProducer = { send: () => Promise.reject(new Error('nothing is rejected here')), close: () => Promise.resolve() };
    const page = encodeSnapshotRecord({
      v: 1, kind: 'page', appid: 'wxapp', snapshotId: 's1', page: 0, cursor: '', nextOpenid: 'o-2', total: 2, openids: ['o_1', 'o-2'], fetchedAt: T0,
    });
    await clickHouseWriter(client, 'db', noDlq, 'dlq').write(
      routeRecords([{ topic: topics.snapshots, partition: 0, offset: '0', key: null, value: page, timestamp: '0' }], topics, T0),
    );
    assert.deepEqual(inserts.map((i) => /INSERT INTO db\.(\w+)/.exec(i.query)?.[1]), ['snapshot_member_pages', 'snapshots']);
    const members = inserts[0];
    assert.equal(members?.body, "wxapp\ts1\t0\t['o_1','o-2']\n");
    // In the query, not as clickhouse_settings: chDB would SET those for the rest of the session.
    assert.match(members.query, /SETTINGS optimize_on_insert = 0 FORMAT TabSeparated$/);
    assert.ok(inserts.every((i) => i.settings === undefined));
  });
});
