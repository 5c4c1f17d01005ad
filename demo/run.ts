/**
 * `wxsync demo`'s engine: a Kafka broker (the configured one if it answers, else one of its own), the simulator in
 * this process with steady churn and lost pushes, and `wxsync run` as a child that snapshots and reconciles every
 * account once a minute; a live summary until Ctrl-C or --duration, then the churn report, and everything it started
 * stopped in order.
 *
 * Its data is WXSYNC_DATA_DIR/demo, made afresh by every demo: the simulator lives in this process and starts from
 * its seed each time, so a store kept from an earlier demo would hold another simulator's history. It is kept after
 * the demo, so `wxsync report` and the dashboard can still read it, and while the demo runs the CLI reaches its
 * `wxsync run` with WXSYNC_DATA_DIR pointing there (the demo prints the line).
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { dashboardUrl } from '../dashboard/url.ts';
import { adminToken, readAdminEndpoint } from '../lib/admin.ts';
import { sleep } from '../lib/backoff.ts';
import { loadConfig, type Config } from '../lib/config.ts';
import { ErrorCode, WxsyncError, describeError } from '../lib/errors.ts';
import { createKafkaGateway } from '../lib/kafka.ts';
import { KAFKA_VERSION, kafkaPaths, stopKafka, type KafkaLocalConfig } from '../lib/kafka-local.ts';
import {
  adminText, differenceCount, settleAccount, simulatedRunEnv, snapshotAndReconcile, spawnRun, spoolDrained, startPrivateKafka, storeFollowers, truthFollowers,
  writeAccountsFile,
  type Settled,
} from '../lib/local-stack.ts';
import { createLogger, fileDestination, silentLogger, type Logger } from '../lib/logger.ts';
import { freePorts } from '../lib/ports.ts';
import type { SnapshotListing } from '../producers/reconcile/compare.ts';
import { viewOf } from '../producers/snapshot/progress.ts';
import type { Progress } from '../producers/snapshot/runner.ts';
import type { ChurnReport } from '../reports/churn.ts';
import { dateOf, localDay } from '../reports/range.ts';
import { formatChurn } from '../reports/format.ts';
import { churn } from '../sim/churn.ts';
import { DEFAULT_SIM_OPTIONS } from '../sim/options.ts';
import { startSim, type RunningSim } from '../sim/server.ts';
import { churnTick } from './churn.ts';
import type { DemoOptions } from './options.ts';
import {
  Rate, clockTime, elapsed, formatYears, lastReconcileOf, metricTotal, nextAtSecond, plainLine, redraw, screen, snapshotSecond, yearsOf, type AccountState, type DemoState,
} from './summary.ts';

const DUP_RATE = 0.05;
/** The history table at the end reaches back this far (the longest range a report takes). */
const HISTORY_DAYS = 3660;
const MARKER = '.wxsync-demo';
const RENDER_EVERY_MS = 1000;
const PLAIN_EVERY_MS = 10_000;
/** The store is compared with the truth at most this often, and never more than a fifth of the time (it reads every follower). */
const COMPARE_EVERY_MS = 5000;
const COMPARE_SHARE = 0.2;
const RUN_STOP_TIMEOUT_MS = 30_000;

export interface DemoOutput {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(chunk: string): boolean;
}

