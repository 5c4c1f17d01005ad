/**
 * Pieces of a whole wxsync on one machine against the simulator, shared by `npm run chaos` and `wxsync demo`:
 * a private broker, the accounts file, `wxsync run` as a child process, and the admin API calls that snapshot,
 * reconcile and compare an account with the simulator's truth.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { answerError, readText, requestRunning } from './api-client.ts';
import { sleep } from './backoff.ts';
import { packageRoot, type Config } from './config.ts';
import { ErrorCode, WxsyncError } from './errors.ts';
import { KAFKA_VERSION, ensureKafkaJars, startKafka, type KafkaLocalConfig } from './kafka-local.ts';
import type { Logger } from './logger.ts';
import type { ReadyAccount } from '../sim/server.ts';
import type { SnapshotStreamLine } from '../producers/snapshot/main.ts';
import type { Progress, SnapshotResult } from '../producers/snapshot/runner.ts';
import type { ReconcileReport } from '../producers/reconcile/runner.ts';

export const WXSYNC_BIN = path.join(packageRoot, 'bin', 'wxsync.js');
const READY_TIMEOUT_MS = 120_000;
const EQUAL_TIMEOUT_MS = 60_000;
const BUSY_RETRY_MS = 180_000;

/**
 * A broker of its own in `dir` on the given ports (broker, controller), its jars linked from the shared cache
 * (fetched there once with Maven): nothing it stores mixes with the developer's broker, and removing `dir` removes it all.
 */
export async function startPrivateKafka(
  shared: KafkaLocalConfig, dir: string, ports: readonly [number, number], heap: string, logger: Logger,
): Promise<{ readonly broker: KafkaLocalConfig; readonly pid: number }> {
  mkdirSync(dir, { recursive: true });
  symlinkSync(await ensureKafkaJars(shared, logger), path.join(dir, `libs-${KAFKA_VERSION}`));
  const broker: KafkaLocalConfig = { ...shared, dir, port: ports[0], controllerPort: ports[1], heap, startTimeoutMs: 90_000 };
  const { pid } = await startKafka(broker, logger);
  return { broker, pid };
}

/** WXSYNC_ACCOUNTS for the simulator's accounts, each snapshotted on `snapshotCron` (node-cron, with seconds) if given. */
export function writeAccountsFile(file: string, accounts: readonly ReadyAccount[], snapshotCron?: string): void {
  writeFileSync(file, JSON.stringify(accounts.map(({ appid, secret, token, encodingAESKey, mode }) => ({ appid, secret, token, encodingAESKey, mode, ...(snapshotCron === undefined ? {} : { snapshotCron }) }))));
}

export interface SimulatedRunSettings {
  readonly brokers: string;
  readonly dataDir: string;
  readonly accountsFile: string;
  readonly apiBase: string;
  /** The public listener, where the simulator pushes. */
  readonly port: number;
  readonly logLevel: string;
}

/** The environment of a `wxsync run` against the simulator, its waits shortened for runs of minutes rather than days. */
export function simulatedRunEnv(settings: SimulatedRunSettings): Record<string, string> {
  return {
    KAFKA_BROKERS: settings.brokers, WXSYNC_DATA_DIR: settings.dataDir, WXSYNC_ACCOUNTS: settings.accountsFile, WECHAT_API_BASE: settings.apiBase,
    PORT: String(settings.port), WXSYNC_ADMIN_PORT: '0', WXSYNC_LOG_LEVEL: settings.logLevel, WXSYNC_RECONCILE_GRACE_S: '2', WXSYNC_SESSION_TIMEOUT_MS: '6000',
    WXSYNC_SNAPSHOT_LEASE_TTL_S: '6', WXSYNC_RECONCILE_POLL_S: '2',
    // Minutes of churn at up to thousands of pushes a second against accounts of a few thousand followers, with a
    // fifth of the pushes dropped on purpose (and, in the chaos run, more lost while wxsync is killed): far more
    // unfollows are lost than the 5% guard against a broken snapshot allows in production. The simulator's
    // snapshots are never broken, and each correction is still confirmed by batchget.
    WXSYNC_RECONCILE_MAX_STALE_SHARE: '1',
  };
}

/**
 * `wxsync run` as a child in its own process group (a terminal's Ctrl-C reaches only its parent, which stops it
 * in order), once its public /readyz answers 200. `stderr` takes its logs.
 */
export async function spawnRun(env: Record<string, string>, port: number, stderr: 'inherit' | 'ignore' | number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [WXSYNC_BIN, 'run'], { env, stdio: ['ignore', 'ignore', stderr], detached: true });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while ((await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status, () => 0)) !== 200) {
    if (Date.now() > deadline || child.exitCode !== null || child.signalCode !== null) {
      child.kill('SIGKILL');
      throw new WxsyncError(ErrorCode.ApiRequestFailed, `wxsync run (pid ${child.pid ?? '?'}) did not become ready${child.exitCode === null ? '' : `: it exited with code ${child.exitCode}`}`);
    }
    await sleep(250);
  }
  return child;
}

