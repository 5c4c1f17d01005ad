import type http from 'node:http';
import type { SimAccount } from './account.ts';
import { userJson } from './api.ts';
import { ChurnRejected, MAX_CHURN_EVENTS, churn, type ChurnRequest } from './churn.ts';
import { ADMIN_BODY_LIMIT, drained, readBody, sendJson, sendTooLarge } from './http-io.ts';
import { API_PATHS, isApiPath, type ApiPath, type FaultSettings } from './limits.ts';
import { SCENES, type Scene } from './population.ts';
import { PUSH_MODES, callbackUrl, type PushMode } from './push.ts';
import type { SimState } from './state.ts';
import { isHttpUrl } from '../lib/http-url.ts';

/**
 * The simulator's own endpoints under /__sim/: the truth (followers export, the ledger of changes), churn on
 * request, fault injection, the clock, call counters. Errors are `{"errcode": <HTTP status>, "errmsg"}` with that status.
 */

class AdminError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

type Json = Record<string, unknown>;

const ACCOUNT_ROUTE = /^\/__sim\/accounts\/([^/]+)(?:\/(followers|ledger|churn|faults|stats|stats\/reset|expire-tokens|users\/[^/]+))?$/;
const MAX_ADVANCE_SECONDS = 10 * 365 * 86_400;

export class AdminApi {
  constructor(private readonly state: SimState) {}

