/**
 * `npm run chaos`'s engine: `wxsync run` (every role) against three simulated accounts pushing safe-mode
 * callbacks with 20% dropped and 10% duplicated, on this run's own broker, while faults are injected: the broker
 * stopped and restarted (the spool's disk refusing writes meanwhile), `wxsync run` SIGKILLed and restarted
 * twice, the broker SIGKILLed and restarted; all the while each account is snapshotted and reconciled every few
 * seconds. Then a last snapshot and its reconcile per account, and the verdict: the store against WeChat's
 * truth, and every correction the reconciles emitted against the truth at the time it carries.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { adminToken, readAdminEndpoint } from '../lib/admin.ts';
import { createClickHouse } from '../lib/clickhouse.ts';
import { loadConfig, packageRoot } from '../lib/config.ts';
import { KAFKA_VERSION, ensureKafkaJars, startKafka, stopKafka, type KafkaLocalConfig } from '../lib/kafka-local.ts';
import { silentLogger } from '../lib/logger.ts';
import type { ChurnSummary } from '../sim/churn.ts';
import { DEFAULT_SIM_OPTIONS } from '../sim/options.ts';
import { startSim, type RunningSim } from '../sim/server.ts';
import { TruthHistory } from './truth.ts';

export interface ChaosOptions {
  readonly dir: string;
  /** Free ports: the broker, its controller, wxsync's public listener. */
  readonly ports: readonly [number, number, number];
  /** How long the broker stays stopped (the full run: 60 s). */
  readonly brokerDownMs: number;
  readonly followers: readonly number[];
  /** Churn per account per round while the faults run. */
  readonly churnPerRound: number;
}

export interface ChaosReport {
  readonly pushesSent: number;
  readonly answeredSuccess: number;
  /** Pushes the simulator gave up on after all its attempts (wxsync down or refusing): lost, like the dropped. */
  readonly failedAllAttempts: number;
  /** Pushes the simulator sent again because a delivery failed (503 while the spool refused, wxsync down). */
  readonly retriedBySimulator: number;
  readonly droppedBySimulator: number;
  readonly duplicateIds: number;
  /** Reconcile runs that ended `ok`, the scheduled ones during the faults and the last ones. */
  readonly reconcileRuns: number;
  readonly corrections: number;
  /** Corrections whose state the user did not hold at the time they carry (see truth.ts). */
  readonly contradictingCorrections: number;
  /** The first few, with the user's history, to say what went wrong. */
  readonly contradictionSamples: readonly string[];
  readonly accountsEqual: number;
  readonly accounts: number;
  readonly faults: readonly string[];
  readonly seconds: number;
}

const BIN = path.join(packageRoot, 'bin', 'wxsync.js');
const SPOOL_REFUSAL_MS = 10_000;
/** node-cron with seconds: a snapshot of every account every 15 s, each followed by its reconcile. */
const FAST_SNAPSHOT_CRON = '*/15 * * * * *';

