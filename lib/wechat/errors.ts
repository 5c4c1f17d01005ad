/**
 * WeChat errcodes mapped onto wxsync's error codes (wechat-protocol.md §1.3, §7.1). Callers branch on
 * `code` and `retriable`; `details` carries `errcode`, `errmsg` and `api` (the path, never the query, so
 * no access_token and no secret ever lands in an error or a log line).
 */
import { ErrorCode, WxsyncError } from '../errors.ts';

export const TOKEN_API = '/cgi-bin/stable_token';

/** The three codes after which a client refreshes the token once and retries once (§1.3). */
export const TOKEN_ERRCODES: ReadonlySet<number> = new Set([40001, 40014, 42001]);

/** Stop codes: the account lacks a permission or is blocked; retrying changes nothing today. */
const FORBIDDEN: ReadonlySet<number> = new Set([
  48001, // api unauthorized for this account type
  40164, // calling IP not in the API IP whitelist
  40243, // AppSecret frozen
  50001, // user has not authorized this API
  50002, // user restricted / API banned
  89503, // call waits for an admin's confirmation (risky IP)
]);

/** Our request (or configuration) is wrong: fix it, do not retry it. */
const REQUEST_INVALID: ReadonlySet<number> = new Set([
  40002, // grant_type
  40003, // invalid openid
  40013, // invalid appid
  40032, // invalid openid list size
  40066, // invalid url
  40125, // invalid appsecret
  41001, // access_token missing
  41002, // appid missing
  41004, // appsecret missing
  41009, // openid missing
  43001, // require GET
  43002, // require POST
  44002, // empty post data
  47001, // data format error
  61500, // datacube: date format error
  61501, // datacube: date range error (over 7 days, reversed, today or later)
  76021, // cgi_path not found
  76022, // token and appid mismatch
]);

/** Long WeChat messages are cut: an errmsg is for humans and must not bloat logs or Kafka records. */
const ERRMSG_MAX = 300;

/**
 * The typed error for a non-zero errcode of `api`. On the token endpoint 40001 means a wrong AppSecret,
 * a configuration error, not a stale token (§7.1).
 */
export function wechatError(api: string, errcode: number, errmsg: string): WxsyncError {
  const msg = errmsg.length > ERRMSG_MAX ? `${errmsg.slice(0, ERRMSG_MAX)}…` : errmsg;
  const details = { api, errcode, errmsg: msg };
  const message = `${api} answered errcode ${errcode}: ${msg}`;
  const [code, retriable] = classify(api, errcode);
  return new WxsyncError(code, message, { retriable, details });
}

function classify(api: string, errcode: number): [ErrorCode, boolean] {
  if (errcode === -1) return [ErrorCode.WechatBusy, true];
  if (errcode === 45011) return [ErrorCode.WechatRateLimited, true];
  if (errcode === 45009) return [ErrorCode.WechatQuotaExhausted, false];
  if (TOKEN_ERRCODES.has(errcode)) {
    return api === TOKEN_API || api === '/cgi-bin/token' ? [ErrorCode.WechatRequestInvalid, false] : [ErrorCode.WechatTokenInvalid, false];
  }
  if (FORBIDDEN.has(errcode)) return [ErrorCode.WechatForbidden, false];
  if (REQUEST_INVALID.has(errcode)) return [ErrorCode.WechatRequestInvalid, false];
  return [ErrorCode.WechatApiError, false];
}

/** An answer we cannot trust: not JSON, the wrong shape, too big. Never retried: the same call gives the same answer. */
export function badAnswer(api: string, reason: string, details: Readonly<Record<string, unknown>> = {}): WxsyncError {
  return new WxsyncError(ErrorCode.WechatBadAnswer, `${api} gave a malformed answer: ${reason}`, {
    details: { api, reason, ...details },
  });
}

/** No answer at all (connection, timeout, gateway 5xx): worth another attempt. */
export function unreachable(api: string, reason: string, details: Readonly<Record<string, unknown>> = {}): WxsyncError {
  return new WxsyncError(ErrorCode.WechatUnreachable, `${api} unreachable: ${reason}`, {
    retriable: true,
    details: { api, reason, ...details },
  });
}

/** The same error with more details (the pager adds the resume cursor), keeping code, retriable and message. */
export function withDetails(error: WxsyncError, details: Readonly<Record<string, unknown>>): WxsyncError {
  return new WxsyncError(error.code, error.message, {
    retriable: error.retriable,
    cause: error.cause,
    details: { ...error.details, ...details },
  });
}
