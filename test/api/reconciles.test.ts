import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { reconcileRuns, runsRequest } from '../../api/reconciles.ts';
import { createClickHouse, type ClickHouseClient } from '../../lib/clickhouse.ts';
import { silentLogger } from '../../lib/logger.ts';
import { migrate } from '../../lib/migrate.ts';
import { testEnv, type TestEnv } from '../support/env.ts';

let env: TestEnv;
let clickhouse: ClickHouseClient;
let db: string;

// Runs as the reconcile role records them: per rule found, unconfirmed, emitted, skipped.
const RUNS = [
  { run: 'r1', appid: 'wx1', snapshot: 's1', dry: 0, status: 'done', reason: '', start: '2026-03-01 10:00:00', missing: [300, 0, 300, 0], stale: [0, 0, 0, 0], live: [0, 0, 0] },
  { run: 'r2', appid: 'wx1', snapshot: 's2', dry: 1, status: 'done', reason: '', start: '2026-03-02 10:00:00', missing: [4, 0, 0, 0], stale: [2, 0, 0, 0], live: [0, 0, 0] },
  { run: 'r3', appid: 'wx1', snapshot: 's2', dry: 0, status: 'done', reason: '', start: '2026-03-02 10:05:00', missing: [5, 1, 4, 0], stale: [3, 0, 2, 1], live: [6, 1, 2] },
  { run: 'r4', appid: 'wx2', snapshot: 't1', dry: 0, status: 'refused', reason: 'incomplete', start: '2026-03-02 11:00:00', missing: [0, 0, 0, 0], stale: [0, 0, 0, 0], live: [0, 0, 0] },
  { run: 'r5', appid: 'wx1', snapshot: 's3', dry: 0, status: 'failed', reason: 'WeChat', start: '2026-03-03 10:00:00', missing: [1, 0, 0, 0], stale: [0, 0, 0, 0], live: [0, 0, 0] },
];

before(async () => {
  env = testEnv();
  clickhouse = createClickHouse(env.config.clickhouse);
  db = env.config.clickhouse.database;
  await migrate(clickhouse, db, silentLogger());
  await clickhouse.insert({
    table: `${db}.reconcile_runs`,
    values: RUNS.map((r) => ({
      run_id: r.run, appid: r.appid, snapshot_id: r.snapshot, trigger: 'snapshot', dry_run: r.dry, status: r.status, reason: r.reason,
      started_at: r.start, finished_at: r.start.replace(/:00$/, ':30'), snapshot_openids: 0, followers: 0,
      missing: r.missing[0], missing_unconfirmed: r.missing[1], missing_emitted: r.missing[2], missing_skipped: r.missing[3],
      stale: r.stale[0], stale_unconfirmed: r.stale[1], stale_emitted: r.stale[2], stale_skipped: r.stale[3],
      live_checked: r.live[0], live_emitted: r.live[1], live_skipped: r.live[2],
    })),
    format: 'JSONEachRow',
  });
});

after(async () => {
  await clickhouse.close();
  env.cleanup();
});

test('every run but dry runs, oldest first, with its corrections by rule', async () => {
  const { runs } = await reconcileRuns(clickhouse, db, ['wx1'], 60);
  assert.deepEqual(runs.map((r) => [r.runId, r.status, r.corrections, r.emitted, r.unconfirmed, r.skipped]), [
    ['r1', 'done', 300, { missing: 300, stale: 0, live: 0 }, 0, 0],
    ['r3', 'done', 7, { missing: 4, stale: 2, live: 1 }, 1, 3],
    ['r5', 'failed', 0, { missing: 0, stale: 0, live: 0 }, 0, 0],
  ]);
  assert.deepEqual(runs[1], {
    appid: 'wx1', runId: 'r3', snapshotId: 's2', trigger: 'snapshot', status: 'done', reason: '',
    startedAt: '2026-03-02T10:05:00.000Z', finishedAt: '2026-03-02T10:05:30.000Z',
    corrections: 7, emitted: { missing: 4, stale: 2, live: 1 }, unconfirmed: 1, skipped: 3,
  });
});

test('several accounts, and the newest runs only', async () => {
  assert.deepEqual((await reconcileRuns(clickhouse, db, ['wx1', 'wx2'], 60)).runs.map((r) => r.runId), ['r1', 'r3', 'r4', 'r5']);
  assert.deepEqual((await reconcileRuns(clickhouse, db, ['wx1', 'wx2'], 2)).runs.map((r) => r.runId), ['r4', 'r5']);
  assert.deepEqual((await reconcileRuns(clickhouse, db, ['wx9'], 60)).runs, []);
});

test('a request names one configured account or all, and a limit', () => {
  const config = { ...env.config, accounts: [{ appid: 'wx1', secret: 's', token: 't' }, { appid: 'wx2', secret: 's', token: 't' }] };
  assert.deepEqual(runsRequest(new URLSearchParams('appid=wx2'), config), { appids: ['wx2'], limit: 60 });
  assert.deepEqual(runsRequest(new URLSearchParams('all=1&limit=1000'), config), { appids: ['wx1', 'wx2'], limit: 1000 });
  for (const query of ['', 'appid=wx1&all=1', 'appid=wx9', 'all=1&limit=0', 'all=1&limit=1001', 'all=1&x=1']) {
    assert.throws(() => runsRequest(new URLSearchParams(query), config), (error: Error & { code?: string }) => error.code === 'USAGE_INVALID', query);
  }
});
