import { randomBytes } from 'node:crypto';
import type { SimAccount } from './account.ts';
import { cumulateRows, datacubeQuery, summaryRows } from './datacube.ts';
import { isApiPath, type ApiPath } from './limits.ts';
import { OPENID_LENGTH, PAGE_SIZE, type UserRecord } from './population.ts';
import type { SimState } from './state.ts';

/**
 * The WeChat Official Account API endpoints the sync uses, answering as api.weixin.qq.com does: HTTP 200
 * with `{"errcode","errmsg"}` for every failure, errmsg ending in a request id (wechat-protocol.md §0, §7).
 */

export const MAX_BATCHGET = 100;

const ERRMSG: Readonly<Record<number, string>> = {
  [-1]: 'system error',
  40001: 'invalid credential, access_token is invalid or not latest, could get access_token by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r',
  40002: 'invalid grant_type',
  40003: 'invalid openid',
  40013: 'invalid appid',
  40014: 'invalid access_token',
  40032: 'invalid openid list size',
  40066: 'invalid url',
  40125: 'invalid appsecret',
  41001: 'access_token missing',
  41002: 'appid missing',
  41004: 'appsecret missing',
  41009: 'missing openid',
  42001: 'access_token expired',
  43001: 'require GET method',
  43002: 'require POST method',
  44002: 'empty post data',
  45009: 'reach max api daily quota limit',
  45011: 'api minute-quota reach limit  mustslower  retry next minute',
  47001: 'data format error',
  48001: 'api unauthorized',
  61500: 'date format error',
  61501: 'date range error',
  76021: 'cgi_path not found, please check',
};

const METHOD: Readonly<Record<ApiPath, 'GET' | 'POST'>> = {
  '/cgi-bin/token': 'GET',
  '/cgi-bin/stable_token': 'POST',
  '/cgi-bin/user/get': 'GET',
  '/cgi-bin/user/info': 'GET',
  '/cgi-bin/user/info/batchget': 'POST',
  '/cgi-bin/openapi/quota/get': 'POST',
  '/cgi-bin/clear_quota': 'POST',
  '/datacube/getusersummary': 'POST',
  '/datacube/getusercumulate': 'POST',
};

export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** The request body of a POST (empty for GET). */
  readonly body: Buffer;
}

export interface ApiReply {
  readonly status: number;
  readonly body: Buffer;
  /** Injected latency to wait before answering. */
  readonly delayMs: number;
}

type Json = Record<string, unknown>;
type Outcome = { readonly errcode: number; readonly body: Buffer };

export function errorBody(errcode: number, detail?: string): Buffer {
  const rid = `${randomBytes(4).toString('hex')}-${randomBytes(4).toString('hex')}-${randomBytes(4).toString('hex')}`;
  const text = ERRMSG[errcode] ?? 'simulated error';
  return jsonBody({ errcode, errmsg: `${text}${detail === undefined ? '' : `: ${detail}`} rid: ${rid}` });
}

