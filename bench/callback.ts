/**
 * Callback producer throughput: safe-mode signed and encrypted callbacks per second, and p50/p99 latency
 * to `success`, against the callback role publishing to the configured broker (acks=all). A bare Node
 * http server answering `success` is measured in the same run, with the same client, as the ceiling. The client
 * runs in its own process for both, as WeChat's pushes come from elsewhere.
 *
 * Usage: node --import tsx bench/callback.ts [--count N] [--concurrency N]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, packageRoot } from '../lib/config.ts';
import { startPublicServer } from '../lib/http-server.ts';
import { createKafkaGateway } from '../lib/kafka.ts';
import { silentLogger } from '../lib/logger.ts';
import { createRegistry } from '../lib/metrics.ts';
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import { decodeEncodingAESKey } from '../lib/wechat/crypto.ts';
import { startCallbackRole } from '../producers/callback/main.ts';
import { buildPushRequest, type PushTarget } from '../sim/push.ts';
import { parseCount, report } from './support.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => { const at = args.indexOf(`--${name}`); return at < 0 ? undefined : args[at + 1]; };
const count = parseCount(flag('count'), 50_000);
const concurrency = parseCount(flag('concurrency'), 64);

interface Run { readonly perSecond: number; readonly p50: number; readonly p99: number; readonly failures: number }

/** Runs the requests from a separate client process (bench/load-client.ts), so only the server is measured here. */
async function blast(requests: readonly { url: string; body: string }[]): Promise<Run> {
  const job = path.join(dir, `job-${Date.now()}.json`);
  writeFileSync(job, JSON.stringify({ concurrency, requests }));
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(packageRoot, 'bench', 'load-client.ts'), job], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  const [code] = await once(child, 'exit') as [number | null];
  if (code !== 0) throw new Error(`the load client exited with ${String(code)}`);
  return JSON.parse(out) as Run;
}

const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-bench-callback-'));
try {
  const account = { appid: 'wxbench0000000001', secret: 's', token: 'benchtoken', encodingAESKey: randomBytes(32).toString('base64').slice(0, 43).replace(/[+/]/g, 'A') };
  writeFileSync(path.join(dir, 'accounts.json'), JSON.stringify([account]));
  const config = loadConfig({
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k === 'KAFKA_BROKERS')),
    WXSYNC_ACCOUNTS: path.join(dir, 'accounts.json'),
    WXSYNC_DATA_DIR: dir,
    WXSYNC_TOPIC_PREFIX: `bench-${Date.now().toString(36)}.`,
    WXSYNC_LOG_LEVEL: 'warn',
  });
  const logger = silentLogger();
  const kafka = createKafkaGateway(config.kafka, logger, '-bench');
  await kafka.ensureTopics([{ topic: config.kafka.topics.userEvents, partitions: config.kafka.partitions.userEvents }]);
  const registry = createRegistry();
  const role = await startCallbackRole({ config, logger, registry, kafka, clickhouse: undefined as unknown as ClickHouseClient });
  const server = await startPublicServer({
    port: 0, host: '127.0.0.1', logger, ready: () => true, routes: role.publicRoutes ?? [],
    limits: { maxConnections: config.http.maxConnections, bodyMaxBytes: config.callback.bodyMaxBytes },
  });

  const bare = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 7 }); res.end('success'); });
  });
  await new Promise<void>((resolve) => { bare.listen(0, '127.0.0.1', resolve); });

  const now = Math.floor(Date.now() / 1000);
  const target = (port: number): PushTarget => ({
    url: `http://127.0.0.1:${port}/wechat/${account.appid}`, mode: 'safe', appid: account.appid, token: account.token,
    aesKey: decodeEncodingAESKey(account.encodingAESKey), originalId: 'gh_bench',
  });
  // Distinct openids per run: a repeated event would be answered from the dedupe window, not published.
  const build = (port: number, n: number, first: number) => Array.from({ length: n }, (_, i) => buildPushRequest(target(port), {
    type: i % 3 === 0 ? 'unsubscribe' : 'subscribe', openid: `o${String(first + i).padStart(27, '0')}`, createTime: now,
  }, String(now), String(100_000 + i)));

  const ceiling = await blast(build((bare.address() as AddressInfo).port, count, 0));
  // Warm-up: connections, JIT, the producer's metadata.
  await blast(build(server.port, Math.min(2000, count), 10_000_000));
  const run = await blast(build(server.port, count, 0));

  report('bare node http "success" (ceiling)', ceiling.perSecond, 'req/s', `p50 ${ceiling.p50.toFixed(1)} ms, p99 ${ceiling.p99.toFixed(1)} ms`);
  report('callback role, safe mode, acks=all', run.perSecond, 'req/s', `p50 ${run.p50.toFixed(1)} ms, p99 ${run.p99.toFixed(1)} ms, ${run.failures} not success`);
  report('ratio to the ceiling', (run.perSecond / ceiling.perSecond) * 100, '%', 'goal: >= 10,000 req/s and p99 <= 50 ms');
  bare.close();
  await server.close();
  await role.stop();
  await kafka.close();
  process.exitCode = run.failures === 0 ? 0 : 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
