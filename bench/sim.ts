/**
 * Scale checks of `wxsync sim`, kept out of the unit tests because they take a minute and gigabytes:
 *   1. ready time of `--accounts 2 --followers 1000000` (budget: 30 s);
 *   2. at `--followers 10000000`: ready time, RSS (budget: 1.5 GB), /user/get pages per second for one
 *      crawler and for several at once, and the speed of the streamed followers export.
 *
 * Baseline, measured in the same run: a bare node:http server in its own process (as the simulator is)
 * answering every /cgi-bin/user/get with one precomputed 10,000-openid page, crawled by the same client
 * loop. Its pages/s is the ceiling of this client and this machine; "sim / ceiling" is what the
 * simulator's own work (token and quota checks, openid derivation, JSON) leaves of it.
 *
 * Usage: node --import tsx bench/sim.ts [--followers N] [--crawlers N]
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../lib/config.ts';
import { parseCount, report } from './support.ts';

interface Ready {
  readonly apiBase: string;
  readonly accounts: readonly { readonly appid: string; readonly secret: string }[];
}

interface Running {
  readonly child: ChildProcessByStdio<null, Readable, null>;
  readonly ready: Ready;
  readonly readyMs: number;
}

const PAGE = 10_000;
const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return parseCount(at < 0 ? undefined : args[at + 1], fallback);
};
const bigFollowers = flag('followers', 10_000_000);
const crawlers = flag('crawlers', 4);

/**
 * The baseline server (this file run with --serve-ceiling N): user/get answers are precomputed, only the
 * next_openid tail is written per call. Cursors are 28-character openid-like strings holding the page number,
 * so requests are as long as the simulator's and any number of crawlers can run at once.
 */
