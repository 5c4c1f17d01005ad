/**
 * The transport to the WeChat API: one axios instance with keep-alive agents, a wall-clock deadline per
 * call, a cap on the answer's size, and JSON parsing that turns anything but a JSON object into a typed
 * WECHAT_BAD_ANSWER. A non-zero `errcode` becomes the typed error of lib/wechat/errors.ts, whatever the
 * HTTP status, because WeChat reports its errors in the body (wechat-protocol.md §0).
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { backoffDelay, sleep } from '../backoff.ts';
import { ErrorCode, WxsyncError, isWxsyncError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { badAnswer, unreachable, wechatError } from './errors.ts';

export type JsonObject = Record<string, unknown>;

export interface WechatHttpOptions {
  /** `config.wechatApiBase`, e.g. https://api.weixin.qq.com (no trailing slash needed). */
  readonly baseUrl: string;
  readonly logger: Logger;
  /** Whole-call deadline: connect, send, and read the last byte. */
  readonly timeoutMs?: number;
  /** A full user/get page is ~310 KB; anything far beyond that is not a WeChat answer. */
  readonly maxResponseBytes?: number;
  /** Sockets per host; more than the callers' concurrency only wastes connections. */
  readonly maxSockets?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
const DEFAULT_MAX_SOCKETS = 16;

export interface WechatRequest {
  readonly method: 'GET' | 'POST';
  /** The path under the base, e.g. /cgi-bin/user/get; it names the API in errors and logs. */
  readonly api: string;
  readonly query?: Readonly<Record<string, string>>;
  /** Sent as JSON (POST only). */
  readonly body?: unknown;
  /** Aborts the call (shutdown); the call then fails with SHUTTING_DOWN. */
  readonly signal?: AbortSignal;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class WechatHttp {
  private readonly axios: AxiosInstance;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;

  constructor(options: WechatHttpOptions) {
    const maxSockets = options.maxSockets ?? DEFAULT_MAX_SOCKETS;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets });
    this.logger = options.logger;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.axios = axios.create({
      baseURL: options.baseUrl.replace(/\/+$/, ''),
      httpAgent: this.httpAgent,
      httpsAgent: this.httpsAgent,
      // The deadline is ours (a signal): axios' own timeout is per socket inactivity, so a slow drip would evade it.
      timeout: 0,
      // The body is read as a stream so the size cap is ours too, checked before anything is buffered.
      responseType: 'stream',
      maxContentLength: -1,
      maxBodyLength: 1024 * 1024,
      // WeChat never redirects, and a 3xx from a proxy or captive portal is not a WeChat answer.
      maxRedirects: 0,
      // The egress IP is whitelisted at WeChat (40164), so where calls leave from must not depend on
      // HTTP_PROXY variables the process happens to inherit.
      proxy: false,
      validateStatus: () => true,
      transformResponse: [(data: unknown) => data],
      headers: { 'user-agent': 'wxsync' },
    });
  }

  /** The answer's JSON object when `errcode` is absent or 0; otherwise throws the typed error. */
  async call(request: WechatRequest): Promise<JsonObject> {
    const { api } = request;
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const signal = request.signal === undefined ? deadline : AbortSignal.any([deadline, request.signal]);
    const started = performance.now();
    let response: AxiosResponse<Readable>;
    let body: Buffer;
    try {
      response = await this.axios.request<Readable>({
        method: request.method,
        url: api,
        ...(request.query === undefined ? {} : { params: request.query }),
        ...(request.method === 'POST'
          ? { data: JSON.stringify(request.body ?? {}), headers: { 'content-type': 'application/json' } }
          : {}),
        signal,
      });
      body = await this.readCapped(api, response);
    } catch (error) {
      throw this.transportError(api, error, deadline, request.signal);
    }
    const ms = Math.round(performance.now() - started);
    const status = response.status;
    const json = parseAnswer(api, body, status);
    const errcode = json['errcode'];
    if (errcode !== undefined && (typeof errcode !== 'number' || !Number.isInteger(errcode))) {
      throw badAnswer(api, 'errcode is not an integer', { status });
    }
    if (errcode !== undefined && errcode !== 0) {
      const errmsg = typeof json['errmsg'] === 'string' ? json['errmsg'] : '';
      this.logger.debug({ api, status, ms, errcode }, 'wechat call failed');
      throw wechatError(api, errcode, errmsg);
    }
    if (status < 200 || status > 299) throw httpStatusError(api, status);
    this.logger.debug({ api, status, ms, bytes: body.length }, 'wechat call');
    return json;
  }

  /** Closes the idle keep-alive sockets so the process can exit. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private async readCapped(api: string, response: AxiosResponse<Readable>): Promise<Buffer> {
    const stream = response.data;
    const declared = Number(response.headers['content-length'] ?? 0);
    if (declared > this.maxResponseBytes) {
      stream.destroy();
      throw badAnswer(api, `answer of ${declared} bytes exceeds the ${this.maxResponseBytes}-byte cap`, { status: response.status });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream) {
      const buffer = chunk as Buffer;
      size += buffer.length;
      if (size > this.maxResponseBytes) {
        stream.destroy();
        throw badAnswer(api, `answer exceeds the ${this.maxResponseBytes}-byte cap`, { status: response.status });
      }
      chunks.push(buffer);
    }
    return Buffer.concat(chunks, size);
  }

  /**
   * Anything thrown before a whole body arrived. The axios error itself is not kept as the cause: it
   * holds the request config, whose query has the access_token and whose body may have the AppSecret.
   */
  private transportError(api: string, error: unknown, deadline: AbortSignal, shutdown: AbortSignal | undefined): WxsyncError {
    if (isWxsyncError(error)) return error;
    if (shutdown?.aborted === true) {
      return new WxsyncError(ErrorCode.ShuttingDown, `${api} call aborted: shutting down`, { details: { api } });
    }
    if (deadline.aborted) return unreachable(api, `no complete answer within ${this.timeoutMs} ms`, { timeoutMs: this.timeoutMs });
    const code = (error as { code?: unknown }).code;
    const message = error instanceof Error ? error.message : String(error);
    return unreachable(api, message, typeof code === 'string' ? { networkCode: code } : {});
  }
}

