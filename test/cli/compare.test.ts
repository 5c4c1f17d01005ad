import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { alignTable, csvRow, formatReport, formatRows, listHeader } from '../../cli/compare.ts';
import { routeRecords } from '../../consumers/clickhouse/route.ts';
import { clickHouseWriter } from '../../consumers/clickhouse/sink.ts';
import { createClickHouse } from '../../lib/clickhouse.ts';
import { encodeSnapshotRecord, type SnapshotRecord } from '../../lib/contracts/snapshot.ts';
import { encodeUserEvent } from '../../lib/contracts/user-event.ts';
import type { InRecord, RecordProducer } from '../../lib/kafka.ts';
import { silentLogger } from '../../lib/logger.ts';
import { migrate } from '../../lib/migrate.ts';
import type { ComparisonReport, DifferenceRow, SnapshotListing } from '../../producers/reconcile/compare.ts';
import { testEnv, type TestEnv } from '../support/env.ts';
import { callbackEvent, openidOf } from '../support/events.ts';
import { freePorts } from '../../lib/ports.ts';
import { startRun, wxsync, type Ran } from '../support/wxsync.ts';

const REPORT: ComparisonReport = {
  appid: 'wxa',
  from: { snapshotId: 's1', startedAt: '2026-03-01T10:00:00.000Z', endedAt: '2026-03-01T10:10:00.000Z', total: 1_000_000, openids: 1_000_000 },
  to: { snapshotId: 's3', startedAt: '2026-03-02T10:00:00.000Z', endedAt: '2026-03-02T10:10:00.000Z', total: 1_000_100, openids: 1_000_100 },
  window: { from: '2026-03-01T09:59:00.000Z', to: '2026-03-02T10:11:00.000Z' },
  added: { total: 300, explained: 240, unexplained: 60 },
  removed: { total: 200, explained: 160, unexplained: 40 },
  unexplainedShare: 0.2,
  byScene: [{ key: 'ADD_SCENE_QR_CODE', added: 300, addedUnexplained: 60, removed: 150, removedUnexplained: 30 }, { key: '', added: 0, addedUnexplained: 0, removed: 50, removedUnexplained: 10 }],
  byCampaign: [{ key: 'spring, "big"', added: 300, addedUnexplained: 60, removed: 200, removedUnexplained: 40 }],
  durationMs: 1234,
};

describe('wxsync compare: output formats', () => {
  it('aligns tables and quotes CSV fields that need it', () => {
    assert.equal(alignTable([['a', '1', 'x'], ['bbb', '1,000', 'long text']], new Set([1])), 'a        1  x\nbbb  1,000  long text\n');
    assert.equal(csvRow(['plain', 'a,b', 'say "hi"', 'two\nlines', 3, true]), 'plain,"a,b","say ""hi""","two\nlines",3,true\n');
  });

  it('prints a comparison as a table an analyst reads, a CSV of every group, or one JSON line', () => {
    assert.equal(formatReport(REPORT, 'table'), [
      'comparison of wxa',
      '  from  s1  2026-03-01 10:00:00Z → 2026-03-01 10:10:00Z  1,000,000 followers',
      '  to    s3  2026-03-02 10:00:00Z → 2026-03-02 10:10:00Z  1,000,100 followers',
      '  a callback explains a difference when its time is within 2026-03-01 09:59:00Z → 2026-03-02 10:11:00Z',
      '',
      '           followers  explained  unexplained',
      '  added          300        240           60',
      '  removed        200        160           40',
      '  unexplained share 20.00%: 100 of 500 differences had no delivered callback (the callback-loss rate)',
      '',
      '  scene              added  unexplained  removed  unexplained',
      '  ADD_SCENE_QR_CODE    300           60      150           30',
      '  (unknown)              0            0       50           10',
      '',
      '  campaign       added  unexplained  removed  unexplained',
      '  spring, "big"    300           60      200           40',
      '',
      '  compared in 1,234 ms',
      '',
    ].join('\n'));
    assert.equal(formatReport(REPORT, 'csv'), [
      'from_snapshot,to_snapshot,dimension,key,added,added_explained,added_unexplained,removed,removed_explained,removed_unexplained',
      's1,s3,all,,300,240,60,200,160,40',
      's1,s3,scene,ADD_SCENE_QR_CODE,300,240,60,150,120,30',
      's1,s3,scene,,0,0,0,50,40,10',
      's1,s3,campaign,"spring, ""big""",300,240,60,200,160,40',
      '',
    ].join('\n'));
    assert.deepEqual(JSON.parse(formatReport(REPORT, 'jsonl')), REPORT);
    const same = formatReport({ ...REPORT, added: { total: 0, explained: 0, unexplained: 0 }, removed: { total: 0, explained: 0, unexplained: 0 }, unexplainedShare: null, byScene: [], byCampaign: [] }, 'table');
    assert.match(same, /the two snapshots hold the same followers/);
    const many = formatReport({ ...REPORT, byCampaign: Array.from({ length: 25 }, (_, k) => ({ key: `c${k}`, added: 1, addedUnexplained: 0, removed: 0, removedUnexplained: 0 })) }, 'table');
    assert.match(many, / {2}… 5 more \(--format csv or jsonl lists every one\)/);
  });

  it('prints listed differences in fixed columns, as CSV or as JSON lines', () => {
    const rows: DifferenceRow[] = [
      { openid: openidOf(1), side: 'added', explained: true, scene: 'ADD_SCENE_QR_CODE', campaign: 'spring' },
      { openid: openidOf(2), side: 'added', explained: false, scene: '', campaign: '' },
    ];
    assert.equal(listHeader('table') + formatRows(rows, 'table'), [
      `openid                        side     explained  scene                           campaign`,
      `${openidOf(1)}  added    yes        ADD_SCENE_QR_CODE               spring`,
      `${openidOf(2)}  added    no         -                               -`,
      '',
    ].join('\n'));
    assert.equal(listHeader('csv') + formatRows(rows, 'csv'), `openid,side,explained,scene,campaign\n${openidOf(1)},added,true,ADD_SCENE_QR_CODE,spring\n${openidOf(2)},added,false,,\n`);
    assert.equal(listHeader('jsonl'), '');
    assert.deepEqual(formatRows(rows, 'jsonl').trimEnd().split('\n').map((l) => JSON.parse(l) as unknown), rows);
  });
});

