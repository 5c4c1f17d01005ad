/**
 * Reconcile time at 1M and 10M followers with 0.2% drift each way, next to the seed's approach on MariaDB.
 *   - the store (chDB) holds every follower of a simulated account as subscribed; then 0.2% of them leave
 *     and 0.2% new users follow on the simulator with no callback delivered: the drift;
 *   - a complete snapshot of the new truth is put into the store as the snapshot producer would load it
 *     (begin, pages, end, snapshot_members; the producer has its own bench);
 *   - timed: one reconcile run (both anti-joins, batchget of every difference against the simulator,
 *     corrections published to Kafka with acks=all, the run recorded);
 *   - baseline, same data, same run: the seed's temp table of snapshot openids and two NOT IN queries with
 *     updates in batches of 1000 on the MariaDB server of this machine, given a 4 GB buffer pool for the
 *     run (bench/seed-baseline.ts).
 * The run is timed twice: over the freshly bulk-loaded store (unmerged parts: the worst case), and again once
 * the store's background merges have caught up (OPTIMIZE … FINAL), as a store at rest would be.
 * Goal at 10M: ≤ 2 s and ≥ 25× faster than the baseline.
 *
 * `--initial N`: the initial load instead: an empty store against a snapshot of N followers, so every follower
 * is missing (N batchget lookups, N corrections published): time, corrections/s and peak RSS, next to the
 * drift run at the same size.
 *
 * Usage: node --max-old-space-size=8192 --import tsx bench/reconcile.ts [--followers 1000000,10000000] [--initial 10000000]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { createClickHouse, type ClickHouseClient } from '../lib/clickhouse.ts';
import { loadConfig, packageRoot, type Config } from '../lib/config.ts';
import { createKafkaGateway } from '../lib/kafka.ts';
import { createLogger } from '../lib/logger.ts';
import { migrate } from '../lib/migrate.ts';
import { topicSpecs } from '../lib/topics.ts';
import { WechatClients } from '../lib/wechat/client.ts';
import { reconcilerFor } from '../producers/reconcile/main.ts';
import { createReconciler, type ReconcileReport } from '../producers/reconcile/runner.ts';
import { clickhouseReconcileStore } from '../producers/reconcile/store.ts';
import type { OffsetSource } from '../producers/reconcile/watermark.ts';
import { runSeedBaseline } from './seed-baseline.ts';
import { parseCount, peakRssMb, report } from './support.ts';

const DRIFT = 0.002;
const PAGE = 10_000;

const args = process.argv.slice(2);
const at = args.indexOf('--followers');
const initialAt = args.indexOf('--initial');
const initial = initialAt < 0 ? undefined : parseCount(args[initialAt + 1], 10_000_000);
const sizes = initial !== undefined && at < 0 ? [] : (at < 0 ? '1000000,10000000' : args[at + 1] ?? '').split(',').map((s) => parseCount(s, 1_000_000));

async function loadOpenids(client: ClickHouseClient, table: string, openids: readonly string[]): Promise<void> {
  const chunks = function* (): Generator<string> {
    for (let i = 0; i < openids.length; i += 100_000) yield `${openids.slice(i, i + 100_000).join('\n')}\n`;
  };
  await client.insert({ table, values: Readable.from(chunks(), { objectMode: false }), format: 'TabSeparated' });
}

async function truth(apiBase: string, appid: string): Promise<string[]> {
  const text = await (await fetch(`${apiBase}/__sim/accounts/${appid}/followers`)).text();
  return text.split('\n').filter((l) => l !== '');
}

/** The watermark of a bench with no consumer: what the first run published is "loaded" for the second. */
const NOTHING_WAITS: OffsetSource = {
  endOffsets: () => Promise.resolve(new Map()),
  committedOffsets: () => Promise.resolve(new Map()),
};