/** Sets or clears the immutable flag on a directory and everything in it (ext4 and most Linux filesystems). */
async function immutable(dir: string, on: boolean): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile('chattr', ['-R', on ? '+i' : '-i', dir], (error) => { if (error === null) resolve(); else reject(new Error(`chattr: ${error.message}`, { cause: error })); });
  });
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const logger = silentLogger();
  const started = performance.now();
  const [brokerPort, controllerPort, port] = options.ports;
  const shared = loadConfig({}).kafkaLocal;
  symlinkSync(await ensureKafkaJars(shared, logger), path.join(options.dir, `libs-${KAFKA_VERSION}`));
  const broker: KafkaLocalConfig = { ...shared, dir: options.dir, port: brokerPort, controllerPort, heap: '-Xms256m -Xmx512m', startTimeoutMs: 90_000 };
  await startKafka(broker, logger);
  const sim: RunningSim = await startSim({
    ...DEFAULT_SIM_OPTIONS, port: 0, accounts: options.followers.length, followers: [...options.followers], mode: 'safe',
    callbackUrl: `http://127.0.0.1:${port}/wechat`, dropRate: 0.2, dupRate: 0.1, logLevel: 'silent', pushConcurrency: 64,
  }, logger);
  const accountsFile = path.join(options.dir, 'accounts.json');
  writeFileSync(accountsFile, JSON.stringify(sim.ready.accounts.map(({ appid, secret, token, encodingAESKey, mode }) => ({ appid, secret, token, encodingAESKey, mode, snapshotCron: FAST_SNAPSHOT_CRON }))));
  const env: Record<string, string> = {
    KAFKA_BROKERS: `127.0.0.1:${brokerPort}`, WXSYNC_DATA_DIR: path.join(options.dir, 'data'), WXSYNC_ACCOUNTS: accountsFile, WECHAT_API_BASE: sim.apiBase,
    PORT: String(port), WXSYNC_ADMIN_PORT: '0', WXSYNC_LOG_LEVEL: 'error', WXSYNC_RECONCILE_GRACE_S: '2', WXSYNC_SESSION_TIMEOUT_MS: '6000',
    WXSYNC_SNAPSHOT_LEASE_TTL_S: '6', WXSYNC_RECONCILE_POLL_S: '2',
    // Minutes of churn at thousands of pushes a second against accounts of a few thousand followers, with a
    // fifth of the pushes dropped and more lost while wxsync is killed: far more unfollows are lost than the
    // 5% guard against a broken snapshot allows in production. Each correction is still confirmed by batchget.
    WXSYNC_RECONCILE_MAX_STALE_SHARE: '1',
  };
  const config = loadConfig(env);
  const spoolDir = config.callback.spoolDir;
  const faults: string[] = [];
  let run: ChildProcess | undefined;
  const startRun = async (): Promise<void> => {
    const child = spawn(process.execPath, [BIN, 'run'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    run = child;
    const deadline = Date.now() + 120_000;
    while ((await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status, () => 0)) !== 200) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('wxsync run did not become ready');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };
  const admin = async (pathname: string): Promise<string> => {
    const endpoint = readAdminEndpoint(config.http.admin);
    if (endpoint === undefined) throw new Error('no admin endpoint');
    const res = await fetch(`http://${endpoint.host}:${endpoint.port}${pathname}`, { headers: { authorization: `Bearer ${adminToken(config.http.admin, false) ?? ''}` } });
    return res.text();
  };
  const cli = async (args: readonly string[]): Promise<number | null> => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    const [code] = await once(child, 'exit') as [number | null];
    return code;
  };

  const truth = new TruthHistory();
  const followersOf = async (appid: string): Promise<string[]> => (await (await fetch(`${sim.apiBase}/__sim/accounts/${appid}/followers`)).text()).split('\n').filter((l) => l !== '');
  for (const { appid } of sim.ready.accounts) truth.begin(appid, await followersOf(appid));
  let sent = 0;
  let success = 0;
  let dropped = 0;
  let failed = 0;
  let retried = 0;
  const loading = { on: true };
  const load = (async () => {
    while (loading.on) {
      await Promise.all(sim.ready.accounts.map(async ({ appid }) => {
        const res = await fetch(`${sim.apiBase}/__sim/accounts/${appid}/churn`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ subscribe: options.churnPerRound, unsubscribe: Math.floor(options.churnPerRound * 0.8) }),
        });
        const summary = await res.json() as ChurnSummary;
        for (const event of summary.events) truth.record(appid, event.openid, event.type, event.createTime);
        retried += summary.retried;
        const events = summary.subscribed + summary.unsubscribed;
        sent += events;
        dropped += summary.dropped;
        failed += summary.failed;
        success += events - summary.dropped - summary.failed;
      }));
    }
  })();

  try {
    await startRun();
    const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    await pause(5000);
    faults.push(`broker stopped for ${Math.max(options.brokerDownMs, SPOOL_REFUSAL_MS + 2000) / 1000} s`);
    await stopKafka(broker, logger);
    // While callbacks can only go to the spool, its disk refuses writes for a while: an immutable flag stops
    // even root from appending to a segment or creating one. Answers are 503 then, and WeChat retries.
    await pause(2000);
    faults.push(`the spool's disk refusing writes for ${SPOOL_REFUSAL_MS / 1000} s, while the broker was down`);
    await immutable(spoolDir, true);
    try {
      await pause(SPOOL_REFUSAL_MS);
    } finally {
      await immutable(spoolDir, false);
    }
    await pause(Math.max(0, options.brokerDownMs - SPOOL_REFUSAL_MS - 2000));
    await startKafka(broker, logger);
    for (const round of [1, 2]) {
      await pause(5000);
      faults.push(`wxsync run SIGKILLed and restarted (${round})`);
      run?.kill('SIGKILL');
      if (run !== undefined) await once(run, 'exit').catch(() => undefined);
      await startRun();
    }
    await pause(5000);
    faults.push('broker SIGKILLed and restarted');
    const pid = Number(readFileSync(path.join(options.dir, 'run', 'kafka.pid'), 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    await pause(2000);
    await startKafka(broker, logger);
    await pause(5000);
    loading.on = false;
    await load;

    // Quiet: every push answered, the spool drained, everything loaded; then one snapshot and reconcile each.
    const deadline = Date.now() + 300_000;
    for (;;) {
      const metrics = await admin('/metrics');
      if (/^wxsync_callback_spool_depth 0$/m.test(metrics)) break;
      if (Date.now() > deadline) throw new Error('the spool never drained');
      await pause(1000);
    }
    let accountsEqual = 0;
    for (const { appid } of sim.ready.accounts) {
      if (await cli(['snapshot', appid]) !== 0) continue;
      if (await cli(['reconcile', appid]) !== 0) continue;
      const now = (await followersOf(appid)).sort();
      for (let attempt = 0; attempt < 60; attempt += 1) {
        const listed = (await admin(`/api/followers/${appid}`)).split('\n').filter((l) => l !== '');
        if (listed.length === now.length && listed.every((o, k) => o === now[k])) {
          accountsEqual += 1;
          break;
        }
        await pause(1000);
      }
    }
    run?.kill('SIGTERM');
    if (run !== undefined) await once(run, 'exit');
    run = undefined;
    const clickhouse = createClickHouse(config.clickhouse);
    const db = config.clickhouse.database;
    const [row] = await (await clickhouse.query({ query: `SELECT count() - uniqExact(id) AS twice FROM ${db}.user_events FINAL`, format: 'JSONEachRow' })).json<{ twice: string }>();
    const [runs] = await (await clickhouse.query({ query: `SELECT count() AS n FROM ${db}.reconcile_runs WHERE status = 'done' AND dry_run = 0`, format: 'JSONEachRow' })).json<{ n: string }>();
    const corrections = await (await clickhouse.query({
      query: `SELECT e.appid AS appid, openid, type, toUnixTimestamp64Milli(at) AS at, toUnixTimestamp64Milli(r.answered) AS answered, correction_rule AS rule,
        correction_snapshot_id AS snapshot
        FROM ${db}.user_events AS e FINAL
        LEFT JOIN (SELECT snapshot_id, max(finished_at) AS answered FROM ${db}.reconcile_runs WHERE dry_run = 0 GROUP BY snapshot_id) AS r
          ON r.snapshot_id = e.correction_snapshot_id
        WHERE source = 'correction'`, format: 'JSONEachRow',
    })).json<{ appid: string; openid: string; type: 'subscribe' | 'unsubscribe'; at: string; answered: string; rule: string; snapshot: string }>();
    await clickhouse.close();
    // A correction is checked against the truth from its time until its reconcile run ended, by when WeChat had
    // answered (see TruthHistory.contradicts).
    const contradicting = corrections.filter((c) => truth.contradicts(c.appid, c.openid, c.type, Number(c.at), Math.max(Number(c.at), Number(c.answered))));
    return {
      pushesSent: sent, answeredSuccess: success, failedAllAttempts: failed, retriedBySimulator: retried, droppedBySimulator: dropped, duplicateIds: Number(row?.twice ?? -1),
      reconcileRuns: Number(runs?.n ?? 0), corrections: corrections.length, contradictingCorrections: contradicting.length,
      contradictionSamples: contradicting.slice(0, 5).map((c) => `${c.rule} ${c.type} at ${new Date(Number(c.at)).toISOString()}, run ended ${new Date(Number(c.answered)).toISOString()} (${c.snapshot}): ${truth.describe(c.appid, c.openid)}`),
      accountsEqual, accounts: sim.ready.accounts.length, faults, seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await immutable(spoolDir, false).catch(() => undefined);
    loading.on = false;
    await load.catch(() => undefined);
    run?.kill('SIGKILL');
    await sim.close();
    await stopKafka(broker, logger);
  }
}