async function serveCeiling(followers: number): Promise<void> {
  const pages = Math.ceil(followers / PAGE);
  const openids = (count: number): string => Array.from({ length: count }, (_, i) => `"o${i.toString(36).padStart(27, 'x')}"`).join(',');
  const head = (count: number): Buffer => Buffer.from(`{"total":${followers},"count":${count},"data":{"openid":[${openids(count)}]},"next_openid":"`);
  const full = head(PAGE);
  const lastCount = followers - (pages - 1) * PAGE;
  const last = lastCount === PAGE ? full : head(lastCount);
  const terminal = Buffer.from(`{"total":${followers},"count":0,"next_openid":""}`);
  const token = Buffer.from('{"access_token":"ceiling","expires_in":7200}');
  const cursor = (page: number): string => `oCEILING${String(page).padStart(20, '0')}`;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://ceiling.invalid');
    if (url.pathname === '/cgi-bin/token') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': token.length }).end(token);
      return;
    }
    const next = url.searchParams.get('next_openid') ?? '';
    const page = next === '' ? 0 : Number(next.slice(-20));
    if (page >= pages) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': terminal.length }).end(terminal);
      return;
    }
    const body = page === pages - 1 ? last : full;
    const tail = `${cursor(page + 1)}"}`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length + tail.length });
    res.write(body);
    res.end(tail);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ apiBase: `http://127.0.0.1:${port}`, accounts: [{ appid: 'wxceiling', secret: 'x' }] })}\n`);
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
  });
}

async function start(command: readonly string[]): Promise<Running> {
  const started = performance.now();
  const child = spawn(process.execPath, command, { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  return { child, ready: JSON.parse(line) as Ready, readyMs: performance.now() - started };
}

function startSim(simArgs: readonly string[]): Promise<Running> {
  return start([path.join(packageRoot, 'bin', 'wxsync.js'), 'sim', '--port', '0', '--log-level', 'warn', ...simArgs]);
}

function startCeiling(followers: number): Promise<Running> {
  return start([...process.execArgv, fileURLToPath(import.meta.url), '--serve-ceiling', String(followers)]);
}

async function stop(running: Running): Promise<void> {
  running.child.kill('SIGTERM');
  await once(running.child, 'exit');
}

/** Resident set size of a process in MB, from /proc (Linux). */
function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

function getText(agent: http.Agent, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => { resolve(Buffer.concat(chunks).toString('utf8')); });
      res.on('error', reject);
    }).on('error', reject);
  });
}

async function token(agent: http.Agent, ready: Ready): Promise<string> {
  const account = ready.accounts[0];
  if (account === undefined) throw new Error('no account');
  const answer = JSON.parse(await getText(agent, `${ready.apiBase}/cgi-bin/token?grant_type=client_credential&appid=${account.appid}&secret=${account.secret}`)) as { access_token: string };
  return answer.access_token;
}

/** A full crawl, parsing every page as a client would; returns pages (terminal call included) and openids. */
async function crawl(agent: http.Agent, ready: Ready, accessToken: string): Promise<{ calls: number; openids: number }> {
  let calls = 0;
  let openids = 0;
  let next = '';
  for (;;) {
    const page = JSON.parse(await getText(agent, `${ready.apiBase}/cgi-bin/user/get?access_token=${accessToken}&next_openid=${next}`)) as {
      count: number; next_openid: string; data?: { openid: string[] }; errcode?: number;
    };
    calls += 1;
    if (page.errcode !== undefined) throw new Error(`user/get answered ${JSON.stringify(page)}`);
    if (page.data === undefined) return { calls, openids };
    openids += page.data.openid.length;
    next = page.next_openid;
  }
}

interface CrawlRates {
  readonly single: number;
  readonly singleCalls: number;
  readonly singleSeconds: number;
  readonly parallel: number;
  readonly parallelCalls: number;
  readonly parallelSeconds: number;
}

/** One crawler, then `crawlers` at once, each crawl checked to list every follower. */
async function crawlRates(running: Running): Promise<CrawlRates> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  try {
    const accessToken = await token(agent, running.ready);
    let started = performance.now();
    const single = await crawl(agent, running.ready, accessToken);
    const singleSeconds = (performance.now() - started) / 1000;
    if (single.openids !== bigFollowers) throw new Error(`crawl saw ${single.openids} openids, expected ${bigFollowers}`);

    started = performance.now();
    const parallel = await Promise.all(Array.from({ length: crawlers }, () => crawl(agent, running.ready, accessToken)));
    const parallelSeconds = (performance.now() - started) / 1000;
    if (parallel.some((c) => c.openids !== bigFollowers)) throw new Error(`a parallel crawl missed openids: ${JSON.stringify(parallel)}`);
    const parallelCalls = parallel.reduce((sum, c) => sum + c.calls, 0);
    return {
      single: single.calls / singleSeconds, singleCalls: single.calls, singleSeconds,
      parallel: parallelCalls / parallelSeconds, parallelCalls, parallelSeconds,
    };
  } finally {
    agent.destroy();
  }
}

/** Streams the export, counting lines, while sampling the simulator's RSS. */
async function exportFollowers(running: Running): Promise<{ lines: number; ms: number; peakRssMb: number }> {
  const agent = new http.Agent({ keepAlive: false });
  const started = performance.now();
  let peak = rssMb(running.child.pid ?? 0);
  const sampler = setInterval(() => { peak = Math.max(peak, rssMb(running.child.pid ?? 0)); }, 100);
  let lines = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      http.get(`${running.ready.apiBase}/__sim/accounts/${running.ready.accounts[0]?.appid ?? ''}/followers`, { agent }, (res) => {
        res.on('data', (chunk: Buffer) => {
          for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines += 1;
        });
        res.on('end', resolve);
        res.on('error', reject);
      }).on('error', reject);
    });
  } finally {
    clearInterval(sampler);
    agent.destroy();
  }
  return { lines, ms: performance.now() - started, peakRssMb: peak };
}

const count = (n: number): string => n.toLocaleString('en-US');

async function main(): Promise<void> {
  {
    const running = await startSim(['--accounts', '2', '--followers', '1000000']);
    report('sim ready: 2 accounts x 1M followers', running.readyMs / 1000, 's', 'budget 30 s');
    report('sim RSS when ready: 2 x 1M', rssMb(running.child.pid ?? 0), 'MB');
    await stop(running);
  }

  const ceiling = await startCeiling(bigFollowers);
  let ceilingRates: CrawlRates;
  try {
    ceilingRates = await crawlRates(ceiling);
  } finally {
    await stop(ceiling);
  }

  const running = await startSim(['--followers', String(bigFollowers), '--user-get-daily-quota', '1000000']);
  try {
    const pid = running.child.pid ?? 0;
    report(`sim ready: 1 account x ${count(bigFollowers)}`, running.readyMs / 1000, 's');
    report(`sim RSS when ready: ${count(bigFollowers)}`, rssMb(pid), 'MB', 'budget 1536 MB');

    const sim = await crawlRates(running);
    report('user/get, 1 crawler: sim', sim.single, 'pages/s', `${count(sim.singleCalls)} calls in ${sim.singleSeconds.toFixed(2)} s`);
    report('user/get, 1 crawler: ceiling (bare node:http)', ceilingRates.single, 'pages/s', `${count(ceilingRates.singleCalls)} calls in ${ceilingRates.singleSeconds.toFixed(2)} s`);
    report('user/get, 1 crawler: sim / ceiling', (sim.single / ceilingRates.single) * 100, '%');
    report(`user/get, ${crawlers} crawlers: sim`, sim.parallel, 'pages/s', `${count(sim.parallelCalls)} calls in ${sim.parallelSeconds.toFixed(2)} s`);
    report(`user/get, ${crawlers} crawlers: ceiling (bare node:http)`, ceilingRates.parallel, 'pages/s', `${count(ceilingRates.parallelCalls)} calls in ${ceilingRates.parallelSeconds.toFixed(2)} s`);
    report(`user/get, ${crawlers} crawlers: sim / ceiling`, (sim.parallel / ceilingRates.parallel) * 100, '%');
    report(`sim RSS after the crawls: ${count(bigFollowers)}`, rssMb(pid), 'MB');

    const exported = await exportFollowers(running);
    if (exported.lines !== bigFollowers) throw new Error(`export gave ${exported.lines} lines, expected ${bigFollowers}`);
    report('followers export', exported.lines / (exported.ms / 1000), 'openids/s', `${count(exported.lines)} lines in ${(exported.ms / 1000).toFixed(2)} s`);
    report('sim peak RSS during the export', exported.peakRssMb, 'MB', 'budget 1536 MB');
  } finally {
    await stop(running);
  }
}

const serve = args.indexOf('--serve-ceiling');
if (serve >= 0) await serveCeiling(parseCount(args[serve + 1], bigFollowers));
else await main();