  async handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    try {
      await this.route(req, res, url);
    } catch (error) {
      if (!(error instanceof AdminError)) throw error;
      sendJson(res, error.status, { errcode: error.status, errmsg: error.message });
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/__sim/health') {
      allow(method, 'GET');
      sendJson(res, 200, { ok: true });
      return;
    }
    if (path === '/__sim/accounts') {
      allow(method, 'GET');
      sendJson(res, 200, { accounts: this.state.accounts.map((account) => this.accountView(account)) });
      return;
    }
    if (path === '/__sim/clock') {
      if (method === 'POST') {
        const body = await readJson(req, res);
        if (body === undefined) return;
        onlyKeys(body, ['advanceSeconds']);
        const seconds = body['advanceSeconds'];
        if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_ADVANCE_SECONDS) {
          throw new AdminError(400, `advanceSeconds must be a number from 0 to ${MAX_ADVANCE_SECONDS}`);
        }
        this.state.clock.advance(seconds);
      } else {
        allow(method, 'GET');
      }
      const clock = this.state.clock;
      sendJson(res, 200, { now: clock.nowSeconds(), nowMs: clock.nowMs(), offsetSeconds: clock.offsetSeconds });
      return;
    }
    if (path === '/__sim/callback') {
      if (method === 'POST') {
        const body = await readJson(req, res);
        if (body === undefined) return;
        this.setCallback(body);
      } else {
        allow(method, 'GET');
      }
      sendJson(res, 200, { url: this.state.callback.base ?? null, mode: this.state.callback.mode });
      return;
    }
    if (path === '/__sim/stats') {
      allow(method, 'GET');
      sendJson(res, 200, {
        accounts: this.state.accounts.map((account) => this.statsView(account)),
        unattributed: this.state.unattributed.statsView(),
      });
      return;
    }
    const match = ACCOUNT_ROUTE.exec(path);
    if (match === null) throw new AdminError(404, `no admin endpoint ${path}`);
    const appid = decodeSegment(match[1] ?? '');
    const account = this.state.byAppid.get(appid);
    if (account === undefined) throw new AdminError(404, `unknown appid ${JSON.stringify(appid)}`);
    const action = match[2];
    if (action === undefined) {
      allow(method, 'GET');
      sendJson(res, 200, this.accountView(account));
    } else if (action === 'followers') {
      allow(method, 'GET');
      // Chunks of 10,000 lines with backpressure: a 10M export never exists in memory as a whole.
      await stream(res, 'text/plain; charset=utf-8', { 'x-sim-followers': String(account.population.followerCount) }, account.population.exportChunks());
    } else if (action === 'ledger') {
      allow(method, 'GET');
      const from = ledgerFrom(url);
      await stream(res, 'application/x-ndjson; charset=utf-8', { 'x-sim-ledger-size': String(account.ledger.size) }, account.ledger.lines(account.appid, from));
    } else if (action === 'churn') {
      allow(method, 'POST');
      const body = await readJson(req, res);
      if (body === undefined) return;
      const request = churnRequest(body);
      let summary;
      try {
        summary = await churn(this.state, account, request);
      } catch (error) {
        if (error instanceof ChurnRejected) throw new AdminError(409, error.message);
        throw error;
      }
      sendJson(res, 200, summary);
    } else if (action === 'faults') {
      if (method === 'POST') {
        const body = await readJson(req, res);
        if (body === undefined) return;
        this.setFaults(account, body);
      } else {
        allow(method, 'GET');
      }
      sendJson(res, 200, this.faultsView(account));
    } else if (action === 'stats') {
      allow(method, 'GET');
      sendJson(res, 200, this.statsView(account));
    } else if (action === 'stats/reset') {
      allow(method, 'POST');
      account.limits.resetStats();
      Object.assign(account.pushes, { events: 0, delivered: 0, dropped: 0, duplicated: 0, failed: 0, attempts: 0 });
      sendJson(res, 200, this.statsView(account));
    } else if (action === 'expire-tokens') {
      allow(method, 'POST');
      sendJson(res, 200, { appid, expired: this.state.tokens.expireAll(appid, this.state.clock.nowSeconds()) });
    } else {
      allow(method, 'GET');
      const openid = decodeSegment(action.slice('users/'.length));
      const index = account.population.indexOf(openid);
      if (index === undefined) throw new AdminError(404, `${JSON.stringify(openid)} is not an openid of ${appid}`);
      sendJson(res, 200, userJson(account.population.user(index)));
    }
  }

  private accountView(account: SimAccount): Json {
    const base = this.state.callback.base;
    return {
      ...account.credentials,
      followers: account.population.followerCount,
      users: account.population.userCount,
      changes: account.ledger.size,
      verified: account.verified,
      openidPrefix: account.population.openidPrefix,
      callbackUrl: base === undefined ? null : callbackUrl(base, account.appid),
    };
  }

  private statsView(account: SimAccount): Json {
    const now = this.state.clock.nowSeconds();
    const quota: Record<string, unknown> = {};
    for (const api of API_PATHS) quota[api] = account.limits.quota(api, now);
    return {
      appid: account.appid,
      followers: account.population.followerCount,
      users: account.population.userCount,
      calls: account.limits.statsView(),
      pushes: { ...account.pushes },
      quota,
    };
  }

  private faultsView(account: SimAccount): Json {
    const now = this.state.clock.nowSeconds();
    const quota: Record<string, unknown> = {};
    for (const api of API_PATHS) quota[api] = account.limits.quota(api, now);
    return { appid: account.appid, ...account.limits.faults, verified: account.verified, failNext: account.limits.pendingRules(), quota };
  }

  private setCallback(body: Json): void {
    onlyKeys(body, ['url', 'mode']);
    const url = body['url'];
    const mode = body['mode'];
    if (url !== undefined && url !== null && (typeof url !== 'string' || !isHttpUrl(url))) {
      throw new AdminError(400, 'url must be an http(s) URL or null');
    }
    if (mode !== undefined && (typeof mode !== 'string' || !(PUSH_MODES as readonly string[]).includes(mode))) {
      throw new AdminError(400, `mode must be one of ${PUSH_MODES.join(', ')}`);
    }
    if (url !== undefined) this.state.callback.base = url ?? undefined;
    if (mode !== undefined) this.state.callback.mode = mode as PushMode;
  }

  /** Validates the whole body before changing anything, so a bad request leaves the faults as they were. */
  private setFaults(account: SimAccount, body: Json): void {
    onlyKeys(body, [
      'busyRate', 'latencyMs', 'perMinuteLimit', 'dropRate', 'dupRate', 'userGetDailyQuota', 'dailyLimits',
      'quotaRemaining', 'failNext', 'clearFailNext', 'clearQuota', 'verified',
    ]);
    const limits = account.limits;
    const faults: Partial<Record<keyof FaultSettings, number>> = {};
    for (const key of ['busyRate', 'dropRate', 'dupRate'] as const) {
      const value = optionalNumber(body, key, 0, 1, false);
      if (value !== undefined) faults[key] = value;
    }
    for (const key of ['latencyMs', 'perMinuteLimit'] as const) {
      const value = optionalNumber(body, key, 0, key === 'latencyMs' ? 60_000 : 1_000_000_000, true);
      if (value !== undefined) faults[key] = value;
    }
    const dailyLimits = apiNumbers(body['dailyLimits'], 'dailyLimits');
    const userGetDailyQuota = optionalNumber(body, 'userGetDailyQuota', 0, 1_000_000_000, true);
    if (userGetDailyQuota !== undefined) dailyLimits.set('/cgi-bin/user/get', userGetDailyQuota);
    const remaining = body['quotaRemaining'];
    const quotaRemaining = typeof remaining === 'number'
      ? new Map<ApiPath, number>([['/cgi-bin/user/get', checkedInt(remaining, 'quotaRemaining')]])
      : apiNumbers(remaining, 'quotaRemaining');
    const failNext = body['failNext'] === undefined ? [] : failRules(body['failNext']);
    const clearFailNext = optionalBoolean(body, 'clearFailNext');
    const clearQuota = optionalBoolean(body, 'clearQuota');
    const verified = body['verified'];
    if (verified !== undefined && typeof verified !== 'boolean') throw new AdminError(400, 'verified must be a boolean');

    limits.faults = { ...limits.faults, ...faults };
    for (const [api, limit] of dailyLimits) limits.setDailyLimit(api, limit);
    if (clearQuota) limits.clearQuota();
    const now = this.state.clock.nowSeconds();
    for (const [api, remain] of quotaRemaining) limits.setRemaining(api, remain, now);
    if (clearFailNext) limits.clearRules();
    for (const rule of failNext) limits.addRule(rule);
    if (verified !== undefined) account.verified = verified;
  }
}

