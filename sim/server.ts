import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ErrorCode, WxsyncError, describeError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { SimAccount } from './account.ts';
import { AdminApi } from './admin.ts';
import { WechatApi } from './api.ts';
import { churn } from './churn.ts';
import { SimClock } from './clock.ts';
import { API_BODY_LIMIT, JSON_TYPE, readBody, sendBody, sendJson, sendTooLarge } from './http-io.ts';
import { AccountLimits, type FaultSettings } from './limits.ts';
import type { SimOptions } from './options.ts';
import { Pusher, callbackUrl } from './push.ts';
import { Rng, deriveKey32 } from './random.ts';
import type { SimState } from './state.ts';
import { TokenAuthority } from './tokens.ts';
import type { PushMode } from './push.ts';

/** HTTP wiring of the simulator: WeChat's API under /cgi-bin/ and /datacube/, the simulator's own under /__sim/. */

export interface ReadyAccount {
  readonly appid: string;
  readonly secret: string;
  readonly token: string;
  readonly encodingAESKey: string;
  /** The mode it pushes in, so an accounts file copied from the ready line lets wxsync accept its pushes. */
  readonly mode: PushMode;
  readonly originalId: string;
  readonly followers: number;
  readonly callbackUrl?: string;
}

/** The one line `wxsync sim` prints on stdout. */
export interface ReadyLine {
  readonly ready: true;
  readonly apiBase: string;
  readonly mode: string;
  readonly seed: number;
  /** PEM of the self-signed certificate, with --https: clients pass it as their CA. */
  readonly certificate?: string;
  /** The same certificate as a file (e.g. for curl --cacert), removed when the simulator stops. */
  readonly certificatePath?: string;
  readonly accounts: readonly ReadyAccount[];
}

export interface RunningSim {
  readonly port: number;
  readonly apiBase: string;
  readonly ready: ReadyLine;
  readonly state: SimState;
  /** Stops background churn, stops accepting, lets requests in flight finish (a few seconds at most). */
  close(): Promise<void>;
}

const CLOSE_GRACE_MS = 3000;
const execFileAsync = promisify(execFile);