// The commands against a store holding: s0 (complete, dropped by retention), s1 (complete), s2 (incomplete), s3
// (complete). s1 → s3: u1 and u2 removed (u1's unsubscribe delivered), u5 and u6 added (u5's subscribe delivered).
const APPID = 'wxa';
const DAY1 = Date.UTC(2026, 2, 1, 10);
const HOUR = 3_600_000;
const noDlq: RecordProducer = { send: () => Promise.reject(new Error('nothing is refused here')), close: () => Promise.resolve() };

function snapshot(id: string, t0: number, openids: readonly number[], complete = true): SnapshotRecord[] {
  return [
    { v: 1, kind: 'begin', appid: APPID, snapshotId: id, startedAt: t0 },
    { v: 1, kind: 'page', appid: APPID, snapshotId: id, page: 0, cursor: '', nextOpenid: '', total: openids.length, openids: openids.map(openidOf), fetchedAt: t0 + 1000 },
    { v: 1, kind: 'end', appid: APPID, snapshotId: id, complete, pages: 1, openids: openids.length, total: openids.length, startedAt: t0, endedAt: t0 + 600_000, ...(complete ? {} : { reason: 'stopped' }) },
  ];
}

async function fillStore(t: TestEnv): Promise<void> {
  const client = createClickHouse(t.config.clickhouse);
  const db = t.config.clickhouse.database;
  try {
    await migrate(client, db, silentLogger());
    const { topics } = t.config.kafka;
    let offset = 0;
    const record = (topic: string, value: Buffer): InRecord => ({ topic, partition: 0, offset: String(offset++), key: null, value, timestamp: '0' });
    await clickHouseWriter(client, db, noDlq, 'dlq').write(routeRecords([
      ...[callbackEvent(APPID, openidOf(1), 'unsubscribe', (DAY1 + 2 * HOUR) / 1000), callbackEvent(APPID, openidOf(5), 'subscribe', (DAY1 + 3 * HOUR) / 1000, { scene: 'ADD_SCENE_QR_CODE', qrScene: 'spring' })]
        .map((e) => record(topics.userEvents, encodeUserEvent(e))),
      ...[
        ...snapshot('s0', DAY1 - 24 * HOUR, [0, 1, 2, 3]), ...snapshot('s1', DAY1, [0, 1, 2, 3]), ...snapshot('s2', DAY1 + 12 * HOUR, [0], false),
        ...snapshot('s3', DAY1 + 24 * HOUR, [0, 3, 5, 6]),
      ].map((r) => record(topics.snapshots, encodeSnapshotRecord(r))),
    ], topics, 1));
    await client.command({ query: `INSERT INTO ${db}.snapshot_drops (appid, snapshot_id, dropped_at) VALUES ('${APPID}', 's0', now64(3))` });
    await client.command({ query: `ALTER TABLE ${db}.snapshot_members DROP PARTITION ('${APPID}', 's0')` });
  } finally {
    await client.close();
  }
}