function httpStatusError(api: string, status: number): WxsyncError {
  // Gateways in front of WeChat answer 5xx/429 while it recovers; any other status is not a WeChat answer.
  if (status >= 500 || status === 429 || status === 408) return unreachable(api, `HTTP ${status}`, { status });
  return badAnswer(api, `HTTP ${status}`, { status });
}

/**
 * The body as a JSON object. A non-2xx answer that is not a WeChat error object is reported by its
 * status (a gateway's HTML 502 page is an outage, not a malformed WeChat answer).
 */
function parseAnswer(api: string, body: Buffer, status: number): JsonObject {
  const ok = status >= 200 && status <= 299;
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    if (!ok) throw httpStatusError(api, status);
    throw badAnswer(api, 'answer is not UTF-8', { status });
  }
  const parsed = parseJson(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    if (!ok) throw httpStatusError(api, status);
    const what = parsed === undefined ? 'not JSON' : 'not a JSON object';
    throw badAnswer(api, `answer is ${what}: ${JSON.stringify(text.slice(0, 80))}`, { status });
  }
  return parsed as JsonObject;
}

/** The parsed value, or undefined when the text is not JSON even after the control-character repair. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // WeChat has sent raw control characters inside strings (a remark, say): co-wechat-api escapes them
    // before parsing (wechat-protocol.md §0), and so do we, but only inside string literals.
    const repaired = escapeControlCharsInStrings(text);
    if (repaired === text) return undefined;
    try {
      return JSON.parse(repaired);
    } catch {
      return undefined;
    }
  }
}

function escapeControlCharsInStrings(text: string): string {
  let out = '';
  let from = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (!inString) {
      if (c === 0x22) inString = true;
    } else if (c === 0x5c) {
      i += 1;
    } else if (c === 0x22) {
      inString = false;
    } else if (c < 0x20) {
      out += `${text.slice(from, i)}\\u${c.toString(16).padStart(4, '0')}`;
      from = i + 1;
    }
  }
  return out + text.slice(from);
}

export interface RetryPolicy {
  /** Calls in all, the first included (WxJava: 1 + 5 retries on -1). */
  readonly attempts: number;
  /** Backoff after -1 and network failures. */
  readonly initialMs: number;
  readonly maxMs: number;
  /** Backoff after 45011, the per-minute limit: it lifts only with the next minute, so it starts longer. */
  readonly rateLimitedInitialMs: number;
  readonly rateLimitedMaxMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 6,
  initialMs: 1000,
  maxMs: 16_000,
  rateLimitedInitialMs: 15_000,
  rateLimitedMaxMs: 60_000,
};

export interface RetryContext {
  readonly policy: RetryPolicy;
  readonly logger: Logger;
  readonly api: string;
  readonly signal?: AbortSignal | undefined;
  readonly random?: (() => number) | undefined;
}

/**
 * Runs `call` until it succeeds, fails with a non-retriable error, or spends the policy's attempts. The
 * last error is thrown as is (still retriable: a later run of the job may succeed), with `attempts` added.
 */
export async function withRetries<T>(context: RetryContext, call: () => Promise<T>): Promise<T> {
  const { policy, logger, api, signal, random } = context;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      if (!isWxsyncError(error) || !error.retriable) throw error;
      if (attempt >= policy.attempts) {
        throw new WxsyncError(error.code, `${error.message} (gave up after ${attempt} attempts)`, {
          retriable: true,
          cause: error.cause,
          details: { ...error.details, attempts: attempt },
        });
      }
      const delayMs = error.code === ErrorCode.WechatRateLimited
        ? backoffDelay(attempt - 1, policy.rateLimitedInitialMs, policy.rateLimitedMaxMs, random)
        : backoffDelay(attempt - 1, policy.initialMs, policy.maxMs, random);
      logger.warn({ api, code: error.code, errcode: error.details['errcode'], attempt, delayMs }, 'wechat call failed, retrying');
      await sleep(delayMs, signal);
      if (signal?.aborted === true) {
        throw new WxsyncError(ErrorCode.ShuttingDown, `${api} retry abandoned: shutting down`, { cause: error, details: { api } });
      }
    }
  }
}