export async function startSim(options: SimOptions, logger: Logger): Promise<RunningSim> {
  const started = Date.now();
  const clock = new SimClock();
  const faults: FaultSettings = {
    busyRate: options.busyRate,
    latencyMs: options.latencyMs,
    perMinuteLimit: options.perMinuteLimit,
    dropRate: options.dropRate,
    dupRate: options.dupRate,
  };
  const accounts: SimAccount[] = [];
  for (let number = 1; number <= options.accounts; number += 1) {
    accounts.push(new SimAccount({
      seed: options.seed,
      number,
      // One count stands for every account, as on the command line, also for callers that skip parseSimOptions.
      followers: (options.followers.length === 1 ? options.followers[0] : options.followers[number - 1]) ?? 0,
      faults,
      userGetDailyQuota: options.userGetDailyQuota,
    }));
  }
  const byAppid = new Map(accounts.map((account) => [account.appid, account]));
  const prefixes = new Set(accounts.map((account) => account.population.openidPrefix));
  if (byAppid.size !== accounts.length || prefixes.size !== accounts.length) {
    throw new WxsyncError(ErrorCode.ConfigInvalid, `seed ${options.seed} derives two accounts with the same appid or openid prefix; pick another --seed`);
  }
  const nonces = new Rng(deriveKey32('nonces', options.seed));
  const state: SimState = {
    clock,
    tokens: new TokenAuthority(options.seed),
    accounts,
    byAppid,
    pusher: new Pusher({
      timeoutMs: options.pushTimeoutMs,
      attempts: options.pushAttempts,
      concurrency: options.pushConcurrency,
      logger,
      random: () => nonces.float(),
      now: () => clock.nowSeconds(),
    }),
    unattributed: new AccountLimits(faults),
    callback: { base: options.callbackUrl, mode: options.mode },
    logger,
  };
  const api = new WechatApi(state);
  const admin = new AdminApi(state);

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    handle(req, res, api, admin).catch((error: unknown) => {
      logger.error({ err: error, url: req.url }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { errcode: 500, errmsg: `internal error: ${describeError(error)}` });
      else res.destroy();
    });
  };
  let certificate: { dir: string; pem: string } | undefined;
  let server: http.Server;
  if (options.https) {
    certificate = await selfSignedCertificate(options.host);
    const [key, cert] = await Promise.all([
      readFile(path.join(certificate.dir, 'key.pem')), readFile(path.join(certificate.dir, 'cert.pem')),
    ]);
    server = https.createServer({ key, cert }, handler);
  } else {
    server = http.createServer(handler);
  }
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch(async (error: unknown) => {
    if (certificate !== undefined) await rm(certificate.dir, { recursive: true, force: true });
    throw new WxsyncError(ErrorCode.ConfigInvalid, `cannot listen on ${options.host}:${options.port}: ${describeError(error)}`, { cause: error });
  });
  const { port } = server.address() as AddressInfo;
  // A wildcard listen address is not one to connect to: announce loopback instead.
  const reachable = options.host === '0.0.0.0' ? '127.0.0.1' : options.host === '::' ? '::1' : options.host;
  const host = reachable.includes(':') ? `[${reachable}]` : reachable;
  const apiBase = `${options.https ? 'https' : 'http'}://${host}:${port}`;

  const churnTimer = options.churnIntervalMs > 0
    ? setInterval(() => { backgroundChurn(state, options.churnSize); }, options.churnIntervalMs)
    : undefined;
  churnTimer?.unref();

  const ready: ReadyLine = {
    ready: true,
    apiBase,
    mode: options.mode,
    seed: options.seed,
    ...(certificate === undefined ? {} : { certificate: certificate.pem, certificatePath: path.join(certificate.dir, 'cert.pem') }),
    accounts: accounts.map((account) => ({
      appid: account.appid,
      secret: account.credentials.secret,
      token: account.credentials.token,
      encodingAESKey: account.credentials.encodingAESKey,
      mode: options.mode,
      originalId: account.credentials.originalId,
      followers: account.population.followerCount,
      ...(options.callbackUrl === undefined ? {} : { callbackUrl: callbackUrl(options.callbackUrl, account.appid) }),
    })),
  };
  logger.info({ apiBase, accounts: accounts.length, followers: options.followers, ms: Date.now() - started }, 'simulator ready');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (churnTimer !== undefined) clearInterval(churnTimer);
      const closed = new Promise<void>((resolve) => {
        server.close(() => { resolve(); });
      });
      server.closeIdleConnections();
      const graceOver = delay(CLOSE_GRACE_MS, undefined, { ref: false }).then(() => 'grace over' as const);
      const outcome = await Promise.race([closed.then(() => 'closed' as const), graceOver]);
      state.pusher.close();
      if (outcome === 'grace over') {
        server.closeAllConnections();
        await closed;
      }
      if (certificate !== undefined) await rm(certificate.dir, { recursive: true, force: true });
    })();
    return closing;
  };
  return { port, apiBase, ready, state, close };
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, api: WechatApi, admin: AdminApi): Promise<void> {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://sim.invalid');
  } catch {
    sendJson(res, 400, { errcode: 400, errmsg: 'malformed request URL' });
    return;
  }
  if (url.pathname.startsWith('/__sim/')) {
    await admin.handle(req, res, url);
    return;
  }
  if (!url.pathname.startsWith('/cgi-bin/') && !url.pathname.startsWith('/datacube/')) {
    req.resume();
    sendJson(res, 404, { errcode: 404, errmsg: `no such path ${url.pathname}` });
    return;
  }
  let body: Buffer = Buffer.alloc(0);
  if (req.method === 'POST') {
    const read = await readBody(req, API_BODY_LIMIT);
    if (read === undefined) {
      sendTooLarge(res, API_BODY_LIMIT, 47001);
      return;
    }
    body = read;
  } else {
    req.resume();
  }
  const reply = api.handle({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body });
  if (reply.delayMs > 0) await delay(reply.delayMs);
  sendBody(res, reply.status, reply.body, JSON_TYPE);
}

/** One tick of --churn-interval-ms: a few follows and unfollows per account, pushed like any other churn. */
function backgroundChurn(state: SimState, size: number): void {
  for (const account of state.accounts) {
    if (account.churning) continue;
    let subscribe = 0;
    for (let i = 0; i < size; i += 1) if (account.churnRng.chance(0.55)) subscribe += 1;
    const unsubscribe = Math.min(size - subscribe, account.population.followerCount);
    account.churning = true;
    churn(state, account, { subscribe, unsubscribe })
      .then((summary) => {
        state.logger.debug({ appid: account.appid, subscribed: summary.subscribed, unsubscribed: summary.unsubscribed, dropped: summary.dropped, failed: summary.failed }, 'background churn');
      })
      .catch((error: unknown) => {
        state.logger.error({ err: error, appid: account.appid }, 'background churn failed');
      })
      .finally(() => {
        account.churning = false;
      });
  }
}

/** A throwaway certificate for --https, made with the openssl command so no key material ships with wxsync. */
async function selfSignedCertificate(host: string): Promise<{ dir: string; pem: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'wxsync-sim-'));
  const names = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'];
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1' && host !== '0.0.0.0' && host !== '::') {
    names.push(/^[\d.]+$/.test(host) || host.includes(':') ? `IP:${host}` : `DNS:${host}`);
  }
  try {
    await execFileAsync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      '-subj', '/CN=wxsync-sim', '-addext', `subjectAltName=${names.join(',')}`,
    ], { timeout: 30_000 });
    return { dir, pem: await readFile(path.join(dir, 'cert.pem'), 'utf8') };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new WxsyncError(ErrorCode.ConfigInvalid, `--https needs the openssl command to make a certificate: ${describeError(error)}`, { cause: error });
  }
}