async function benchOne(followers: number, emptyStore: boolean): Promise<void> {
  process.stdout.write(`\n-- ${followers.toLocaleString('en-US')} followers, ${emptyStore ? 'initial load: an empty store, every follower missing' : `${DRIFT * 100}% drift each way`}\n`);
  const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-bench-reconcile-'));
  const sim = spawn(process.execPath, [path.join(packageRoot, 'bin', 'wxsync.js'), 'sim', '--port', '0', '--log-level', 'warn', '--followers', String(followers)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const [line] = (await once(createInterface({ input: sim.stdout }), 'line')) as [string];
    const ready = JSON.parse(line) as { apiBase: string; accounts: { appid: string; secret: string; token: string }[] };
    const account = ready.accounts[0];
    if (account === undefined) throw new Error('the simulator has no account');
    const { appid } = account;
    writeFileSync(path.join(dir, 'accounts.json'), JSON.stringify([{ appid, secret: account.secret, token: account.token }]));
    const config: Config = loadConfig({
      WXSYNC_DATA_DIR: dir, WXSYNC_ACCOUNTS: path.join(dir, 'accounts.json'), WECHAT_API_BASE: ready.apiBase,
      WXSYNC_TOPIC_PREFIX: `bench-${Date.now().toString(36)}.`, WXSYNC_LOG_LEVEL: 'warn', WXSYNC_RECONCILE_GRACE_S: '0',
      WXSYNC_BATCHGET_CONCURRENCY: '8', KAFKA_BROKERS: process.env['KAFKA_BROKERS'] ?? '127.0.0.1:9092',
    });
    const db = config.clickhouse.database;
    const logger = createLogger('warn');
    const clickhouse = createClickHouse(config.clickhouse);
    await migrate(clickhouse, db, logger);
    const kafka = createKafkaGateway(config.kafka, logger);
    await kafka.ensureTopics(topicSpecs(config));

    // The store before the drift: every follower subscribed, long before the snapshot.
    let started = performance.now();
    const before = emptyStore ? [] : await truth(ready.apiBase, appid);
    await clickhouse.command({ query: `CREATE TABLE ${db}.bench_openids (openid String) ENGINE = Memory` });
    await loadOpenids(clickhouse, `${db}.bench_openids`, before);
    await clickhouse.command({
      query: `INSERT INTO ${db}.user_events (id, appid, openid, type, at, source, received_at, ord)
        SELECT hex(sipHash128(openid)), {appid:String}, openid, 'subscribe', toDateTime64('2026-01-01 00:00:00', 3, 'UTC'), 'callback',
          toDateTime64('2026-01-01 00:00:01', 3, 'UTC'), bitShiftLeft(toUInt64(toUnixTimestamp64Milli(toDateTime64('2026-01-01 00:00:00', 3, 'UTC'))), 22)
        FROM ${db}.bench_openids`,
      query_params: { appid },
    });
    await clickhouse.command({ query: `TRUNCATE TABLE ${db}.bench_openids` });

    // The drift, with no callback: 0.2% leave, 0.2% follow.
    const drift = emptyStore ? 0 : Math.round(followers * DRIFT);
    for (let done = 0; done < drift; done += 50_000) {
      const n = Math.min(50_000, drift - done);
      const res = await fetch(`${ready.apiBase}/__sim/accounts/${appid}/churn`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ subscribe: n, unsubscribe: n }),
      });
      if (res.status !== 200) throw new Error(`churn failed: ${await res.text()}`);
    }

    // The snapshot of the new truth, as the consumer would have loaded it.
    const after = await truth(ready.apiBase, appid);
    const snapshotId = `bench-${Date.now()}`;
    const t0 = Date.now() - 60_000;
    const pages = Math.ceil(after.length / PAGE);
    await loadOpenids(clickhouse, `${db}.bench_openids`, after);
    await clickhouse.command({
      query: `INSERT INTO ${db}.snapshot_members (appid, snapshot_id, openid, page)
        SELECT {appid:String}, {sid:String}, openid, intDiv(rowNumberInAllBlocks(), ${PAGE}) + 1 FROM ${db}.bench_openids`,
      query_params: { appid, sid: snapshotId },
    });
    const snapshots = `INSERT INTO ${db}.snapshots (appid, snapshot_id, kind, page, started_at, ended_at, complete, total, pages, openids)`;
    const params = { appid, sid: snapshotId, t0, t1: t0 + 30_000, total: after.length, pages };
    for (const select of [
      `SELECT {appid:String}, {sid:String}, 'begin', 0, fromUnixTimestamp64Milli({t0:Int64}, 'UTC'), 0, 0, 0, 0, 0`,
      `SELECT {appid:String}, {sid:String}, 'page', number + 1, 0, 0, 0, {total:UInt64}, 0, 0 FROM numbers({pages:UInt32})`,
      `SELECT {appid:String}, {sid:String}, 'end', 0, fromUnixTimestamp64Milli({t0:Int64}, 'UTC'), fromUnixTimestamp64Milli({t1:Int64}, 'UTC'), 1, {total:UInt64}, {pages:UInt32}, {total:UInt64}`,
    ]) await clickhouse.command({ query: `${snapshots} ${select}`, query_params: params });
    await clickhouse.command({ query: `DROP TABLE ${db}.bench_openids` });
    report('setup (store, drift, snapshot)', (performance.now() - started) / 1000, 's', 'not timed below');

    // Timed: one reconcile run over the store as loaded.
    const clients = new WechatClients({ apiBase: ready.apiBase, accounts: config.accounts, logger });
    const producer = await kafka.producer();
    const { reconciler } = reconcilerFor({ config, kafka, clickhouse, producer, clients, logger });
    const rssBefore = peakRssMb();
    started = performance.now();
    const run = await reconciler.run({ appid, snapshotId, dryRun: false, trigger: 'manual' });
    const oursS = (performance.now() - started) / 1000;
    if (run.status !== 'done') throw new Error(`reconcile ${run.status}: ${run.reason ?? ''}`);
    const emitted = run.missing.emitted + run.stale.emitted;
    const detail = (r: ReconcileReport): string => `comparison ${r.phases.queryMs} ms, batchget+publish ${r.phases.confirmMs} ms, last sends ${r.phases.publishMs} ms; `
      + `emitted ${r.missing.emitted} subscribes, ${r.stale.emitted} unsubscribes`;

    if (emptyStore) {
      report('wxsync reconcile, initial load', oursS, 's', detail(run));
      report('  corrections published', emitted / oursS, '/s', `${emitted.toLocaleString('en-US')} in all`);
      report('  peak RSS (bench process, chDB inside)', peakRssMb(), 'MB', `${Math.round(rssBefore)} MB before the run`);
    } else {
      // Again once background merges have caught up, as on a store at rest; what the first run published counts as loaded.
      await clickhouse.command({ query: `OPTIMIZE TABLE ${db}.follower_keys FINAL` });
      const rested = createReconciler({
        store: clickhouseReconcileStore(clickhouse, db), profiles: (a) => clients.get(a), producer, offsets: NOTHING_WAITS, settings: config.reconcile,
        topics: config.kafka.topics, consumerGroup: config.consumer.groupId, batchgetConcurrency: config.snapshot.batchgetConcurrency, logger,
      });
      started = performance.now();
      const again = await rested.run({ appid, snapshotId, dryRun: false, trigger: 'manual' });
      const restedS = (performance.now() - started) / 1000;

      // A 4 GB buffer pool, as a production server holding 10M followers would have (the 128 MB default makes the
      // seed ~7× slower at 10M from disk I/O alone): the baseline is the seed at its best, not a strawman.
      const seed = await runSeedBaseline({ appid, followers: before, snapshot: after }, { bufferPoolMb: 4096 });
      report('baseline: seed approach on MariaDB', seed.reconcileMs / 1000, 's', `fill ${seed.fillMs} ms, NOT IN ${seed.queryMs} ms, updates ${seed.updateMs} ms; missing ${seed.missing}, stale ${seed.stale}`);
      report('wxsync reconcile, store freshly loaded', oursS, 's', detail(run));
      report('wxsync reconcile, store at rest (merged)', restedS, 's', detail(again));
      report('speed-up over the seed (fresh)', seed.reconcileMs / 1000 / oursS, '×', followers >= 10_000_000 ? 'goal at 10M: ≤ 2 s and ≥ 25×' : '');
      report('speed-up over the seed (at rest)', seed.reconcileMs / 1000 / restedS, '×');
      if (seed.missing !== run.missing.found || seed.stale !== run.stale.found) {
        throw new Error(`the two approaches disagree: seed ${seed.missing}/${seed.stale}, wxsync ${run.missing.found}/${run.stale.found}`);
      }
    }
    await producer.close();
    clients.close();
    await kafka.close();
    await clickhouse.close();
  } finally {
    sim.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const size of sizes) await benchOne(size, false);
if (initial !== undefined) await benchOne(initial, true);