export interface DemoSettings {
  readonly options: DemoOptions;
  /** The user's configuration: where data goes (WXSYNC_DATA_DIR), which broker to try (KAFKA_BROKERS), the jar cache. */
  readonly config: Config;
  readonly out: DemoOutput;
  /** Ctrl-C: stop the churn, print the report, stop everything. */
  readonly stop: AbortSignal;
  /** A second Ctrl-C: kill `wxsync run` instead of waiting for it. */
  readonly force: AbortSignal;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * WXSYNC_DATA_DIR/demo, emptied for this demo. Refused while a demo (or any `wxsync run`) uses it, and when it holds
 * something no demo made: the demo deletes only what it made. A broker of a demo that was killed is stopped first.
 */
async function freshDir(dir: string, kafkaLocal: KafkaLocalConfig): Promise<void> {
  const endpoint = readAdminEndpoint(loadConfig({ WXSYNC_DATA_DIR: dir }).http.admin);
  if (endpoint !== undefined && processAlive(endpoint.pid)) {
    throw new WxsyncError(ErrorCode.UsageInvalid, `a demo is running already (its wxsync run is pid ${endpoint.pid}, data in ${dir}): stop it first, or set WXSYNC_DATA_DIR elsewhere`);
  }
  if (existsSync(dir) && readdirSync(dir).length > 0 && !existsSync(path.join(dir, MARKER))) {
    throw new WxsyncError(ErrorCode.UsageInvalid, `${dir} holds files no demo made; the demo uses WXSYNC_DATA_DIR/demo and starts it empty: move them, or set WXSYNC_DATA_DIR elsewhere`);
  }
  await stopKafka({ ...kafkaLocal, dir: path.join(dir, 'kafka') }, silentLogger());
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, MARKER), 'made by wxsync demo, which empties this directory at its next start\n');
}

function exited(child: ChildProcess): Promise<unknown> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit');
}

/**
 * A step of the start that may take a while: on a terminal, its label with the seconds ticking until it is done;
 * elsewhere the label once.
 */
async function step<T>(out: DemoOutput, label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  if (out.isTTY !== true) {
    out.write(`${label}…\n`);
    return work();
  }
  const tick = (): void => { out.write(`\r\x1b[2K${label}… ${elapsed(Date.now() - started)}`); };
  tick();
  const timer = setInterval(tick, 1000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
    out.write('\r\x1b[2K');
  }
}

/**
 * The report at the end: the follow history by year (a monthly report over ten years, summed), then the demo's day
 * as `wxsync report churn --all` prints it, the rollups refreshed first.
 */
async function printReport(config: Config, demoDay: string, out: DemoOutput): Promise<void> {
  const today = JSON.parse(await step(out, 'refreshing the churn rollups', () => adminText(config, 'GET', `/api/report/churn?all=1&fresh=1&from=${demoDay}`))) as ChurnReport;
  const history = JSON.parse(await adminText(config, 'GET', `/api/report/churn?all=1&by=month&days=${HISTORY_DAYS}`)) as ChurnReport;
  out.write([
    '',
    'The follow history, by year: the first reconcile brought every follower in at their real subscribe time (WeChat says',
    'nothing of those who had left before); the last year\'s figures include the demo\'s live churn.',
    '',
    formatYears(yearsOf(history)),
    '',
    formatChurn(today, 'table'),
    '',
    '',
  ].join('\n'));
}

interface Started {
  broker?: { readonly config: KafkaLocalConfig; readonly pid: number };
  sim?: RunningSim;
  run?: ChildProcess;
}

/** Stops what the demo started, in order: wxsync run (its pushes in flight answered, its store closed), the simulator, the broker. */
async function stopAll(started: Started, out: DemoOutput, force: AbortSignal, logger: Logger): Promise<void> {
  const said: string[] = [];
  const { run, sim, broker } = started;
  if (run !== undefined) {
    run.kill('SIGTERM');
    const kill = (): void => { run.kill('SIGKILL'); };
    force.addEventListener('abort', kill, { once: true });
    const timer = setTimeout(kill, RUN_STOP_TIMEOUT_MS);
    await exited(run);
    clearTimeout(timer);
    force.removeEventListener('abort', kill);
    said.push(`wxsync run (pid ${run.pid ?? '?'})`);
  }
  if (sim !== undefined) {
    await sim.close();
    said.push('the simulator');
  }
  if (broker !== undefined) {
    await stopKafka(broker.config, logger);
    said.push(`Kafka (pid ${broker.pid})`);
  }
  if (said.length > 0) out.write(`stopped ${said.join(', ')}\n`);
}

