import { beijingDay } from '../lib/wechat/datacube.ts';
import { deriveChars } from './random.ts';

/**
 * Access tokens as WeChat hands them out (wechat-protocol.md §1): /cgi-bin/token issues a new token on
 * every call and lets the previous one live 5 more minutes; /cgi-bin/stable_token returns the same token
 * until 5 minutes before it expires; the two never invalidate each other.
 */

export const TOKEN_LIFETIME_SECONDS = 7200;
export const OVERLAP_SECONDS = 300;
export const FORCE_REFRESH_PER_DAY = 20;
export const FORCE_REFRESH_SPACING_SECONDS = 30;

const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{1,512}$/;
/** Dead tokens are remembered this long so a late caller still gets 42001/40001 rather than a generic answer. */
const REMEMBER_SECONDS = 86_400;

export type TokenKind = 'token' | 'stable';

interface TokenRecord {
  readonly value: string;
  readonly appid: string;
  readonly kind: TokenKind;
  expiresAt: number;
  /** When a newer token made this one invalid (Infinity while it is the newest). */
  deadAt: number;
}

interface AccountTokens {
  classic: TokenRecord | undefined;
  stable: TokenRecord | undefined;
  lastForceAt: number | undefined;
  forceDay: number;
  forceCount: number;
}

export interface IssuedToken {
  readonly accessToken: string;
  readonly expiresIn: number;
}

/** 0 when valid; otherwise the errcode WeChat answers (§1.3). */
export type TokenVerdict =
  | { readonly errcode: 0; readonly appid: string }
  | { readonly errcode: 40001 | 40014 | 41001 | 42001; readonly appid: string | undefined };

export class TokenAuthority {
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly accounts = new Map<string, AccountTokens>();
  private serial = 0;

  constructor(private readonly seed: number) {}

  /** GET /cgi-bin/token: always a new token; the previous one dies 5 minutes from now at the latest. */
  issue(appid: string, now: number): IssuedToken {
    const account = this.account(appid);
    const previous = account.classic;
    if (previous !== undefined) previous.deadAt = Math.min(previous.deadAt, now + OVERLAP_SECONDS);
    account.classic = this.mint(appid, 'token', now);
    return { accessToken: account.classic.value, expiresIn: TOKEN_LIFETIME_SECONDS };
  }

  /**
   * POST /cgi-bin/stable_token. Normal mode returns the live token while it has more than 5 minutes left,
   * else a new one (the old one lives out its time). Force mode kills the live token at once, at most 20
   * times a day; a forced call within 30 s of the last one refreshes nothing. Undefined: force quota spent.
   */
  stable(appid: string, now: number, force: boolean): IssuedToken | undefined {
    const account = this.account(appid);
    const current = account.stable;
    const live = current !== undefined && now < current.expiresAt && now < current.deadAt ? current : undefined;
    const spaced = account.lastForceAt === undefined || now - account.lastForceAt >= FORCE_REFRESH_SPACING_SECONDS;
    if (force && spaced) {
      const day = beijingDay(now);
      if (account.forceDay !== day) {
        account.forceDay = day;
        account.forceCount = 0;
      }
      if (account.forceCount >= FORCE_REFRESH_PER_DAY) return undefined;
      account.forceCount += 1;
      account.lastForceAt = now;
      if (live !== undefined) live.deadAt = now;
      account.stable = this.mint(appid, 'stable', now);
    } else if (live === undefined || live.expiresAt - now <= OVERLAP_SECONDS) {
      account.stable = this.mint(appid, 'stable', now);
    }
    const token = account.stable as TokenRecord;
    return { accessToken: token.value, expiresIn: token.expiresAt - now };
  }

  verify(value: string | null, now: number): TokenVerdict {
    if (value === null || value === '') return { errcode: 41001, appid: undefined };
    if (!TOKEN_SHAPE.test(value)) return { errcode: 40014, appid: undefined };
    const record = this.tokens.get(value);
    if (record === undefined) return { errcode: 40001, appid: undefined };
    if (now >= record.deadAt && record.deadAt < record.expiresAt) return { errcode: 40001, appid: record.appid };
    if (now >= record.expiresAt) return { errcode: 42001, appid: record.appid };
    return { errcode: 0, appid: record.appid };
  }

  /** Makes every token of the account expire now (the admin "expire-tokens"); returns how many were live. */
  expireAll(appid: string, now: number): number {
    let expired = 0;
    for (const record of this.tokens.values()) {
      if (record.appid === appid && now < record.expiresAt && now < record.deadAt) {
        record.expiresAt = now;
        expired += 1;
      }
    }
    return expired;
  }

  private mint(appid: string, kind: TokenKind, now: number): TokenRecord {
    this.serial += 1;
    if (this.serial % 256 === 0) this.forget(now);
    // Real tokens are ~136 characters of [A-Za-z0-9_-] after a short numeric prefix.
    const value = `${86 + (this.serial % 10)}_${deriveChars(TOKEN_ALPHABET, 133, 'access-token', this.seed, appid, kind, this.serial)}`;
    const record: TokenRecord = { value, appid, kind, expiresAt: now + TOKEN_LIFETIME_SECONDS, deadAt: Infinity };
    this.tokens.set(value, record);
    return record;
  }

  private forget(now: number): void {
    for (const [value, record] of this.tokens) {
      if (Math.min(record.expiresAt, record.deadAt) + REMEMBER_SECONDS < now) this.tokens.delete(value);
    }
  }

  private account(appid: string): AccountTokens {
    let account = this.accounts.get(appid);
    if (account === undefined) {
      account = { classic: undefined, stable: undefined, lastForceAt: undefined, forceDay: -1, forceCount: 0 };
      this.accounts.set(appid, account);
    }
    return account;
  }
}