/** Writes the chunks with backpressure, so a large answer is never held in memory whole. */
async function stream(res: http.ServerResponse, type: string, headers: Record<string, string>, chunks: Iterable<Buffer | string>): Promise<void> {
  res.writeHead(200, { 'content-type': type, ...headers });
  for (const chunk of chunks) {
    if (res.destroyed) return;
    if (!res.write(chunk)) await drained(res);
  }
  res.end();
}

/** `?from=N`: the ledger from entry N on, so a reader can follow it without taking it all again. */
function ledgerFrom(url: URL): number {
  const from = url.searchParams.get('from') ?? '0';
  if (!/^\d{1,15}$/.test(from)) throw new AdminError(400, 'from must be a non-negative integer');
  return Number(from);
}

/** WeChat's qr_scene_str is 1 to 64 characters; pushes carry it in CDATA, so it must not end one. */
function isQrScene(value: unknown): value is string {
  return typeof value === 'string' && /^\P{Cc}{1,64}$/u.test(value) && !value.includes(']]>');
}

function churnRequest(body: Json): ChurnRequest {
  onlyKeys(body, ['subscribe', 'unsubscribe', 'qrRate', 'resubscribeRate', 'scene', 'qrScene', 'dropRate', 'dupRate', 'unsubscribeOpenids', 'resubscribeOpenids']);
  const subscribe = optionalNumber(body, 'subscribe', 0, MAX_CHURN_EVENTS, true) ?? 0;
  const unsubscribe = optionalNumber(body, 'unsubscribe', 0, MAX_CHURN_EVENTS, true) ?? 0;
  const unsubscribeOpenids = openidList(body, 'unsubscribeOpenids');
  const resubscribeOpenids = openidList(body, 'resubscribeOpenids');
  if (subscribe + unsubscribe + unsubscribeOpenids.length + resubscribeOpenids.length > MAX_CHURN_EVENTS) {
    throw new AdminError(400, `at most ${MAX_CHURN_EVENTS} events per churn request`);
  }
  const request: { -readonly [K in keyof ChurnRequest]: ChurnRequest[K] } = { subscribe, unsubscribe, unsubscribeOpenids, resubscribeOpenids };
  for (const key of ['qrRate', 'resubscribeRate', 'dropRate', 'dupRate'] as const) {
    const value = optionalNumber(body, key, 0, 1, false);
    if (value !== undefined) request[key] = value;
  }
  const scene = body['scene'];
  if (scene !== undefined) {
    if (typeof scene !== 'string' || !(SCENES as readonly string[]).includes(scene)) throw new AdminError(400, `scene must be one of ${SCENES.join(', ')}`);
    request.scene = scene as Scene;
  }
  const qrScene = body['qrScene'];
  if (qrScene !== undefined) {
    if (!isQrScene(qrScene)) throw new AdminError(400, 'qrScene must be 1 to 64 characters, without control characters or "]]>"');
    if (scene !== undefined && scene !== 'ADD_SCENE_QR_CODE') throw new AdminError(400, 'qrScene names a QR code: scene must be ADD_SCENE_QR_CODE or left out');
    request.qrScene = qrScene;
  }
  return request;
}

