/**
 * The one access-token owner of an account (wechat-protocol.md §1, §9.1). Tokens come from
 * /cgi-bin/stable_token in normal mode, which hands every caller the same live token and never
 * invalidates anyone else's, so a second wxsync process cannot knock this one out as /cgi-bin/token would.
 */
import { ErrorCode, WxsyncError, isWxsyncError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { TOKEN_API, badAnswer } from './errors.ts';
import type { WechatHttp } from './http.ts';

export interface TokenOwnerOptions {
  readonly http: WechatHttp;
  readonly appid: string;
  readonly secret: string;
  readonly logger: Logger;
  /** Milliseconds since the epoch; injected so tests can move time. */
  readonly now: () => number;
  /** Seconds before expiry at which the token is renewed; at least 300 (§1.2: the platform's overlap). */
  readonly refreshMarginSeconds?: number;
  readonly signal?: AbortSignal | undefined;
}

const MIN_REFRESH_MARGIN_SECONDS = 300;
/** §1.1: reserve 512 characters; anything far longer is not a token. */
const MAX_TOKEN_LENGTH = 2048;
const TOKEN_SHAPE = /^[\x21-\x7e]+$/;

interface CachedToken {
  readonly value: string;
  /** When we stop handing it out and fetch again (ms). */
  readonly refreshAt: number;
}

export class TokenOwner {
  private readonly options: TokenOwnerOptions;
  private readonly marginMs: number;
  private readonly logger: Logger;
  private cached: CachedToken | undefined;
  private refreshing: Promise<CachedToken> | undefined;

  constructor(options: TokenOwnerOptions) {
    const margin = options.refreshMarginSeconds ?? MIN_REFRESH_MARGIN_SECONDS;
    if (!Number.isFinite(margin) || margin < MIN_REFRESH_MARGIN_SECONDS) {
      throw new WxsyncError(ErrorCode.ConfigInvalid, `refreshMarginSeconds must be at least ${MIN_REFRESH_MARGIN_SECONDS}, got ${margin}`);
    }
    this.options = options;
    this.marginMs = margin * 1000;
    this.logger = options.logger.child({ appid: options.appid });
  }

  /** A token with more than the margin left; concurrent callers share one in-flight refresh. */
  async token(): Promise<string> {
    const cached = this.cached;
    if (cached !== undefined && this.options.now() < cached.refreshAt) return cached.value;
    this.refreshing ??= this.fetch().finally(() => {
      this.refreshing = undefined;
    });
    return (await this.refreshing).value;
  }

  /**
   * Forgets `failed` unless a newer token already replaced it, so a late 40001 from a call made with the
   * old token does not throw away the new one (WxJava does the same, §1.3).
   */
  invalidate(failed: string): void {
    if (this.cached?.value === failed) this.cached = undefined;
  }

  /**
   * Runs `call` with a token. On 40001/40014/42001 it refreshes once and retries once; a second token
   * error means something else keeps invalidating our tokens (or the secret changed): WECHAT_TOKEN_INVALID,
   * not retriable, for an operator to look at.
   */
  async withToken<T>(call: (accessToken: string) => Promise<T>): Promise<T> {
    const first = await this.token();
    try {
      return await call(first);
    } catch (error) {
      if (!isWxsyncError(error, ErrorCode.WechatTokenInvalid)) throw error;
      this.logger.info({ errcode: error.details['errcode'], api: error.details['api'] }, 'access token rejected, refreshing');
      this.invalidate(first);
    }
    const second = await this.token();
    try {
      return await call(second);
    } catch (error) {
      if (!isWxsyncError(error, ErrorCode.WechatTokenInvalid)) throw error;
      this.invalidate(second);
      throw new WxsyncError(
        ErrorCode.WechatTokenInvalid,
        `${String(error.details['api'])} rejected a freshly fetched access token too (errcode ${String(error.details['errcode'])}); ` +
          'is another service fetching tokens with force_refresh, or was the AppSecret reset?',
        { cause: error, details: { ...error.details, appid: this.options.appid, refreshed: true } },
      );
    }
  }

  private async fetch(): Promise<CachedToken> {
    const { http, appid, secret, now, signal } = this.options;
    // Measured before the call, so the network time counts against the token's life, not for it.
    const asked = now();
    const answer = await http.call({
      method: 'POST',
      api: TOKEN_API,
      body: { grant_type: 'client_credential', appid, secret, force_refresh: false },
      ...(signal === undefined ? {} : { signal }),
    });
    const value = answer['access_token'];
    const expiresIn = answer['expires_in'];
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TOKEN_LENGTH || !TOKEN_SHAPE.test(value)) {
      throw badAnswer(TOKEN_API, 'access_token is missing or not a plausible token');
    }
    if (typeof expiresIn !== 'number' || !Number.isInteger(expiresIn) || expiresIn <= 0 || expiresIn > 86_400) {
      throw badAnswer(TOKEN_API, 'expires_in is missing or not a positive number of seconds');
    }
    const lifeMs = expiresIn * 1000;
    // A token with less than the margin left (stable_token never returns one, §1.2) is used for half its
    // life rather than refetched on every call.
    const usableMs = lifeMs > this.marginMs ? lifeMs - this.marginMs : lifeMs / 2;
    const token = { value, refreshAt: asked + usableMs };
    this.cached = token;
    this.logger.debug({ expiresIn }, 'access token fetched');
    return token;
  }
}