function jsonBody(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

const fail = (errcode: number, detail?: string): Outcome => ({ errcode, body: errorBody(errcode, detail) });
const ok = (value: unknown): Outcome => ({ errcode: 0, body: jsonBody(value) });

export class WechatApi {
  /** One page of positions, reused: pages are built synchronously, one at a time. */
  private readonly page = new Uint32Array(PAGE_SIZE);

  constructor(private readonly state: SimState) {}

  handle(request: ApiRequest): ApiReply {
    const path = request.path;
    if (!isApiPath(path)) return { status: 404, body: errorBody(40066, `no such API ${path}`), delayMs: 0 };
    const expected = METHOD[path];
    if (request.method !== expected) {
      return { status: 200, body: errorBody(expected === 'GET' ? 43001 : 43002), delayMs: 0 };
    }
    const { account, outcome } = this.dispatch(path, request);
    const limits = account?.limits ?? this.state.unattributed;
    limits.record(path, outcome.errcode);
    return { status: 200, body: outcome.body, delayMs: limits.faults.latencyMs };
  }

  private dispatch(path: ApiPath, request: ApiRequest): { account: SimAccount | undefined; outcome: Outcome } {
    if (path === '/cgi-bin/token') return this.token(request.query);
    if (path === '/cgi-bin/stable_token') return this.stableToken(request.body);
    const now = this.state.clock.nowSeconds();
    const verdict = this.state.tokens.verify(request.query.get('access_token'), now);
    const account = verdict.appid === undefined ? undefined : this.state.byAppid.get(verdict.appid);
    if (verdict.errcode !== 0 || account === undefined) return { account, outcome: fail(verdict.errcode === 0 ? 40001 : verdict.errcode) };
    const admitted = account.limits.admit(path, now, account.faultRng);
    if (admitted !== 0) return { account, outcome: fail(admitted) };
    switch (path) {
      case '/cgi-bin/user/get':
        return { account, outcome: this.userGet(account, request.query.get('next_openid')) };
      case '/cgi-bin/user/info':
        return { account, outcome: this.userInfo(account, request.query.get('openid')) };
      case '/cgi-bin/user/info/batchget':
        return { account, outcome: this.batchget(account, request.body) };
      case '/cgi-bin/openapi/quota/get':
        return { account, outcome: this.quotaGet(account, request.body, now) };
      case '/cgi-bin/clear_quota':
        return { account, outcome: this.clearQuota(account, request.body) };
      case '/datacube/getusersummary':
      case '/datacube/getusercumulate':
        return { account, outcome: this.datacube(path, account, request.body, now) };
    }
  }

  private token(query: URLSearchParams): { account: SimAccount | undefined; outcome: Outcome } {
    const checked = this.credentials(query.get('grant_type'), query.get('appid'), query.get('secret'));
    if ('outcome' in checked) return checked;
    const { account } = checked;
    const now = this.state.clock.nowSeconds();
    const admitted = account.limits.admit('/cgi-bin/token', now, account.faultRng);
    if (admitted !== 0) return { account, outcome: fail(admitted) };
    const issued = this.state.tokens.issue(account.appid, now);
    return { account, outcome: ok({ access_token: issued.accessToken, expires_in: issued.expiresIn }) };
  }

  private stableToken(body: Buffer): { account: SimAccount | undefined; outcome: Outcome } {
    const result = parseJsonObject(body);
    if ('failure' in result) return { account: undefined, outcome: result.failure };
    const parsed = result.json;
    const text = (key: string): string | null => (typeof parsed[key] === 'string' ? parsed[key] : null);
    const checked = this.credentials(text('grant_type'), text('appid'), text('secret'));
    if ('outcome' in checked) return checked;
    const { account } = checked;
    const force = parsed['force_refresh'] ?? false;
    if (typeof force !== 'boolean') return { account, outcome: fail(47001, 'force_refresh must be a boolean') };
    const now = this.state.clock.nowSeconds();
    const admitted = account.limits.admit('/cgi-bin/stable_token', now, account.faultRng);
    if (admitted !== 0) return { account, outcome: fail(admitted) };
    const issued = this.state.tokens.stable(account.appid, now, force);
    if (issued === undefined) return { account, outcome: fail(45009, 'force_refresh is limited to 20 times a day') };
    return { account, outcome: ok({ access_token: issued.accessToken, expires_in: issued.expiresIn }) };
  }

  private credentials(
    grantType: string | null, appid: string | null, secret: string | null,
  ): { account: SimAccount } | { account: SimAccount | undefined; outcome: Outcome } {
    if (grantType !== 'client_credential') return { account: undefined, outcome: fail(40002) };
    if (appid === null || appid === '') return { account: undefined, outcome: fail(41002) };
    const account = this.state.byAppid.get(appid);
    if (account === undefined) return { account: undefined, outcome: fail(40013) };
    if (secret === null || secret === '') return { account, outcome: fail(41004) };
    if (secret !== account.credentials.secret) return { account, outcome: fail(40125) };
    return { account };
  }

  /**
   * §2: up to 10,000 openids after the cursor; `next_openid` is the last of them, and a cursor with
   * nothing after it answers `{"total","count":0,"next_openid":""}` with no `data`.
   */
  private userGet(account: SimAccount, nextOpenid: string | null): Outcome {
    const population = account.population;
    let after = -1;
    if (nextOpenid !== null && nextOpenid !== '') {
      const index = population.indexOf(nextOpenid);
      // A cursor naming a user who has since left still works: order is by position, not by membership.
      if (index === undefined) return fail(40003);
      after = population.positionOf(index);
    }
    const total = population.followerCount;
    const count = population.collect(after, this.page);
    if (count === 0) return ok({ total, count: 0, next_openid: '' });
    const head = Buffer.from(`{"total":${total},"count":${count},"data":{"openid":[`, 'latin1');
    const middle = Buffer.allocUnsafe(count * (OPENID_LENGTH + 3) - 1);
    for (let k = 0; k < count; k += 1) {
      const at = k * (OPENID_LENGTH + 3);
      middle[at] = 0x22;
      population.writeOpenid(this.page[k] ?? 0, middle, at + 1);
      middle[at + OPENID_LENGTH + 1] = 0x22;
      if (k < count - 1) middle[at + OPENID_LENGTH + 2] = 0x2c;
    }
    const lastAt = (count - 1) * (OPENID_LENGTH + 3) + 1;
    const last = middle.toString('latin1', lastAt, lastAt + OPENID_LENGTH);
    const tail = Buffer.from(`]},"next_openid":"${last}"}`, 'latin1');
    return { errcode: 0, body: Buffer.concat([head, middle, tail]) };
  }

  private userInfo(account: SimAccount, openid: string | null): Outcome {
    if (openid === null || openid === '') return fail(41009);
    const index = account.population.indexOf(openid);
    if (index === undefined) return fail(40003);
    return ok(userJson(account.population.user(index)));
  }

  /** §3.1. One unknown openid fails the whole call with 40003 (the note leaves this open; we chose strict). */
  private batchget(account: SimAccount, body: Buffer): Outcome {
    const result = parseJsonObject(body);
    if ('failure' in result) return result.failure;
    const parsed = result.json;
    const list = parsed['user_list'];
    if (!Array.isArray(list)) return fail(47001, 'user_list must be an array');
    if (list.length === 0 || list.length > MAX_BATCHGET) return fail(40032, `user_list holds ${list.length} entries, 1 to ${MAX_BATCHGET} allowed`);
    const indices: number[] = [];
    for (const item of list as unknown[]) {
      if (typeof item !== 'object' || item === null) return fail(47001, 'user_list entries must be objects');
      const openid = (item as Json)['openid'];
      if (typeof openid !== 'string' || openid === '') return fail(40003);
      const index = account.population.indexOf(openid);
      if (index === undefined) return fail(40003);
      indices.push(index);
    }
    return ok({ user_info_list: indices.map((index) => userJson(account.population.user(index))) });
  }

  private quotaGet(account: SimAccount, body: Buffer, now: number): Outcome {
    const result = parseJsonObject(body);
    if ('failure' in result) return result.failure;
    const parsed = result.json;
    const cgiPath = parsed['cgi_path'];
    if (typeof cgiPath !== 'string' || !isApiPath(cgiPath)) return fail(76021);
    return ok({ errcode: 0, errmsg: 'ok', quota: account.limits.quota(cgiPath, now) });
  }

  private clearQuota(account: SimAccount, body: Buffer): Outcome {
    const result = parseJsonObject(body);
    if ('failure' in result) return result.failure;
    const parsed = result.json;
    if (parsed['appid'] !== account.appid) return fail(40013);
    account.limits.clearQuota();
    return ok({ errcode: 0, errmsg: 'ok' });
  }

  /** §11, from the ledger: one day's figures per row, at most 7 days, up to yesterday (after 08:00 China time). */
  private datacube(path: '/datacube/getusersummary' | '/datacube/getusercumulate', account: SimAccount, body: Buffer, now: number): Outcome {
    if (!account.verified) return fail(48001);
    const result = parseJsonObject(body);
    if ('failure' in result) return result.failure;
    const query = datacubeQuery(result.json, now);
    if ('errcode' in query) return fail(query.errcode, query.detail);
    const days = query.first <= query.last ? account.ledger.days(query.first, query.last) : [];
    return ok({ list: path === '/datacube/getusersummary' ? summaryRows(days) : cumulateRows(days) });
  }
}

/** The user object of /user/info and batchget, with today's fields only (§3.1: no nickname, sex, region, avatar). */
export function userJson(user: UserRecord): Json {
  const unionid = user.unionid === undefined ? {} : { unionid: user.unionid };
  if (!user.following) return { subscribe: 0, openid: user.openid, ...unionid };
  return {
    subscribe: 1,
    openid: user.openid,
    language: user.language,
    subscribe_time: user.subscribeTime,
    ...unionid,
    remark: user.remark,
    groupid: user.tagIds[0] ?? 0,
    tagid_list: user.tagIds,
    subscribe_scene: user.scene,
    qr_scene: user.qr?.qrScene ?? 0,
    qr_scene_str: user.qr?.qrSceneStr ?? '',
  };
}

function parseJsonObject(body: Buffer): { readonly json: Json } | { readonly failure: Outcome } {
  if (body.length === 0) return { failure: fail(44002) };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { failure: fail(47001) };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { failure: fail(47001, 'the body must be a JSON object') };
  }
  return { json: parsed as Json };
}
