/**
 * Scale checks of `wxsync sim`, kept out of the unit tests because they take a minute and gigabytes:
 *   1. ready time of `--accounts 2 --followers 1000000` (budget: 30 s);
 *   2. at `--followers 10000000`: ready time, RSS (budget: 1.5 GB), /user/get pages per second for one
 *      crawler and for several at once, and the speed of the streamed followers export.
 *
 * Usage: node --import tsx bench/sim.ts [--followers N] [--crawlers N]
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { packageRoot } from '../lib/config.ts';

interface Ready {
  readonly apiBase: string;
  readonly accounts: readonly { readonly appid: string; readonly secret: string }[];
}

interface Running {
  readonly child: ChildProcessByStdio<null, Readable, null>;
  readonly ready: Ready;
  readonly readyMs: number;
}

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  const value = at < 0 ? undefined : Number(args[at + 1]);
  return value !== undefined && Number.isSafeInteger(value) && value > 0 ? value : fallback;
};
const bigFollowers = flag('followers', 10_000_000);
const crawlers = flag('crawlers', 4);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

async function startSim(simArgs: readonly string[]): Promise<Running> {
  const started = performance.now();
  const child = spawn(process.execPath, [path.join(packageRoot, 'bin', 'wxsync.js'), 'sim', '--port', '0', '--log-level', 'warn', ...simArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  return { child, ready: JSON.parse(line) as Ready, readyMs: performance.now() - started };
}

async function stop(running: Running): Promise<void> {
  running.child.kill('SIGTERM');
  await once(running.child, 'exit');
}

/** Resident set size of a process in MB, from /proc (Linux) or ps. */
function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => { resolve(Buffer.concat(chunks).toString('utf8')); });
      res.on('error', reject);
    }).on('error', reject);
  });
}

async function token(ready: Ready): Promise<string> {
  const account = ready.accounts[0];
  if (account === undefined) throw new Error('no account');
  const answer = JSON.parse(await getText(`${ready.apiBase}/cgi-bin/token?grant_type=client_credential&appid=${account.appid}&secret=${account.secret}`)) as { access_token: string };
  return answer.access_token;
}

/** A full crawl, parsing every page as a client would; returns pages (terminal call included) and openids. */
async function crawl(ready: Ready, accessToken: string): Promise<{ calls: number; openids: number }> {
  let calls = 0;
  let openids = 0;
  let next = '';
  for (;;) {
    const page = JSON.parse(await getText(`${ready.apiBase}/cgi-bin/user/get?access_token=${accessToken}&next_openid=${next}`)) as {
      count: number; next_openid: string; data?: { openid: string[] }; errcode?: number;
    };
    calls += 1;
    if (page.errcode !== undefined) throw new Error(`user/get answered ${JSON.stringify(page)}`);
    if (page.data === undefined) return { calls, openids };
    openids += page.data.openid.length;
    next = page.next_openid;
  }
}

/** Streams the export, counting bytes, while sampling the simulator's RSS. */
async function exportFollowers(running: Running): Promise<{ lines: number; ms: number; peakRssMb: number }> {
  const started = performance.now();
  let peak = rssMb(running.child.pid ?? 0);
  const sampler = setInterval(() => { peak = Math.max(peak, rssMb(running.child.pid ?? 0)); }, 100);
  let lines = 0;
  await new Promise<void>((resolve, reject) => {
    http.get(`${running.ready.apiBase}/__sim/accounts/${running.ready.accounts[0]?.appid ?? ''}/followers`, { agent }, (res) => {
      res.on('data', (chunk: Buffer) => {
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines += 1;
      });
      res.on('end', resolve);
      res.on('error', reject);
    }).on('error', reject);
  });
  clearInterval(sampler);
  return { lines, ms: performance.now() - started, peakRssMb: peak };
}

const results: Record<string, unknown> = {};

{
  const running = await startSim(['--accounts', '2', '--followers', '1000000']);
  results['readyMs2x1M'] = Math.round(running.readyMs);
  results['rssMb2x1M'] = Math.round(rssMb(running.child.pid ?? 0));
  console.error(`2×1M: ready in ${(running.readyMs / 1000).toFixed(2)} s (budget 30 s), RSS ${results['rssMb2x1M'] as number} MB`);
  await stop(running);
}

{
  const running = await startSim(['--followers', String(bigFollowers), '--user-get-daily-quota', '1000000']);
  const pid = running.child.pid ?? 0;
  results['followers'] = bigFollowers;
  results['readyMsBig'] = Math.round(running.readyMs);
  results['rssMbReady'] = Math.round(rssMb(pid));
  console.error(`${bigFollowers}: ready in ${(running.readyMs / 1000).toFixed(2)} s, RSS ${results['rssMbReady'] as number} MB`);

  const accessToken = await token(running.ready);
  let started = performance.now();
  const single = await crawl(running.ready, accessToken);
  let seconds = (performance.now() - started) / 1000;
  if (single.openids !== bigFollowers) throw new Error(`crawl saw ${single.openids} openids, expected ${bigFollowers}`);
  results['pagesPerSecond'] = Math.round(single.calls / seconds);
  results['crawlSeconds'] = Number(seconds.toFixed(2));
  console.error(`one crawler: ${single.calls} calls in ${seconds.toFixed(2)} s = ${results['pagesPerSecond'] as number} pages/s`);

  started = performance.now();
  const parallel = await Promise.all(Array.from({ length: crawlers }, () => crawl(running.ready, accessToken)));
  seconds = (performance.now() - started) / 1000;
  const calls = parallel.reduce((sum, c) => sum + c.calls, 0);
  results['pagesPerSecondParallel'] = Math.round(calls / seconds);
  results['rssMbAfterCrawls'] = Math.round(rssMb(pid));
  console.error(`${crawlers} crawlers: ${calls} calls in ${seconds.toFixed(2)} s = ${results['pagesPerSecondParallel'] as number} pages/s; RSS ${results['rssMbAfterCrawls'] as number} MB`);

  const exported = await exportFollowers(running);
  if (exported.lines !== bigFollowers) throw new Error(`export gave ${exported.lines} lines, expected ${bigFollowers}`);
  results['exportSeconds'] = Number((exported.ms / 1000).toFixed(2));
  results['exportPeakRssMb'] = Math.round(exported.peakRssMb);
  console.error(`export: ${exported.lines} lines in ${(exported.ms / 1000).toFixed(2)} s, peak RSS ${results['exportPeakRssMb'] as number} MB (budget 1536 MB)`);
  await stop(running);
}

agent.destroy();
process.stdout.write(`${JSON.stringify(results)}\n`);
