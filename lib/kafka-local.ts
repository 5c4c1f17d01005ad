import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot, type Config } from './config.ts';
import { ErrorCode, WxsyncError } from './errors.ts';
import type { Logger } from './logger.ts';

/**
 * A single-node Apache Kafka broker (KRaft, combined broker+controller) assembled from Maven Central jars,
 * for development and CI machines that have Java and Maven but no Kafka package and no Docker.
 * Unlike a throw-away test broker it keeps its data across stop/start; `fresh` wipes it on request.
 */

export type KafkaLocalConfig = Config['kafkaLocal'];

export const KAFKA_VERSION = '3.9.1';
const MAVEN_PROFILE = 'kafka39';
const HOST = '127.0.0.1';
/** Logged by KafkaRaftServer once controller and broker are both up; kafka/log4j.properties keeps that logger at INFO. */
const READY_LINE = 'Kafka Server started';
/** Snapshot page records are ~330 KB and kafkajs puts every record of one send() for a partition into one batch. */
const MAX_BATCH_BYTES = 16 * 1024 * 1024;
const STOP_GRACE_MS = 20_000;
const KILL_WAIT_MS = 5_000;
const MVN_TIMEOUT_MS = 15 * 60_000;
const FORMAT_TIMEOUT_MS = 60_000;
const POLL_MS = 100;
const LOG_TAIL_LINES = 40;
const OUTPUT_KEEP_CHARS = 64 * 1024;
/** SerialGC and C1-only JIT halve startup CPU on small machines; peak throughput matters less for a local broker. */
const JVM_FLAGS = ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true'];
const CLUSTER_ID = /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/;

export interface KafkaPaths {
  readonly libs: string;
  readonly complete: string;
  readonly run: string;
  readonly data: string;
  readonly meta: string;
  readonly properties: string;
  readonly log: string;
  readonly previousLog: string;
  readonly pid: string;
  readonly clusterId: string;
}

export function kafkaPaths(cfg: KafkaLocalConfig): KafkaPaths {
  const dir = path.resolve(cfg.dir);
  const libs = path.join(dir, `libs-${KAFKA_VERSION}`);
  const run = path.join(dir, 'run');
  const data = path.join(run, 'data');
  return {
    libs,
    complete: path.join(libs, '.complete'),
    run,
    data,
    meta: path.join(data, 'meta.properties'),
    properties: path.join(run, 'server.properties'),
    log: path.join(run, 'kafka.log'),
    previousLog: path.join(run, 'kafka.log.1'),
    pid: path.join(run, 'kafka.pid'),
    clusterId: path.join(run, 'cluster.id'),
  };
}

function fail(message: string, cause?: unknown): WxsyncError {
  return new WxsyncError(ErrorCode.KafkaLocalFailed, message, cause === undefined ? {} : { cause });
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes

interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly output: string;
}

/** Runs a command to completion, keeping only the tail of its interleaved stdout and stderr for error messages. */
function runCommand(command: string, args: readonly string[], timeoutMs: number, cwd?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(cwd === undefined ? {} : { cwd }) });
    let output = '';
    let timedOut = false;
    // Not spawn's own `timeout` option: its timer is never cleared when the command does not exist (ENOENT),
    // which kept the CLI alive for the whole timeout after printing the error.
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const collect = (chunk: Buffer): void => { output = (output + chunk.toString()).slice(-OUTPUT_KEEP_CHARS); };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, output });
    });
  });
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function tail(text: string, lines = LOG_TAIL_LINES): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

function describeExit(result: RunResult, timeoutMs: number): string {
  if (result.timedOut) return `timed out after ${timeoutMs} ms`;
  return result.signal === null ? `exited with code ${result.code}` : `was killed by ${result.signal}`;
}

