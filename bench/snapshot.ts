/**
 * The snapshot producer end to end: a simulated account (no latency) crawled by `wxsync snapshot` into
 * Kafka, loaded by the ClickHouse consumer (in this process) into chDB, until snapshot_status says loaded.
 *   - baseline: the raw pager crawl of the same account, no Kafka, measured in the same run;
 *   - openids/s end to end (goal ≥ 1M/s) and the ratio to the baseline;
 *   - the producer's peak RSS (goal ≤ 256 MB) and its RSS at 1M openids (flat from 1M to 10M).
 *
 * Usage: node --import tsx bench/snapshot.ts [--followers 10000000]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { startClickHouseConsumer } from '../consumers/clickhouse/consumer.ts';
import { topicSpecs } from '../lib/topics.ts';
import { createClickHouse } from '../lib/clickhouse.ts';
import { loadConfig, packageRoot } from '../lib/config.ts';
import { createKafkaGateway } from '../lib/kafka.ts';
import { createLogger } from '../lib/logger.ts';
import { migrate } from '../lib/migrate.ts';
import { WechatClients } from '../lib/wechat/client.ts';
import { followerPages } from '../lib/wechat/pager.ts';
import { parseCount, report } from './support.ts';

const args = process.argv.slice(2);
const at = args.indexOf('--followers');
const followers = parseCount(at < 0 ? undefined : args[at + 1], 10_000_000);

function rssMb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-bench-snapshot-'));
const sim = spawn(process.execPath, [path.join(packageRoot, 'bin', 'wxsync.js'), 'sim', '--port', '0', '--log-level', 'warn',
  '--followers', String(followers), '--user-get-daily-quota', '1000000'], { stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const [line] = (await once(createInterface({ input: sim.stdout }), 'line')) as [string];
  const ready = JSON.parse(line) as { apiBase: string; accounts: { appid: string; secret: string; token: string }[] };
  const account = ready.accounts[0];
  if (account === undefined) throw new Error('the simulator has no account');
  writeFileSync(path.join(dir, 'accounts.json'), JSON.stringify([{ appid: account.appid, secret: account.secret, token: account.token }]));
  const env: Record<string, string> = {
    WXSYNC_DATA_DIR: dir, WXSYNC_ACCOUNTS: path.join(dir, 'accounts.json'), WECHAT_API_BASE: ready.apiBase,
    WXSYNC_TOPIC_PREFIX: `bench-${Date.now().toString(36)}.`, WXSYNC_LOG_LEVEL: 'warn', WXSYNC_USER_GET_DAILY_QUOTA: '1000000',
    KAFKA_BROKERS: process.env['KAFKA_BROKERS'] ?? '127.0.0.1:9092',
  };
  const config = loadConfig(env);
  const logger = createLogger('warn');

  // Baseline: the pager alone.
  const clients = new WechatClients({ apiBase: ready.apiBase, accounts: config.accounts, logger });
  let started = performance.now();
  let crawled = 0;
  for await (const page of followerPages(clients.get(account.appid))) crawled += page.openids.length;
  const baselineRate = crawled / ((performance.now() - started) / 1000);
  clients.close();
  report('baseline: raw user/get crawl (no Kafka)', baselineRate, 'openids/s', `${crawled.toLocaleString('en-US')} openids`);

  const kafka = createKafkaGateway(config.kafka, logger);
  await kafka.ensureTopics(topicSpecs(config));
  const clickhouse = createClickHouse(config.clickhouse);
  await migrate(clickhouse, config.clickhouse.database, logger);
  const consumer = await startClickHouseConsumer({ config, kafka, clickhouse, logger });

  started = performance.now();
  const entry = `const { main } = await import(${JSON.stringify(path.join(packageRoot, 'cli', 'snapshot.ts'))}); process.exitCode = await main(process.argv.slice(1));`;
  const producer = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', entry, account.appid, '--json'], {
    env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let peak = 0;
  let rssAt1M = NaN;
  let stdout = '';
  producer.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  createInterface({ input: producer.stderr }).on('line', (l) => {
    const openids = Number(/, ([\d,]+)\//.exec(l)?.[1]?.replace(/,/g, '') ?? NaN);
    if (Number.isNaN(rssAt1M) && openids >= 1_000_000) rssAt1M = rssMb(producer.pid ?? 0);
  });
  const sampler = setInterval(() => { peak = Math.max(peak, rssMb(producer.pid ?? 0) || 0); }, 50);
  const [code] = (await once(producer, 'exit')) as [number | null];
  clearInterval(sampler);
  const producedS = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`wxsync snapshot exited ${code}: ${stdout}`);
  const result = JSON.parse(stdout) as { snapshotId: string; openids: number };
  for (;;) {
    const rows = await (await clickhouse.query({
      query: `SELECT loaded FROM ${config.clickhouse.database}.snapshot_status WHERE snapshot_id = {id:String}`,
      query_params: { id: result.snapshotId }, format: 'JSONEachRow',
    })).json<{ loaded: boolean | number }>();
    if (rows[0] !== undefined && Boolean(rows[0].loaded)) break;
    if (performance.now() - started > 600_000) throw new Error('the snapshot was not loaded within 10 minutes');
    await new Promise((r) => setTimeout(r, 100));
  }
  const endToEndS = (performance.now() - started) / 1000;
  const e2e = result.openids / endToEndS;
  report('snapshot producer into Kafka', result.openids / producedS, 'openids/s', `${producedS.toFixed(1)} s`);
  report('snapshot end to end (user/get → Kafka → chDB loaded)', e2e, 'openids/s', `goal ≥ 1,000,000; ${(e2e / baselineRate).toFixed(2)}× baseline`);
  report('producer peak RSS', peak, 'MB', 'goal ≤ 256');
  report('producer RSS at 1M openids', rssAt1M, 'MB', 'flat means peak ≈ this');
  await consumer.stop();
  await kafka.close();
  await clickhouse.close();
} finally {
  sim.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