/** A request to the admin listener of the `wxsync run` writing into `config`'s data directory; its body when it answered 200. */
export async function adminText(config: Config, method: 'GET' | 'POST', pathname: string): Promise<string> {
  const answer = await requestRunning(config, method, pathname);
  if (answer === undefined) throw new WxsyncError(ErrorCode.ApiRequestFailed, `no wxsync run listens for ${pathname}`);
  if (answer.status !== 200) throw await answerError(answer, 'api');
  return readText(answer.body);
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

/** The simulator's truth: the account's followers, sorted as the store's list is. */
export async function truthFollowers(apiBase: string, appid: string): Promise<string[]> {
  return lines(await (await fetch(`${apiBase}/__sim/accounts/${appid}/followers`)).text()).sort();
}

/** The store's followers through the admin API, sorted. */
export async function storeFollowers(config: Config, appid: string): Promise<string[]> {
  return lines(await adminText(config, 'GET', `/api/followers/${appid}`));
}

/** How many openids are in one sorted list and not the other, either way. */
export function differenceCount(a: readonly string[], b: readonly string[]): number {
  let i = 0;
  let j = 0;
  let differ = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x !== undefined && x === y) {
      i += 1;
      j += 1;
    } else if (y === undefined || (x !== undefined && x < y)) {
      differ += 1;
      i += 1;
    } else {
      differ += 1;
      j += 1;
    }
  }
  return differ;
}

/** Waits until every callback accepted while Kafka was away has left the spool. */
export async function spoolDrained(config: Config, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!/^wxsync_callback_spool_depth 0$/m.test(await adminText(config, 'GET', '/metrics'))) {
    if (Date.now() > deadline) throw new WxsyncError(ErrorCode.ApiRequestFailed, `the callback spool did not drain within ${timeoutMs / 1000} s`);
    await sleep(1000);
  }
}

/** A snapshot of the account now, run inside the running wxsync (so it is enriched from the store), with its progress. */
export async function snapshotThroughRun(config: Config, appid: string, onProgress: (progress: Progress) => void): Promise<SnapshotResult> {
  const answer = await requestRunning(config, 'POST', `/api/snapshot/${appid}`);
  if (answer === undefined) throw new WxsyncError(ErrorCode.ApiRequestFailed, 'no wxsync run listens for snapshots');
  if (answer.status !== 200) throw await answerError(answer, 'snapshot');
  for await (const text of createInterface({ input: answer.body, crlfDelay: Infinity })) {
    const line = JSON.parse(text) as SnapshotStreamLine;
    if ('progress' in line) onProgress(line.progress);
    else if ('result' in line) return line.result;
    else throw new WxsyncError(ErrorCode.ApiRequestFailed, `the snapshot of ${appid} failed (${line.code}): ${line.error}`);
  }
  throw new WxsyncError(ErrorCode.ApiRequestFailed, `the running wxsync ended the snapshot of ${appid} without a result`);
}

export interface Settled {
  readonly appid: string;
  readonly equal: boolean;
  /** Openids in the store or the truth but not both, at the last look. */
  readonly differences: number;
  /** Followers in the truth and in the store, at the last look. */
  readonly followers: number;
  readonly stored: number;
}

/**
 * A snapshot of the account now and its reconcile, both inside the running wxsync; the reconcile's report. A snapshot
 * refused as busy is asked for again for a while: after wxsync run or the broker was killed, the lease member of the
 * dead session holds the account until the broker notices it is gone.
 */
export async function snapshotAndReconcile(config: Config, appid: string, onProgress: (progress: Progress) => void): Promise<ReconcileReport> {
  const deadline = Date.now() + BUSY_RETRY_MS;
  let snapshot = await snapshotThroughRun(config, appid, onProgress);
  while (snapshot.status === 'busy' && Date.now() < deadline) {
    await sleep(2000);
    snapshot = await snapshotThroughRun(config, appid, onProgress);
  }
  if (snapshot.status !== 'complete') throw new WxsyncError(ErrorCode.ApiRequestFailed, `the snapshot of ${appid} ended ${snapshot.status}: ${snapshot.reason ?? ''}`);
  const reconcile = JSON.parse(await adminText(config, 'POST', `/api/reconcile/${appid}`)) as ReconcileReport;
  if (reconcile.status !== 'done') throw new WxsyncError(ErrorCode.ApiRequestFailed, `the reconcile of ${appid} was ${reconcile.status}: ${reconcile.reason ?? ''}`);
  return reconcile;
}

/**
 * Brings the store to WeChat's truth once pushes have stopped: a snapshot, its reconcile, then the store compared
 * with the truth until they are equal (the corrections are still being loaded) or a minute has passed.
 */
export async function settleAccount(config: Config, apiBase: string, appid: string, onProgress: (progress: Progress) => void = () => undefined): Promise<Settled> {
  await snapshotAndReconcile(config, appid, onProgress);
  const truth = await truthFollowers(apiBase, appid);
  const deadline = Date.now() + EQUAL_TIMEOUT_MS;
  for (;;) {
    const store = await storeFollowers(config, appid);
    const differences = differenceCount(store, truth);
    if (differences === 0 || Date.now() > deadline) return { appid, equal: differences === 0, differences, followers: truth.length, stored: store.length };
    await sleep(1000);
  }
}