export async function runDemo(settings: DemoSettings): Promise<number> {
  const { options, config, out, stop, force } = settings;
  const say = (line = ''): void => { out.write(`${line}\n`); };
  // WXSYNC_DATA_DIR as configured: the admin endpoint file sits at its top.
  const dir = path.join(path.dirname(config.http.admin.endpointFile), 'demo');
  await freshDir(dir, config.kafkaLocal);
  const logger = createLogger('info', 'wxsync-demo', fileDestination(path.join(dir, 'demo.log')));
  const started: Started = {};
  const runLog = openSync(path.join(dir, 'run.log'), 'a');
  const rel = (file: string): string => path.relative(process.cwd(), file) || '.';
  // Read afresh after each step: Ctrl-C may come while one runs.
  const stopped = (): boolean => stop.aborted;
  try {
    const followers = options.followers.map((n) => n.toLocaleString('en-US'));
    say(`wxsync demo: ${options.followers.length} simulated Official Account${options.followers.length === 1 ? '' : 's'} (${followers.join(', ')} followers), `
      + `safe-mode pushes, ${Math.round(options.dropRate * 100)}% dropped and ${Math.round(DUP_RATE * 100)}% sent twice`);

    // Kafka: the configured broker when one answers there (the demo's topics get a prefix of their own), else a
    // broker of the demo's own on free ports, so a user's ports and topics are never touched.
    const probe = createKafkaGateway(config.kafka, logger, '-demo-probe');
    const reachable = await step(out, `looking for a Kafka broker at ${config.kafka.brokers.join(',')}`, () => probe.reachable());
    await probe.close();
    let brokers = config.kafka.brokers.join(',');
    if (reachable) {
      say(`Kafka: the broker at ${brokers}, left running at the end`);
    } else {
      const jarsMissing = !existsSync(kafkaPaths(config.kafkaLocal).complete);
      const [port, controllerPort] = await freePorts(2) as [number, number];
      const label = jarsMissing ? `none answers: fetching the Kafka ${KAFKA_VERSION} jars with Maven (once, a minute or two) and starting a broker of the demo's own`
        : 'none answers: starting a broker of the demo\'s own';
      const { broker, pid } = await step(out, label, () => startPrivateKafka(config.kafkaLocal, path.join(dir, 'kafka'), [port, controllerPort], config.kafkaLocal.heap, logger));
      started.broker = { config: broker, pid };
      brokers = `127.0.0.1:${port}`;
      say(`Kafka: started a broker of the demo's own on ${brokers} (pid ${pid}), stopped at the end`);
    }
    if (stopped()) return 130;

    const [publicPort] = await freePorts(1) as [number];
    const sim = await startSim({
      ...DEFAULT_SIM_OPTIONS, port: 0, accounts: options.followers.length, followers: [...options.followers], mode: 'safe',
      callbackUrl: `http://127.0.0.1:${publicPort}/wechat`, dropRate: options.dropRate, dupRate: DUP_RATE, logLevel: 'silent', pushConcurrency: 64,
      // A snapshot a minute spends in a few hours what WeChat allows a day: the demo compresses time.
      userGetDailyQuota: 1_000_000,
    }, logger);
    started.sim = sim;
    const accountsFile = path.join(dir, 'accounts.json');
    // No snapshotCron: the demo asks for each snapshot itself (liveDemo), so none competes with the first import.
    writeAccountsFile(accountsFile, sim.ready.accounts);
    const env = {
      ...simulatedRunEnv({ brokers, dataDir: dir, accountsFile, apiBase: sim.apiBase, port: publicPort, logLevel: 'info' }),
      // A prefix per demo: in a broker that is not the demo's own, its topics and groups never meet another's.
      WXSYNC_TOPIC_PREFIX: `demo-${Date.now().toString(36)}.`,
      WXSYNC_REPORT_TZ: config.reports.tz,
    };
    const demoConfig = loadConfig(env);
    started.run = await step(out, 'starting wxsync run (the embedded ClickHouse loads, migrations apply)', () => spawnRun(env, publicPort, runLog));
    const runGone = new AbortController();
    started.run.once('exit', () => { runGone.abort(); });
    const endpoint = readAdminEndpoint(demoConfig.http.admin);
    if (endpoint === undefined) throw new WxsyncError(ErrorCode.ApiRequestFailed, 'wxsync run is ready but wrote no admin endpoint');
    say(`wxsync run: pid ${started.run.pid ?? '?'}, callbacks on 127.0.0.1:${publicPort}, logs in ${rel(path.join(dir, 'run.log'))}`);
    const token = adminToken(demoConfig.http.admin, false);
    if (token === undefined) throw new WxsyncError(ErrorCode.ApiRequestFailed, 'wxsync run is ready but wrote no admin token');
    say(`dashboard: ${dashboardUrl(endpoint, token)}`);
    say(`in another terminal: WXSYNC_DATA_DIR=${rel(dir)} WXSYNC_ACCOUNTS=${rel(accountsFile)} npx wxsync report churn --all --days 30`);
    say(options.durationS === undefined ? 'Ctrl-C stops the demo and prints the churn report' : `the demo stops after ${options.durationS} s (Ctrl-C: earlier)`);
    say();
    if (stopped()) return 130;

    const demoDay = dateOf(localDay(Date.now(), demoConfig.reports.tz));
    const live = await liveDemo({ options, sim, config: demoConfig, out, stop, runGone: runGone.signal, runLog: rel(path.join(dir, 'run.log')), logger });
    say();
    if (live.settled !== undefined) {
      for (const s of live.settled) {
        say(`${s.appid}: ${s.equal ? `store = truth (${s.followers.toLocaleString('en-US')} followers)` : `store differs from the truth by ${s.differences} openids`}`);
      }
    } else {
      say('stopped by Ctrl-C: no last snapshot and reconcile, so the pushes lost since each account\'s last reconcile are not in the report');
    }
    await printReport(demoConfig, demoDay, out);
    mkdirSync(path.join(dir, 'truth'), { recursive: true });
    for (const { appid } of sim.ready.accounts) writeFileSync(path.join(dir, 'truth', `${appid}.txt`), (await truthFollowers(sim.apiBase, appid)).map((o) => `${o}\n`).join(''));
    say(`WeChat's follower lists at the end are in ${rel(path.join(dir, 'truth'))}/; the store stays in ${rel(dir)}: `
      + `WXSYNC_DATA_DIR=${rel(dir)} WXSYNC_ACCOUNTS=${rel(accountsFile)} npx wxsync followers <appid>`);
    return live.settled === undefined || live.settled.every((s) => s.equal) ? 0 : 1;
  } finally {
    await stopAll(started, out, force, logger).catch((error: unknown) => { say(`wxsync demo: stopping failed: ${describeError(error)}`); });
    closeSync(runLog);
  }
}