async function ensureJava(logger: Logger): Promise<void> {
  let result: RunResult;
  try {
    result = await runCommand('java', ['-version'], 30_000);
  } catch (error) {
    if (isNotFound(error)) {
      throw fail(`java was not found on PATH: the local Kafka ${KAFKA_VERSION} broker needs a Java 17 runtime `
        + '(Debian: apt-get install openjdk-17-jre-headless)', error);
    }
    throw fail(`cannot run java: ${(error as Error).message}`, error);
  }
  if (result.code !== 0) throw fail(`java -version ${describeExit(result, 30_000)}:\n${tail(result.output)}`);
  logger.debug({ java: result.output.split('\n')[0] }, 'java found');
}

// ---------------------------------------------------------------------------------------------------------------
// Jars

/**
 * Resolves the broker classpath from Maven Central into `<dir>/libs-3.9.1/` once. Maven writes into a private
 * staging folder that is renamed into place only when complete, so an interrupted download is never mistaken
 * for a classpath and two concurrent first starts do not delete each other's jars.
 */
export async function ensureKafkaJars(cfg: KafkaLocalConfig, logger: Logger): Promise<string> {
  const paths = kafkaPaths(cfg);
  if (existsSync(paths.complete)) return paths.libs;

  const pom = path.join(packageRoot, 'kafka', 'pom.xml');
  if (!existsSync(pom)) throw fail(`${pom} is missing: it lists the Kafka jars to fetch from Maven Central`);
  const staging = `${paths.libs}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const started = Date.now();
  logger.info({ libs: paths.libs }, `fetching the Kafka ${KAFKA_VERSION} jars with Maven (first run only)`);
  const args = ['-B', '-q', '-f', pom, '-P', MAVEN_PROFILE, 'dependency:copy-dependencies',
    '-DincludeScope=runtime', `-DoutputDirectory=${staging}`];
  try {
    let result: RunResult;
    try {
      result = await runCommand('mvn', args, MVN_TIMEOUT_MS);
    } catch (error) {
      if (isNotFound(error)) {
        throw fail('mvn was not found on PATH: it is needed once to fetch the Kafka jars from Maven Central '
          + '(Debian: apt-get install maven)', error);
      }
      throw fail(`cannot run mvn: ${(error as Error).message}`, error);
    }
    if (result.code !== 0) {
      throw fail(`mvn ${args.join(' ')} ${describeExit(result, MVN_TIMEOUT_MS)}; its output ends with:\n`
        + (tail(result.output) || '(no output)'));
    }
    const jars = (await readdir(staging)).filter((name) => name.endsWith('.jar'));
    if (!jars.includes(`kafka_2.13-${KAFKA_VERSION}.jar`)) {
      throw fail(`mvn succeeded but ${staging} holds no kafka_2.13-${KAFKA_VERSION}.jar (${jars.length} jars); `
        + `output:\n${tail(result.output) || '(no output)'}`);
    }
    await writeFile(path.join(staging, '.complete'), `${new Date().toISOString()} ${jars.length} jars\n`);
    if (existsSync(paths.complete)) return paths.libs;
    // A libs folder without the marker is the leftover of an older, interrupted layout: never a running classpath.
    await rm(paths.libs, { recursive: true, force: true });
    await rename(staging, paths.libs);
    logger.info({ libs: paths.libs, jars: jars.length, ms: Date.now() - started }, 'Kafka jars ready');
    return paths.libs;
  } catch (error) {
    if (existsSync(paths.complete)) return paths.libs;
    throw error;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Finding the broker process

function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const hasProc = existsSync('/proc/self/cmdline');

/** The argv of a live, non-zombie process; undefined when it is gone or cannot be inspected. */
async function processArgs(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    if (/^\d+ \(.*\) Z/s.test(stat)) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline === '' ? undefined : cmdline.split('\0');
  } catch {
    return undefined;
  }
}

function isBrokerOf(args: readonly string[], paths: KafkaPaths): boolean {
  return args.includes('kafka.Kafka') && args.includes(paths.properties);
}

/** Whether `pid` is still our broker: a recycled pid must never be signalled. */
async function isOurBroker(pid: number, paths: KafkaPaths): Promise<boolean> {
  if (!signal(pid, 0)) return false;
  // Without /proc (macOS) the pid file is all there is to go on.
  if (!hasProc) return true;
  const args = await processArgs(pid);
  return args !== undefined && isBrokerOf(args, paths);
}

async function readPidFile(paths: KafkaPaths): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(paths.pid, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The pid of the broker running from this dir, if any. Falls back to scanning /proc so that a lost pid file
 * does not turn our own broker into "the port is taken by something else".
 */
async function findBroker(paths: KafkaPaths): Promise<number | undefined> {
  const fromFile = await readPidFile(paths);
  if (fromFile !== undefined && await isOurBroker(fromFile, paths)) return fromFile;
  if (!hasProc) return undefined;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const args = await processArgs(pid);
    if (args !== undefined && isBrokerOf(args, paths)) {
      await writeFile(paths.pid, `${pid}\n`).catch(() => undefined);
      return pid;
    }
  }
  return undefined;
}

async function isGone(pid: number, paths: KafkaPaths): Promise<boolean> {
  return !(await isOurBroker(pid, paths));
}

async function waitGone(pid: number, paths: KafkaPaths, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await isGone(pid, paths)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
}

/** SIGTERM runs the broker's shutdown hook (clean log close, so no recovery next start); SIGKILL only as a last resort. */
async function terminate(pid: number, paths: KafkaPaths, logger: Logger): Promise<{ forced: boolean }> {
  signal(pid, 'SIGTERM');
  if (await waitGone(pid, paths, STOP_GRACE_MS)) return { forced: false };
  logger.warn({ brokerPid: pid }, `Kafka did not stop within ${STOP_GRACE_MS} ms of SIGTERM; sending SIGKILL`);
  signal(pid, 'SIGKILL');
  if (await waitGone(pid, paths, KILL_WAIT_MS)) return { forced: true };
  throw fail(`Kafka (pid ${pid}) survived SIGKILL for ${KILL_WAIT_MS} ms`);
}

// ---------------------------------------------------------------------------------------------------------------
// Sockets

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A TCP connect, not a bind: the broker opens its listener only at the very end of startup, so this means ready. */
export function acceptsConnections(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => { done(false); });
    socket.once('connect', () => { done(true); });
    socket.once('error', () => { done(false); });
  });
}

/** Binding (rather than connecting) also catches listeners on 0.0.0.0 and sockets that accept nothing yet. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => { resolve(false); });
    server.listen({ host: HOST, port, exclusive: true }, () => {
      server.close(() => { resolve(true); });
    });
  });
}

async function assertPortsFree(cfg: KafkaLocalConfig): Promise<void> {
  for (const [port, role, variable] of [
    [cfg.port, 'broker', 'WXSYNC_KAFKA_PORT'],
    [cfg.controllerPort, 'controller', 'WXSYNC_KAFKA_CONTROLLER_PORT'],
  ] as const) {
    if (!(await portIsFree(port))) {
      throw fail(`port ${port} on ${HOST} (the Kafka ${role} port) is already in use by another process, `
        + `not by a broker started from ${cfg.dir}; stop that process or choose another port with ${variable}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Storage

function newClusterId(): string {
  // Kafka's own Uuid text form (16 random bytes, base64url, no padding); ids starting with '-' read as CLI flags.
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

function propertyOf(text: string, key: string): string | undefined {
  for (const line of text.split('\n')) {
    const match = /^\s*([^#!=:\s]+)\s*[=:]\s*(.*?)\s*$/.exec(line);
    if (match?.[1] === key) return match[2];
  }
  return undefined;
}

/** meta.properties is written by the format step and is the truth; run/cluster.id is the operator-visible copy. */
async function clusterIdOf(paths: KafkaPaths): Promise<string | undefined> {
  const meta = await readIfExists(paths.meta);
  if (meta !== undefined) return propertyOf(meta, 'cluster.id');
  const saved = (await readIfExists(paths.clusterId))?.trim();
  return saved !== undefined && CLUSTER_ID.test(saved) ? saved : undefined;
}

function serverProperties(cfg: KafkaLocalConfig, paths: KafkaPaths): string {
  return [
    '# Written by `wxsync kafka start` on every start; edits are overwritten.',
    'process.roles=broker,controller',
    'node.id=1',
    // A static single-voter quorum needs no --standalone at format time and works unchanged on Kafka 4.x.
    `controller.quorum.voters=1@${HOST}:${cfg.controllerPort}`,
    `listeners=PLAINTEXT://${HOST}:${cfg.port},CONTROLLER://${HOST}:${cfg.controllerPort}`,
    `advertised.listeners=PLAINTEXT://${HOST}:${cfg.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${paths.data}`,
    'num.partitions=1',
    // wxsync creates its topics with explicit partition counts; a typo must fail, not create a 1-partition topic.
    'auto.create.topics.enable=false',
    // The internal topics default to replication factor 3 (and min ISR 2), which a single node can never satisfy.
    'default.replication.factor=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'group.initial.rebalance.delay.ms=0',
    `message.max.bytes=${MAX_BATCH_BYTES}`,
    `replica.fetch.max.bytes=${MAX_BATCH_BYTES}`,
    'log.retention.hours=168',
    'num.network.threads=2',
    'num.io.threads=2',
    // The 128 MiB default is allocated on the heap up front: a quarter of a 512 MiB broker.
    'log.cleaner.dedupe.buffer.size=16777216',
    '',
  ].join('\n');
}

function jvmArgs(paths: KafkaPaths, heap: readonly string[]): string[] {
  const log4j = pathToFileURL(path.join(packageRoot, 'kafka', 'log4j.properties')).href;
  return [...heap, ...JVM_FLAGS, `-Dlog4j.configuration=${log4j}`, '-cp', path.join(paths.libs, '*')];
}

async function format(cfg: KafkaLocalConfig, paths: KafkaPaths, logger: Logger): Promise<string> {
  const clusterId = (await clusterIdOf(paths)) ?? newClusterId();
  await writeFile(paths.clusterId, `${clusterId}\n`);
  const args = [...jvmArgs(paths, ['-Xmx256m']), 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', paths.properties];
  const result = await runCommand('java', args, FORMAT_TIMEOUT_MS, paths.run);
  if (result.code !== 0) {
    throw fail(`formatting ${paths.data} (kafka.tools.StorageTool) ${describeExit(result, FORMAT_TIMEOUT_MS)}:\n`
      + (tail(result.output) || '(no output)'));
  }
  logger.info({ clusterId, data: paths.data }, 'formatted Kafka storage');
  return clusterId;
}

// ---------------------------------------------------------------------------------------------------------------
// Commands

export interface KafkaStartResult {
  readonly pid: number;
  readonly port: number;
  readonly elapsedMs: number;
  /** A broker from this dir was already up: nothing was started. */
  readonly alreadyRunning: boolean;
  /** The storage was formatted by this start (first start, or `fresh`). */
  readonly formatted: boolean;
  readonly clusterId: string | undefined;
}

export interface KafkaStartOptions {
  /** Stop a running broker and delete all topics and offsets before starting. */
  readonly fresh?: boolean;
}

export async function startKafka(cfg: KafkaLocalConfig, logger: Logger, opts: KafkaStartOptions = {}): Promise<KafkaStartResult> {
  const started = Date.now();
  const paths = kafkaPaths(cfg);
  if (/[,\\\n]/.test(paths.run)) {
    throw fail(`the Kafka dir ${cfg.dir} must not contain ',', '\\' or newlines: they are special in server.properties`);
  }

  const running = await findBroker(paths);
  if (running !== undefined && opts.fresh === true) {
    logger.info({ brokerPid: running }, 'stopping the running broker before wiping its data (--fresh)');
    await terminate(running, paths, logger);
    await rm(paths.pid, { force: true });
  } else if (running !== undefined) {
    return await attach(cfg, paths, running, started);
  }

  // The port check is instant and the most likely failure, so it runs before a possible first-time download.
  await assertPortsFree(cfg);
  await ensureJava(logger);
  await ensureKafkaJars(cfg, logger);

  if (opts.fresh === true) {
    await rm(paths.run, { recursive: true, force: true });
    logger.info({ run: paths.run }, 'wiped the local Kafka state (--fresh)');
  }
  await mkdir(paths.data, { recursive: true });
  await writeFile(paths.properties, serverProperties(cfg, paths));
  const formatted = !existsSync(paths.meta);
  const clusterId = formatted ? await format(cfg, paths, logger) : await clusterIdOf(paths);
  if (!formatted && clusterId !== undefined) await writeFile(paths.clusterId, `${clusterId}\n`);

  // Keep the previous run's log: when a restart misbehaves, the last shutdown is usually the interesting part.
  if (existsSync(paths.log)) await rename(paths.log, paths.previousLog);
  const child = spawnBroker(cfg, paths);
  const pid = child.pid;
  await writeFile(paths.pid, `${pid}\n`);
  logger.debug({ brokerPid: pid, properties: paths.properties }, 'spawned Kafka');

  await waitReady(cfg, paths, child, pid, logger);
  return { pid, port: cfg.port, elapsedMs: Date.now() - started, alreadyRunning: false, formatted, clusterId };
}

/** Detached, with its output in a file and unreferenced, so the broker outlives the CLI that started it. */
function spawnBroker(cfg: KafkaLocalConfig, paths: KafkaPaths): ChildProcess & { pid: number } {
  const heap = cfg.heap.split(/\s+/).filter((flag) => flag !== '');
  const logFd = openSync(paths.log, 'w');
  let child: ChildProcess;
  try {
    child = spawn('java', [...jvmArgs(paths, heap), 'kafka.Kafka', paths.properties], {
      cwd: paths.run,
      detached: true,
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  // Without a listener a spawn error (emitted on a later tick) would crash the CLI with an unhandled 'error'
  // instead of surfacing below or as "exited during startup".
  child.on('error', () => undefined);
  child.unref();
  const { pid } = child;
  if (pid === undefined) throw fail('could not spawn java for the Kafka broker');
  return child as ChildProcess & { pid: number };
}

async function waitReady(cfg: KafkaLocalConfig, paths: KafkaPaths, child: ChildProcess, pid: number, logger: Logger): Promise<void> {
  const seen: { exit?: string } = {};
  child.once('exit', (code, sig) => { seen.exit = sig === null ? `exited with code ${code}` : `was killed by ${sig}`; });
  const deadline = Date.now() + cfg.startTimeoutMs;
  let sawReadyLine = false;
  for (;;) {
    if (seen.exit !== undefined || await isGone(pid, paths)) {
      await rm(paths.pid, { force: true });
      throw fail(`Kafka ${seen.exit ?? 'exited'} during startup; ${paths.log} ends with:\n${await logTail(paths)}`);
    }
    sawReadyLine ||= (await readIfExists(paths.log) ?? '').includes(READY_LINE);
    if (sawReadyLine && await acceptsConnections(cfg.port)) return;
    if (Date.now() >= deadline) {
      const log = await logTail(paths);
      // A broker that missed its deadline is stopped, so that a retry does not find a half-started process.
      await terminate(pid, paths, logger);
      await rm(paths.pid, { force: true });
      throw fail(`Kafka was not ready within ${cfg.startTimeoutMs} ms (${sawReadyLine ? 'started, but port '
        + `${cfg.port} refused connections` : `no "${READY_LINE}" line`}) and was stopped; ${paths.log} ends with:\n${log}`);
    }
    await sleep(POLL_MS);
  }
}

/** A broker from this dir is up already, or still starting (another `start` is waiting for it): wait, do not spawn. */
async function attach(cfg: KafkaLocalConfig, paths: KafkaPaths, pid: number, started: number): Promise<KafkaStartResult> {
  // server.properties is rewritten only when a broker is spawned, so it holds the running broker's port.
  const listeners = propertyOf(await readIfExists(paths.properties) ?? '', 'advertised.listeners');
  const runningPort = Number(/:(\d+)$/.exec(listeners ?? '')?.[1]);
  if (Number.isInteger(runningPort) && runningPort !== cfg.port) {
    throw fail(`a Kafka broker from ${cfg.dir} is running (pid ${pid}) on port ${runningPort}, not on the configured `
      + `port ${cfg.port}; run \`wxsync kafka stop\` first`);
  }
  const deadline = started + cfg.startTimeoutMs;
  while (!(await acceptsConnections(cfg.port))) {
    if (await isGone(pid, paths)) {
      throw fail(`the Kafka broker (pid ${pid}) from ${cfg.dir} exited while starting; ${paths.log} ends with:\n${await logTail(paths)}`);
    }
    if (Date.now() >= deadline) {
      throw fail(`a Kafka broker from ${cfg.dir} is running (pid ${pid}) but does not accept connections on `
        + `${HOST}:${cfg.port} after ${cfg.startTimeoutMs} ms; `
        + `run \`wxsync kafka stop\` and start again. ${paths.log} ends with:\n${await logTail(paths)}`);
    }
    await sleep(POLL_MS);
  }
  return { pid, port: cfg.port, elapsedMs: Date.now() - started, alreadyRunning: true, formatted: false, clusterId: await clusterIdOf(paths) };
}

async function logTail(paths: KafkaPaths): Promise<string> {
  const text = await readIfExists(paths.log);
  return text === undefined || text.trim() === '' ? '(empty)' : tail(text);
}

export type KafkaStopResult =
  | { readonly wasRunning: false }
  | { readonly wasRunning: true; readonly pid: number; readonly elapsedMs: number; readonly forced: boolean };

export async function stopKafka(cfg: KafkaLocalConfig, logger: Logger): Promise<KafkaStopResult> {
  const started = Date.now();
  const paths = kafkaPaths(cfg);
  const pid = await findBroker(paths);
  if (pid === undefined) {
    await rm(paths.pid, { force: true });
    return { wasRunning: false };
  }
  logger.info({ brokerPid: pid }, 'stopping Kafka');
  const { forced } = await terminate(pid, paths, logger);
  await rm(paths.pid, { force: true });
  return { wasRunning: true, pid, elapsedMs: Date.now() - started, forced };
}

export type KafkaStatus =
  | {
    readonly state: 'running';
    readonly pid: number;
    readonly port: number;
    /** False while the broker is still starting, or when it is wedged. */
    readonly accepting: boolean;
    readonly clusterId: string | undefined;
  }
  | {
    readonly state: 'stopped';
    readonly port: number;
    /** Whether a start would reuse existing topics (true) or format an empty broker. */
    readonly formatted: boolean;
    readonly clusterId: string | undefined;
    /** Something that is not our broker listens on the port, so a start would fail. */
    readonly portInUse: boolean;
  };

export async function kafkaStatus(cfg: KafkaLocalConfig): Promise<KafkaStatus> {
  const paths = kafkaPaths(cfg);
  const pid = await findBroker(paths);
  const clusterId = await clusterIdOf(paths);
  if (pid !== undefined) {
    return { state: 'running', pid, port: cfg.port, accepting: await acceptsConnections(cfg.port), clusterId };
  }
  return {
    state: 'stopped',
    port: cfg.port,
    formatted: existsSync(paths.meta),
    clusterId,
    portInUse: !(await portIsFree(cfg.port)),
  };
}