function openidList(body: Json, key: string): string[] {
  const value = body[key] ?? [];
  if (!Array.isArray(value) || value.length > 10_000 || !value.every((item) => typeof item === 'string')) {
    throw new AdminError(400, `${key} must be an array of at most 10000 openids`);
  }
  return value;
}

function failRules(value: unknown): { api: ApiPath | '*'; errcode: number; after: number; count: number }[] {
  const items = Array.isArray(value) ? (value as unknown[]) : [value];
  if (items.length > 100) throw new AdminError(400, 'at most 100 failNext rules at once');
  return items.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new AdminError(400, `failNext[${i}] must be an object`);
    const rule = item as Json;
    onlyKeys(rule, ['api', 'errcode', 'after', 'count'], `failNext[${i}].`);
    const api = rule['api'] ?? '*';
    if (api !== '*' && (typeof api !== 'string' || !isApiPath(api))) {
      throw new AdminError(400, `failNext[${i}].api must be "*" or one of ${API_PATHS.join(', ')}`);
    }
    const errcode = rule['errcode'];
    if (typeof errcode !== 'number' || !Number.isSafeInteger(errcode) || errcode === 0) {
      throw new AdminError(400, `failNext[${i}].errcode must be a non-zero integer`);
    }
    return {
      api,
      errcode,
      after: optionalNumber(rule, 'after', 0, 1_000_000, true, `failNext[${i}].`) ?? 0,
      count: optionalNumber(rule, 'count', 1, 1_000_000, true, `failNext[${i}].`) ?? 1,
    };
  });
}

function apiNumbers(value: unknown, name: string): Map<ApiPath, number> {
  const out = new Map<ApiPath, number>();
  if (value === undefined) return out;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AdminError(400, `${name} must be an object of API path to integer`);
  }
  for (const [api, n] of Object.entries(value as Json)) {
    if (!isApiPath(api)) throw new AdminError(400, `${name}: unknown API ${JSON.stringify(api)}`);
    out.set(api, checkedInt(n, `${name}[${api}]`));
  }
  return out;
}

function checkedInt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > 1_000_000_000) {
    throw new AdminError(400, `${name} must be an integer from 0 to 1000000000`);
  }
  return value;
}

function optionalNumber(body: Json, key: string, min: number, max: number, integer: boolean, prefix = ''): number | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new AdminError(400, `${prefix}${key} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return value;
}

function optionalBoolean(body: Json, key: string): boolean {
  const value = body[key] ?? false;
  if (typeof value !== 'boolean') throw new AdminError(400, `${key} must be a boolean`);
  return value;
}

/** Unknown keys are refused: a typo such as "busyrate" must not silently inject nothing. */
function onlyKeys(body: Json, allowed: readonly string[], prefix = ''): void {
  const unknown = Object.keys(body).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) {
    throw new AdminError(400, `unknown field ${unknown.map((key) => prefix + key).join(', ')}; allowed: ${allowed.join(', ')}`);
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AdminError(400, `malformed percent-encoding in ${JSON.stringify(segment)}`);
  }
}

function allow(method: string, expected: 'GET' | 'POST'): void {
  if (method !== expected) throw new AdminError(405, `use ${expected}`);
}

/** The JSON object body (an empty body counts as {}), or undefined after answering 413. */
async function readJson(req: http.IncomingMessage, res: http.ServerResponse): Promise<Json | undefined> {
  const body = await readBody(req, ADMIN_BODY_LIMIT);
  if (body === undefined) {
    sendTooLarge(res, ADMIN_BODY_LIMIT, 413);
    return undefined;
  }
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new AdminError(400, `the body is not JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new AdminError(400, 'the body must be a JSON object');
  return parsed as Json;
}