interface LiveSettings {
  readonly options: DemoOptions;
  readonly sim: RunningSim;
  /** The demo's `wxsync run`'s configuration, to reach its admin API. */
  readonly config: Config;
  readonly out: DemoOutput;
  readonly stop: AbortSignal;
  /** Aborted when `wxsync run` exits: a demo without it would go on showing nothing new. */
  readonly runGone: AbortSignal;
  readonly runLog: string;
  readonly logger: Logger;
}

/** Resolves once `signal` is aborted. */
function aborted(signal: AbortSignal): Promise<void> {
  return signal.aborted ? Promise.resolve() : new Promise((resolve) => { signal.addEventListener('abort', () => { resolve(); }, { once: true }); });
}

/**
 * The live part, for each account: its import (a snapshot and its reconcile bring every follower in with their real
 * subscribe_time), then its churn, and a snapshot and reconcile once a minute at its own second, asked for through
 * the admin API as `wxsync snapshot` and `wxsync reconcile` do, so that nothing competes with an import and the
 * summary shows every snapshot's progress and when the next reconcile comes. An account's churn starts once its
 * import is done, so every unfollow it makes is of a follower the store knows (one who left before the import
 * would be a follow nobody ever told wxsync about). After --duration: the last snapshot and reconcile of every
 * account, with the store compared to the truth (`settled`); on Ctrl-C nothing more.
 */
