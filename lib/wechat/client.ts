/**
 * The WeChat API calls wxsync makes, one client per account, each answer checked field by field before
 * anyone sees it: a wrong-shaped answer is WECHAT_BAD_ANSWER, never a silently wrong page or profile.
 * Every call goes through the account's token owner and bounded retries on -1, 45011 and the network.
 */
import type { Account } from '../config.ts';
import { OPENID, compact } from '../contracts/fields.ts';
import { MAX_PAGE_OPENIDS } from '../contracts/snapshot.ts';
import { ErrorCode, WxsyncError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { badAnswer } from './errors.ts';
import { DEFAULT_RETRY_POLICY, WechatHttp, withRetries, type JsonObject, type RetryPolicy, type WechatHttpOptions } from './http.ts';
import { TokenOwner } from './token.ts';
import type { UserProfile } from '../contracts/user-profile.ts';

export const USER_GET_API = '/cgi-bin/user/get';
export const USER_INFO_API = '/cgi-bin/user/info';
export const BATCHGET_API = '/cgi-bin/user/info/batchget';
export const QUOTA_GET_API = '/cgi-bin/openapi/quota/get';

/** §3.1: at most 100 users per batchget. */
export const BATCHGET_MAX = 100;

const NEXT_OPENID = /^[A-Za-z0-9_-]{0,64}$/;
const MAX_COUNT = 1_000_000_000;

/** One user/get answer, checked. Empty-string openids are already dropped (§2.1: old doc samples had them). */
export interface UserGetAnswer {
  readonly total: number;
  readonly count: number;
  /** False when the answer had no `data` key (the end-of-list answer, or an account with no followers). */
  readonly hasData: boolean;
  readonly openids: readonly string[];
  /** '' when WeChat sent an empty or no next_openid. */
  readonly nextOpenid: string;
}

export type Lang = 'zh_CN' | 'zh_TW' | 'en';

/**
 * One user as /user/info and batchget describe them, in the field names of the wx.user.profiles
 * contract. `subscribe: 0` users carry only openid (and unionid) (§3.1).
 */
export interface WechatUserProfile extends Omit<UserProfile, 'v' | 'appid' | 'fetchedAt'> {
  readonly language?: string;
  readonly groupid?: number;
}

export interface ApiQuota {
  readonly dailyLimit: number;
  readonly used: number;
  readonly remain: number;
}

export interface WechatClientOptions {
  readonly account: Pick<Account, 'appid' | 'secret'>;
  /** Shared by every account of the process: one keep-alive pool. */
  readonly http: WechatHttp;
  readonly logger: Logger;
  /** Milliseconds since the epoch. */
  readonly now?: () => number;
  readonly retry?: Partial<RetryPolicy>;
  readonly refreshMarginSeconds?: number;
  /** Jitter source for backoff. */
  readonly random?: () => number;
  /** Aborted at shutdown: calls and backoff sleeps stop with SHUTTING_DOWN. */
  readonly signal?: AbortSignal;
}

export class WechatClient {
  readonly appid: string;
  readonly tokens: TokenOwner;
  private readonly http: WechatHttp;
  private readonly logger: Logger;
  private readonly policy: RetryPolicy;
  private readonly random: (() => number) | undefined;
  private readonly signal: AbortSignal | undefined;

  constructor(options: WechatClientOptions) {
    this.appid = options.account.appid;
    this.http = options.http;
    this.logger = options.logger.child({ appid: this.appid });
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    if (!Number.isInteger(this.policy.attempts) || this.policy.attempts < 1) {
      throw new WxsyncError(ErrorCode.ConfigInvalid, `retry attempts must be a positive integer, got ${this.policy.attempts}`);
    }
    this.random = options.random;
    this.signal = options.signal;
    this.tokens = new TokenOwner({
      http: this.http,
      appid: this.appid,
      secret: options.account.secret,
      logger: options.logger,
      now: options.now ?? Date.now,
      signal: this.signal,
      ...(options.refreshMarginSeconds === undefined ? {} : { refreshMarginSeconds: options.refreshMarginSeconds }),
    });
  }

  /** One page of the follower list after `nextOpenid` ('' = from the start). See pager.ts for the whole list. */
  async userGet(nextOpenid = ''): Promise<UserGetAnswer> {
    if (!NEXT_OPENID.test(nextOpenid)) {
      throw new WxsyncError(ErrorCode.WechatRequestInvalid, 'next_openid must be an openid or empty', { details: { api: USER_GET_API } });
    }
    // WxJava and wechatpy leave next_openid out of the first call; an empty value means the same (§2).
    const query = nextOpenid === '' ? {} : { next_openid: nextOpenid };
    return parseUserGet(await this.call('GET', USER_GET_API, query));
  }

  /** Profiles of up to 100 users, in the order asked. See batchget.ts for any number of openids. */
  async batchGetUserInfo(openids: readonly string[], lang: Lang = 'zh_CN'): Promise<WechatUserProfile[]> {
    if (openids.length === 0) return [];
    if (openids.length > BATCHGET_MAX) {
      throw new WxsyncError(ErrorCode.WechatRequestInvalid, `batchget takes at most ${BATCHGET_MAX} openids, got ${openids.length}`, {
        details: { api: BATCHGET_API },
      });
    }
    for (const openid of openids) checkOpenid(openid, BATCHGET_API);
    const answer = await this.call('POST', BATCHGET_API, {}, { user_list: openids.map((openid) => ({ openid, lang })) });
    const list = answer['user_info_list'];
    if (!Array.isArray(list)) throw badAnswer(BATCHGET_API, 'user_info_list is missing or not an array');
    const byOpenid = new Map<string, WechatUserProfile>();
    for (const item of list as unknown[]) {
      const profile = parseProfile(item, BATCHGET_API);
      byOpenid.set(profile.openid, profile);
    }
    const wanted = new Set(openids);
    if (byOpenid.size !== wanted.size || [...byOpenid.keys()].some((openid) => !wanted.has(openid))) {
      throw badAnswer(BATCHGET_API, `asked for ${wanted.size} users, the answer misses some or describes others (${byOpenid.size} described)`);
    }
    return openids.map((openid) => byOpenid.get(openid) as WechatUserProfile);
  }

  async userInfo(openid: string, lang: Lang = 'zh_CN'): Promise<WechatUserProfile> {
    checkOpenid(openid, USER_INFO_API);
    const profile = parseProfile(await this.call('GET', USER_INFO_API, { openid, lang }), USER_INFO_API);
    if (profile.openid !== openid) throw badAnswer(USER_INFO_API, 'the answer describes another openid');
    return profile;
  }

  /** Today's quota of one API, e.g. quotaGet('/cgi-bin/user/get') before a crawl that needs total/10,000 + 1 calls. */
  async quotaGet(cgiPath: string): Promise<ApiQuota> {
    const answer = await this.call('POST', QUOTA_GET_API, {}, { cgi_path: cgiPath });
    const quota = answer['quota'];
    if (typeof quota !== 'object' || quota === null || Array.isArray(quota)) throw badAnswer(QUOTA_GET_API, 'quota is missing or not an object');
    const field = (key: string): number => {
      const value = (quota as JsonObject)[key];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw badAnswer(QUOTA_GET_API, `quota.${key} is not a count`);
      return value;
    };
    return { dailyLimit: field('daily_limit'), used: field('used'), remain: field('remain') };
  }

  /** One datacube query of `beginDate`..`endDate`; datacube.ts plans the ranges and checks the answer. */
  datacube(api: string, beginDate: string, endDate: string): Promise<JsonObject> {
    return this.call('POST', api, {}, { begin_date: beginDate, end_date: endDate });
  }

  private call(method: 'GET' | 'POST', api: string, query: Record<string, string>, body?: unknown): Promise<JsonObject> {
    const signal = this.signal;
    return withRetries({ policy: this.policy, logger: this.logger, api, signal, random: this.random }, () =>
      this.tokens.withToken((accessToken) =>
        this.http.call({
          method,
          api,
          query: { ...query, access_token: accessToken },
          ...(body === undefined ? {} : { body }),
          ...(signal === undefined ? {} : { signal }),
        })));
  }
}

export interface WechatClientsOptions {
  /** `config.wechatApiBase`. */
  readonly apiBase: string;
  /** `config.accounts`. */
  readonly accounts: readonly Account[];
  readonly logger: Logger;
  readonly now?: () => number;
  readonly http?: Omit<WechatHttpOptions, 'baseUrl' | 'logger'>;
  readonly retry?: Partial<RetryPolicy>;
  readonly signal?: AbortSignal;
}

/**
 * The clients of every configured account, sharing one connection pool: the process-wide place to get a
 * client, so the snapshot producer and the reconcile job use the same token owner for an account.
 */
export class WechatClients {
  private readonly http: WechatHttp;
  private readonly clients = new Map<string, WechatClient>();

  constructor(options: WechatClientsOptions) {
    this.http = new WechatHttp({ ...options.http, baseUrl: options.apiBase, logger: options.logger });
    for (const account of options.accounts) {
      this.clients.set(account.appid, new WechatClient({
        account,
        http: this.http,
        logger: options.logger,
        ...(options.now === undefined ? {} : { now: options.now }),
        ...(options.retry === undefined ? {} : { retry: options.retry }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      }));
    }
  }

  get(appid: string): WechatClient {
    const client = this.clients.get(appid);
    if (client === undefined) throw new WxsyncError(ErrorCode.UsageInvalid, `no configured account has appid ${JSON.stringify(appid)}`);
    return client;
  }

  close(): void {
    this.http.close();
  }
}

function checkOpenid(openid: string, api: string): void {
  if (typeof openid !== 'string' || !OPENID.test(openid)) {
    throw new WxsyncError(ErrorCode.WechatRequestInvalid, `${api}: ${JSON.stringify(openid)} is not an openid`, { details: { api } });
  }
}

function count(json: JsonObject, key: string, api: string): number {
  const value = json[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_COUNT) {
    throw badAnswer(api, `${key} is missing or not a count`);
  }
  return value;
}

/** §2.1, strictly: anything that would make the page's openids or the end of the list uncertain is refused. */
export function parseUserGet(json: JsonObject): UserGetAnswer {
  const api = USER_GET_API;
  const total = count(json, 'total', api);
  const reported = count(json, 'count', api);
  if (reported > MAX_PAGE_OPENIDS) throw badAnswer(api, `count ${reported} exceeds the page size of ${MAX_PAGE_OPENIDS}`);
  const rawNext = json['next_openid'];
  if (rawNext !== undefined && (typeof rawNext !== 'string' || !NEXT_OPENID.test(rawNext))) {
    throw badAnswer(api, 'next_openid is not an openid');
  }
  const nextOpenid = typeof rawNext === 'string' ? rawNext : '';
  const data = json['data'];
  if (data === undefined || data === null) {
    if (reported !== 0) throw badAnswer(api, `count is ${reported} but the answer has no data`);
    return { total, count: 0, hasData: false, openids: [], nextOpenid };
  }
  if (typeof data !== 'object' || Array.isArray(data)) throw badAnswer(api, 'data is not an object');
  const list = (data as JsonObject)['openid'];
  if (list === undefined && reported === 0) return { total, count: 0, hasData: true, openids: [], nextOpenid };
  if (!Array.isArray(list)) throw badAnswer(api, 'data.openid is missing or not an array');
  const openids: string[] = [];
  for (const item of list as unknown[]) {
    if (typeof item !== 'string') throw badAnswer(api, `data.openid holds a ${item === null ? 'null' : typeof item}, not a string`);
    if (item === '') continue;
    if (!OPENID.test(item)) throw badAnswer(api, 'data.openid holds a string that is not an openid');
    openids.push(item);
  }
  // The old doc sample counted ["","A","B"] as 2, so either the list length or the non-empty openids may match.
  if (reported !== openids.length && reported !== list.length) {
    throw badAnswer(api, `count is ${reported} but data.openid holds ${openids.length} openids`);
  }
  if (openids.length > 0 && rawNext === undefined) throw badAnswer(api, 'next_openid is missing: cannot tell the end of the list');
  return { total, count: reported, hasData: true, openids, nextOpenid };
}

/** One user object of /user/info or batchget. */
export function parseProfile(item: unknown, api: string): WechatUserProfile {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw badAnswer(api, 'a user entry is not an object');
  const user = item as JsonObject;
  const openid = user['openid'];
  if (typeof openid !== 'string' || !OPENID.test(openid)) throw badAnswer(api, 'a user entry has no valid openid');
  const subscribe = user['subscribe'];
  if (subscribe !== 0 && subscribe !== 1) throw badAnswer(api, 'subscribe is not 0 or 1', { openid });
  const text = (key: string): string | undefined => {
    const value = user[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') throw badAnswer(api, `${key} is not a string`, { openid });
    return value;
  };
  const integer = (key: string): number | undefined => {
    const value = user[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw badAnswer(api, `${key} is not a non-negative integer`, { openid });
    return value;
  };
  const rawTags = user['tagid_list'];
  let tagidList: number[] = [];
  if (rawTags !== undefined && rawTags !== null) {
    if (!Array.isArray(rawTags) || !(rawTags as unknown[]).every((t) => typeof t === 'number' && Number.isSafeInteger(t) && t >= 0)) {
      throw badAnswer(api, 'tagid_list is not a list of tag ids', { openid });
    }
    tagidList = rawTags as number[];
  }
  const subscribeSeconds = integer('subscribe_time');
  if (subscribe === 1 && subscribeSeconds === undefined) throw badAnswer(api, 'a follower has no subscribe_time', { openid });
  return compact<WechatUserProfile>({
    openid,
    subscribe,
    subscribeTime: subscribeSeconds === undefined ? undefined : subscribeSeconds * 1000,
    unionid: text('unionid'),
    subscribeScene: text('subscribe_scene'),
    qrScene: integer('qr_scene'),
    qrSceneStr: text('qr_scene_str'),
    tagidList,
    remark: text('remark'),
    language: text('language'),
    groupid: integer('groupid'),
  });
}