describe('wxsync compare and wxsync snapshots against a store, directly and through wxsync run', { timeout: 240_000 }, () => {
  let t: TestEnv;
  let port: number;
  const run = (args: readonly string[]): Promise<Ran> => wxsync(t.env, args);

  before(async () => {
    [port = 0] = await freePorts(1);
    t = testEnv({ PORT: String(port) });
    const accounts = path.join(t.dataDir, 'accounts.json');
    writeFileSync(accounts, JSON.stringify([{ appid: APPID, secret: 's', token: 'tok' }, { appid: 'wxempty', secret: 's', token: 'tok' }]));
    t.env['WXSYNC_ACCOUNTS'] = accounts;
    await fillStore(t);
  });
  after(() => { t.cleanup(); });

  /** One line on stderr, nothing on stdout, the exit code. */
  const refused = async (args: readonly string[], code: number, message: RegExp): Promise<void> => {
    const ran = await run(args);
    assert.equal(ran.code, code, `${args.join(' ')}: ${ran.stderr}`);
    assert.equal(ran.stdout, '', args.join(' '));
    assert.match(ran.stderr, message, args.join(' '));
    assert.equal(ran.stderr.trimEnd().split('\n').length, 1, `one line: ${ran.stderr}`);
  };

  const badInput = async (): Promise<void> => {
    await refused(['compare', APPID, '--format', 'xml'], 2, /^wxsync: USAGE_INVALID: --format must be table, csv, jsonl$/m);
    await refused(['compare', APPID, '--list', 'both'], 2, /--list must be added or removed/);
    await refused(['compare', APPID, '--from', 'no such id!'], 2, /--from must be a snapshot id/);
    await refused(['compare', 'wxb'], 2, /unknown account wxb/);
    await refused(['compare', APPID, '--from', 'nope'], 2, /unknown snapshot nope of wxa \(--from\)/);
    await refused(['compare', APPID, '--from', 's3', '--to', 's1'], 2, /--from s3 did not start before --to s1/);
    await refused(['compare', APPID, '--from', 's1', '--to', 's1'], 2, /both name s1/);
    await refused(['compare', APPID, '--from', 's0'], 1, /SNAPSHOT_UNAVAILABLE: snapshot s0 of wxa was dropped by retention/);
    await refused(['compare', APPID, '--list', 'added', '--to', 's2'], 1, /s2 of wxa is incomplete \(stopped\)/);
    await refused(['compare', 'wxempty'], 1, /wxempty has no complete snapshot to compare/);
    await refused(['snapshots', APPID, '--format', 'yaml'], 2, /--format must be/);
  };

  const outputs = async (): Promise<{ report: ComparisonReport; list: string; listing: SnapshotListing; table: string }> => {
    const json = await run(['compare', APPID, '--format', 'jsonl']);
    assert.equal(json.code, 0, json.stderr);
    const list = await run(['compare', APPID, '--list', 'removed', '--format', 'csv']);
    assert.equal(list.code, 0, list.stderr);
    const listing = await run(['snapshots', APPID, '--format', 'jsonl']);
    assert.equal(listing.code, 0, listing.stderr);
    const table = await run(['snapshots', APPID]);
    assert.equal(table.code, 0, table.stderr);
    return {
      report: JSON.parse(json.stdout) as ComparisonReport,
      list: list.stdout,
      listing: { appid: APPID, keep: 7, snapshots: listing.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as SnapshotListing['snapshots'][number]) },
      table: table.stdout,
    };
  };

  let direct: Awaited<ReturnType<typeof outputs>>;

  it('opens the store itself when nothing runs: the comparison, a list, the snapshots', async () => {
    direct = await outputs();
    const { report } = direct;
    assert.deepEqual([report.from.snapshotId, report.to.snapshotId], ['s1', 's3']);
    assert.deepEqual([report.added, report.removed], [{ total: 2, explained: 1, unexplained: 1 }, { total: 2, explained: 1, unexplained: 1 }]);
    assert.equal(report.unexplainedShare, 0.5);
    assert.deepEqual(report.byCampaign.map((g) => [g.key, g.added, g.removed]), [['', 1, 2], ['spring', 1, 0]]);
    assert.equal(direct.list, `openid,side,explained,scene,campaign\n${openidOf(1)},removed,true,,\n${openidOf(2)},removed,false,,\n`);
    assert.deepEqual(direct.listing.snapshots.map((s) => [s.snapshotId, s.state, s.data]), [
      ['s0', 'complete', 'dropped'], ['s1', 'complete', 'kept'], ['s2', 'incomplete', 'kept'], ['s3', 'complete', 'kept'],
    ]);
    assert.match(direct.table, /^snapshot +started +ended +total +state +data +reconcile/);
    assert.match(direct.table, /\ns2 +2026-03-01 22:00:00Z +2026-03-01 22:10:00Z +1 +incomplete +kept +— +— +— +— +stopped\n/);
  });

  it('refuses bad input with one line and exit 2, a snapshot it cannot compare with exit 1, when it opens the store', badInput);

  it('asks the running wxsync instead while it holds the store, with the same answers', async () => {
    const running = await startRun(t.env, port, 'api');
    try {
      const via = await outputs();
      assert.deepEqual({ ...via.report, durationMs: 0 }, { ...direct.report, durationMs: 0 });
      assert.equal(via.list, direct.list);
      assert.deepEqual(via.listing, direct.listing);
      assert.equal(via.table, direct.table);
      await badInput();
      const added = await run(['compare', APPID, '--list', 'added', '--format', 'jsonl']);
      assert.equal(added.code, 0, added.stderr);
      assert.deepEqual(added.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown), [
        { openid: openidOf(5), side: 'added', explained: true, scene: 'ADD_SCENE_QR_CODE', campaign: 'spring' },
        { openid: openidOf(6), side: 'added', explained: false, scene: '', campaign: '' },
      ]);
    } finally {
      assert.equal(await running.stop(), 0, running.stderr());
    }
  });
});