async function liveDemo({ options, sim, config, out, stop, runGone, runLog, logger }: LiveSettings): Promise<{ readonly settled?: readonly Settled[] }> {
  const startedAt = Date.now();
  const n = sim.ready.accounts.length;
  const accounts = new Map<string, AccountState>(sim.ready.accounts.map((a, k) => [a.appid, { appid: a.appid, truth: a.followers, snapshotSecond: snapshotSecond(k, n) }]));
  const update = (appid: string, change: Partial<AccountState>): void => {
    const current = accounts.get(appid);
    if (current !== undefined) accounts.set(appid, { ...current, ...change });
  };
  const snapshotAndReconcileShown = async (appid: string): Promise<void> => {
    try {
      await snapshotAndReconcile(config, appid, (p: Progress) => { update(appid, { snapshot: { pages: p.pages, expectedPages: viewOf(p, Date.now()).expectedPages } }); });
    } finally {
      update(appid, { snapshot: undefined });
    }
  };
  const totals = { pushes: 0, dropped: 0, taken: 0 };
  const rates = { pushes: new Rate(), dropped: new Rate(), taken: new Rate() };
  let phase = running(options, startedAt);
  const churning = new AbortController();

  const churnOf = async (appid: string): Promise<void> => {
    const account = sim.state.byAppid.get(appid);
    if (account === undefined) return;
    const churnStartedAt = Date.now();
    for (let tick = 0; !churning.signal.aborted; tick += 1) {
      for (const request of churnTick(account.population.followerCount, tick)) {
        const summary = await churn(sim.state, account, request);
        totals.pushes += summary.subscribed + summary.unsubscribed;
        totals.dropped += summary.dropped;
      }
      update(appid, { truth: account.population.followerCount });
      await sleep(Math.max(0, churnStartedAt + (tick + 1) * 1000 - Date.now()), churning.signal);
    }
  };
  // A scheduled snapshot that fails (the store busy, the demo stopping) is logged and the next one is asked for.
  const scheduleOf = async (appid: string, second: number): Promise<void> => {
    for (;;) {
      await sleep(Math.max(0, nextAtSecond(Date.now(), second) - Date.now()), churning.signal);
      if (churning.signal.aborted) return;
      await snapshotAndReconcileShown(appid).catch((error: unknown) => { logger.warn({ err: error, appid }, 'a scheduled snapshot and reconcile failed'); });
    }
  };
  // The imports one at a time, the smallest first: the small accounts come alive within seconds, and the large
  // one does not have to share the machine.
  const churns: Promise<void>[] = [];
  const loops: Promise<unknown>[] = [];
  const accountLoops = (async () => {
    const bySize = sim.ready.accounts.map((a, k) => ({ appid: a.appid, followers: a.followers, k })).sort((a, b) => a.followers - b.followers);
    for (const { appid, k } of bySize) {
      if (churning.signal.aborted) break;
      await snapshotAndReconcileShown(appid);
      const churned = churnOf(appid);
      churns.push(churned);
      loops.push(churned, scheduleOf(appid, snapshotSecond(k, n)));
    }
    await Promise.all(loops);
  })();

  // The store against the truth, and each account's last reconcile, every few seconds but never more than a fifth of
  // the time (it reads every follower). A look that fails (the store busy) is taken again at the next round.
  const watchRound = async (): Promise<void> => {
    for (const { appid } of sim.ready.accounts) {
      try {
        const [truth, store, listing] = await Promise.all([
          truthFollowers(sim.apiBase, appid), storeFollowers(config, appid), adminText(config, 'GET', `/api/snapshots/${appid}`),
        ]);
        const lastReconcile = lastReconcileOf(JSON.parse(listing) as SnapshotListing);
        update(appid, { compared: { store: store.length, differences: differenceCount(store, truth) }, ...(lastReconcile === undefined ? {} : { lastReconcile }) });
      } catch (error) {
        logger.warn({ err: error, appid }, 'comparing the store with the truth failed; trying again');
      }
    }
  };
  const watching = new AbortController();
  const watchLoop = (async () => {
    while (!watching.signal.aborted) {
      const roundStarted = Date.now();
      await watchRound();
      await sleep(Math.max(COMPARE_EVERY_MS, ((Date.now() - roundStarted) * (1 - COMPARE_SHARE)) / COMPARE_SHARE), watching.signal);
    }
  })();

  let lines = 0;
  let lastPlain = 0;
  const state = (): DemoState => ({
    nowMs: Date.now(), elapsedMs: Date.now() - startedAt, pushesPerSecond: rates.pushes.add(Date.now(), totals.pushes), droppedPerSecond: rates.dropped.add(Date.now(), totals.dropped),
    takenPerSecond: rates.taken.add(Date.now(), totals.taken), accounts: [...accounts.values()], phase,
  });
  const render = async (): Promise<void> => {
    totals.taken = metricTotal(await adminText(config, 'GET', '/metrics').catch(() => ''), 'wxsync_callback_accepted_total') || totals.taken;
    const now = state();
    if (out.isTTY === true) {
      const frame = screen(now);
      out.write(redraw(lines, frame, out.columns ?? 120));
      lines = frame.length;
    } else if (Date.now() - lastPlain >= PLAIN_EVERY_MS) {
      lastPlain = Date.now();
      out.write(`${clockTime(Date.now())} ${plainLine(now)}\n`);
    }
  };
  const rendering = new AbortController();
  const renderLoop = (async () => {
    while (!rendering.signal.aborted) {
      await render();
      await sleep(RENDER_EVERY_MS, rendering.signal);
    }
    await render();
  })();

  // The imports and the churn are the demo: if one fails, the demo stops as on Ctrl-C, and says why.
  const failed = new AbortController();
  const problems: unknown[] = [];
  accountLoops.catch((error: unknown) => { problems.push(error); failed.abort(); });
  const ends = [stop, failed.signal, runGone, ...(options.durationS === undefined ? [] : [AbortSignal.timeout(options.durationS * 1000)])];
  await aborted(AbortSignal.any(ends));
  phase = stop.aborted ? 'stopping: the churn first' : 'churn stopped: the last snapshot and reconcile of every account';
  churning.abort();
  // After --duration, every snapshot asked for ends before the last ones; Ctrl-C waits only for the churn: a snapshot
  // or import in flight ends with `wxsync run`, which keeps its checkpoint.
  await (stop.aborted ? Promise.all(churns) : accountLoops).catch(() => undefined);
  let settled: Settled[] | undefined;
  try {
    if (runGone.aborted) throw new WxsyncError(ErrorCode.ApiRequestFailed, `wxsync run exited while the demo ran; its log is ${runLog}`);
    if (problems.length > 0) throw problems[0];
    if (!stop.aborted) {
      await spoolDrained(config, 120_000);
      settled = await Promise.all(sim.ready.accounts.map(async ({ appid }) => {
        try {
          return await settleAccount(config, sim.apiBase, appid, (p: Progress) => { update(appid, { snapshot: { pages: p.pages, expectedPages: viewOf(p, Date.now()).expectedPages } }); });
        } finally {
          update(appid, { snapshot: undefined });
        }
      }));
    }
  } finally {
    watching.abort();
    await watchLoop;
    // The last screen says what the lines after it say.
    await watchRound();
    rendering.abort();
    await renderLoop;
  }
  return settled === undefined ? {} : { settled };
}

function running(options: DemoOptions, startedAt: number): string {
  return options.durationS === undefined ? 'Ctrl-C stops it and prints the churn report'
    : `stops at ${clockTime(startedAt + options.durationS * 1000)} with a last snapshot and reconcile`;
}
