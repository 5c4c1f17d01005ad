/**
 * `npm run fuzz`'s engine: a real `wxsync run --roles callback,api` in a child process, a stream of hostile and
 * mutated requests against both its listeners, and what came back: statuses, crashes, records published, RSS.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { adminToken, readAdminEndpoint } from '../lib/admin.ts';
import { loadConfig, packageRoot } from '../lib/config.ts';
import { createKafkaGateway } from '../lib/kafka.ts';
import { silentLogger } from '../lib/logger.ts';
import { topicSpecs } from '../lib/topics.ts';
import { decodeEncodingAESKey } from '../lib/wechat/crypto.ts';
import { buildPushRequest, type PushTarget } from '../sim/push.ts';
import { Rng } from '../sim/random.ts';
import { describeRequest, hostileRequest, type RawRequest } from './cases.ts';

export interface FuzzOptions {
  readonly count: number;
  readonly seed: number;
  /** Requests that declare a body and stall: each holds a connection until the server's request timeout. */
  readonly slow: number;
  readonly concurrency: number;
  /** A data directory of the fuzz's own, and the free ports to serve on. */
  readonly dataDir: string;
  readonly port: number;
  readonly brokers: string;
}

export interface FuzzReport {
  readonly requests: number;
  /** Answers by status class, and requests the server closed without an answer (a malformed request, a stall). */
  readonly byStatus: Readonly<Record<string, number>>;
  readonly byKind: Readonly<Record<string, number>>;
  readonly serverErrors: readonly string[];
  readonly published: number;
  readonly crashed: boolean;
  readonly rssStartMb: number;
  readonly rssEndMb: number;
  readonly seconds: number;
}

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb ?? 0) / 1024;
}

/** One request over its own connection; the status, or 'closed' when the server ended it without an answer. */
function send(port: number, request: RawRequest, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const done = (status: string): void => { clearTimeout(timer); socket.destroy(); resolve(status); };
    const timer = setTimeout(() => { done('no answer'); }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1];
      if (status !== undefined) done(status);
    });
    socket.on('error', () => { done(answer === '' ? 'closed' : 'error'); });
    socket.on('close', () => { done(answer === '' ? 'closed' : 'error'); });
    const headers = { host: '127.0.0.1', connection: 'close', ...request.headers, 'content-length': String(request.body.length) };
    const head = `${request.method} ${request.path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
    socket.write(head, 'latin1');
    if (request.slow === true) socket.write(request.body.subarray(0, 10));
    else socket.end(request.body);
  });
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const account = {
    appid: 'wxfuzz0000000001', secret: 'fuzz-secret', token: `fuzztoken${randomBytes(6).toString('hex')}`,
    encodingAESKey: randomBytes(32).toString('base64').slice(0, 43).replace(/[+/]/g, 'A'), mode: 'safe',
  };
  const accountsFile = path.join(options.dataDir, 'accounts.json');
  writeFileSync(accountsFile, JSON.stringify([account]));
  const env: Record<string, string> = {
    KAFKA_BROKERS: options.brokers, WXSYNC_DATA_DIR: options.dataDir, WXSYNC_ACCOUNTS: accountsFile, PORT: String(options.port),
    WXSYNC_ADMIN_PORT: '0', WXSYNC_TOPIC_PREFIX: `fuzz-${Date.now().toString(36)}.`, WXSYNC_LOG_LEVEL: 'error', WXSYNC_EVENTS_PARTITIONS: '2',
  };
  const config = loadConfig(env);
  const kafka = createKafkaGateway(config.kafka, silentLogger(), '-fuzz');
  await kafka.ensureTopics(topicSpecs(config));
  const total = async (): Promise<number> => [...(await kafka.endOffsets(config.kafka.topics.userEvents)).values()].reduce((sum, o) => sum + Number(o), 0);
  const child = spawn(process.execPath, [path.join(packageRoot, 'bin', 'wxsync.js'), 'run', '--roles', 'callback,api'], {
    env, stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = once(child, 'exit');
  const child$ = { exited: false };
  void exited.then(() => { child$.exited = true; });
  try {
    const deadline = Date.now() + 60_000;
    while ((await send(options.port, { kind: 'probe', listener: 'public', method: 'GET', path: '/readyz', headers: {}, body: Buffer.alloc(0) }, 1000)) !== '200') {
      if (Date.now() > deadline || child$.exited) throw new Error('wxsync run did not become ready');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const endpoint = readAdminEndpoint(config.http.admin);
    const token = adminToken(config.http.admin, false);
    if (endpoint === undefined || token === undefined) throw new Error('wxsync run wrote no admin endpoint');
    const target: PushTarget = {
      url: `http://127.0.0.1:${options.port}/wechat/${account.appid}`, mode: 'safe', appid: account.appid, token: account.token,
      aesKey: decodeEncodingAESKey(account.encodingAESKey), originalId: 'gh_fuzz',
    };
    const rng = new Rng(options.seed);
    const rnd = (): number => rng.float();
    const genuine = (i: number): { path: string; body: string } => {
      const push = buildPushRequest(target, { type: 'subscribe', openid: `ofuzz${String(i).padStart(23, '0')}`, createTime: Math.floor(Date.now() / 1000) }, String(Math.floor(Date.now() / 1000)), `n${i}`);
      const url = new URL(push.url);
      return { path: `${url.pathname}${url.search}`, body: push.body };
    };
    const publishedBefore = await total();
    const started = performance.now();
    const byStatus: Record<string, number> = {};
    const byKind: Record<string, number> = {};
    const serverErrors: string[] = [];
    const kinds = new Map<number, string>();
    let rssStartMb = 0;
    let sent = 0;
    const portOf = (r: RawRequest): number => (r.listener === 'public' ? options.port : endpoint.port);
    const record = (request: RawRequest, status: string): void => {
      const key = /^\d{3}$/.test(status) ? `${status[0] ?? ''}xx` : status;
      byStatus[key] = (byStatus[key] ?? 0) + 1;
      byKind[request.kind] = (byKind[request.kind] ?? 0) + 1;
      if (key === '5xx' || key === '2xx' || key === 'no answer') serverErrors.push(`${status} for ${describeRequest(request)}`);
    };
    // The stalled ones first, side by side: each holds its connection until the server's request timeout.
    const slow = Array.from({ length: options.slow }, (_, i): RawRequest => ({ ...hostileRequest(rnd, genuine(i), token), kind: 'slow body', slow: true, body: Buffer.alloc(1000, 0x41) }));
    const slowDone = Promise.all(slow.map(async (r) => { record(r, await send(portOf(r), r, 30_000)); }));
    const worker = async (): Promise<void> => {
      while (sent < options.count) {
        const i = sent;
        sent += 1;
        const request = hostileRequest(rnd, genuine(i), token);
        kinds.set(i, describeRequest(request));
        record(request, await send(portOf(request), request, 15_000));
        if (i === Math.min(200, options.count - 1)) rssStartMb = rssMb(child.pid ?? 0);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    await slowDone;
    // What a refused request might still have sent on would be published by now.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const published = await total() - publishedBefore;
    // Which cases got through, by the openid each genuine push was built with (`ofuzz<index>`).
    if (published > 0) {
      for (const record of await kafka.readAll(config.kafka.topics.userEvents, 10_000)) {
        const index = Number(/ofuzz0*(\d+)/.exec(record.value?.toString() ?? '')?.[1] ?? -1);
        serverErrors.push(`published: ${kinds.get(index) ?? `case ${index}`}`);
      }
    }
    const report: FuzzReport = {
      requests: options.count + options.slow, byStatus, byKind, serverErrors, published,
      crashed: child$.exited, rssStartMb, rssEndMb: child$.exited ? 0 : rssMb(child.pid ?? 0), seconds: (performance.now() - started) / 1000,
    };
    return report;
  } finally {
    if (!child$.exited) child.kill('SIGTERM');
    await exited;
    await kafka.close();
  }
}
