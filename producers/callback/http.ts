import type http from 'node:http';
import { describeError } from '../../lib/errors.ts';
import { LogThrottle } from '../../lib/log-throttle.ts';
import type { RouteHandler } from '../../lib/http-server.ts';
import type { Logger } from '../../lib/logger.ts';
import type { EdgeDedupe } from './dedupe.ts';
import { toUserEvent } from './event.ts';
import type { CallbackMetrics } from './metrics.ts';
import { classifyMessage, parseXmlFields } from './parse.ts';
import type { Outcome, PublishedRecord } from './publisher.ts';
import { Rejection, reject } from './rejection.ts';
import { checkCreateTime, checkPushQuery, openEncrypted, verifyUrl, type AccountKeys, type XmlReader } from './verify.ts';

/** The HTTP shell of the callback role: reads the request, runs the pure decisions, answers. */

export interface CallbackHandlerOptions {
  readonly accounts: ReadonlyMap<string, AccountKeys>;
  readonly maxClockSkewMs: number;
  readonly bodyMaxBytes: number;
  readonly publish: (record: PublishedRecord) => Promise<Outcome>;
  readonly dedupe: EdgeDedupe<Outcome>;
  readonly metrics: CallbackMetrics;
  readonly logger: Logger;
  readonly now?: () => number;
  /** parseXmlFields unless a test passes a spy (to show no unauthenticated body reaches it). */
  readonly parseXml?: XmlReader;
}

const PATH = /^\/wechat\/([^/]+)\/?$/;

/**
 * The raw request target → the appid (percent-decoded here, never by the server, which passes paths on as
 * received) and the query. Malformed percent-encoding and any other shape are a refusal, never a throw.
 */
export function readTarget(target: string): { readonly appid: string; readonly query: URLSearchParams } | Rejection {
  const q = target.indexOf('?');
  const encoded = PATH.exec(q < 0 ? target : target.slice(0, q))?.[1];
  if (encoded === undefined) return reject('bad_path');
  let appid: string;
  try {
    appid = decodeURIComponent(encoded);
  } catch {
    return reject('bad_path');
  }
  // URLSearchParams never throws: a malformed escape in the query stays as it is and fails the signature.
  return { appid, query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)) };
}

function answer(res: http.ServerResponse, status: number, body: string, close = false): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
}

/** The body, or a rejection once it passes the cap (the rest is not read). */
function readBody(req: http.IncomingMessage, cap: number): Promise<Buffer | Rejection> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > cap) return Promise.resolve(reject('body_too_large'));
  return new Promise((resolve, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > cap) {
        req.removeAllListeners('data');
        req.pause();
        resolve(reject('body_too_large'));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => { resolve(Buffer.concat(chunks)); });
    req.on('error', fail);
  });
}

export function createCallbackHandler(options: CallbackHandlerOptions): RouteHandler {
  const now = options.now ?? Date.now;
  const parse = options.parseXml ?? parseXmlFields;
  const { metrics, logger } = options;
  const unstored = new LogThrottle();

  // Nothing about the request is logged but the reason: its URL carries signature, msg_signature, echostr.
  const refuse = (req: http.IncomingMessage, res: http.ServerResponse, rejection: Rejection): void => {
    metrics.rejected.inc({ reason: rejection.reason });
    logger.debug({ reason: rejection.reason, status: rejection.status }, 'callback refused');
    // An unread body (too large, refused from the query, or not read at all) would otherwise be parsed as the
    // next request.
    const unread = !req.complete;
    answer(res, rejection.status, `${rejection.detail}\n`, unread);
    if (unread) res.once('finish', () => { req.destroy(); });
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const method = req.method ?? '';
    const target = readTarget(req.url ?? '/');
    if (target instanceof Rejection) { refuse(req, res, target); return; }
    const keys = options.accounts.get(target.appid);
    const input = { keys, query: target.query, nowMs: now(), maxClockSkewMs: options.maxClockSkewMs };

    if (method === 'GET') {
      const verified = verifyUrl(input);
      if (verified instanceof Rejection) { refuse(req, res, verified); return; }
      answer(res, 200, verified.echostr);
      return;
    }
    if (method !== 'POST') { refuse(req, res, reject('method')); return; }

    // The account's mode and, in plain mode, the signature are settled before a byte of the body is read.
    const plan = checkPushQuery(input);
    if (plan instanceof Rejection) { refuse(req, res, plan); return; }
    const body = await readBody(req, options.bodyMaxBytes);
    if (body instanceof Rejection) { refuse(req, res, body); return; }
    const text = body.toString('utf8');
    const verified = plan.kind === 'plain' ? { xml: text } : openEncrypted(plan, input, text, parse);
    if (verified instanceof Rejection) { refuse(req, res, verified); return; }
    const fields = parse(verified.xml);
    if (fields instanceof Rejection) { refuse(req, res, fields); return; }
    const message = classifyMessage(fields);
    if (message instanceof Rejection) { refuse(req, res, message); return; }
    const skewed = checkCreateTime(message.createTime, input);
    if (skewed !== undefined) { refuse(req, res, skewed); return; }
    if (message.kind === 'ignored') {
      metrics.ignored.inc({ what: message.what });
      metrics.accepted.inc({ outcome: 'ignored' });
      answer(res, 200, 'success');
      return;
    }
    const encoded = toUserEvent(plan.keys.account.appid, message, now());
    if (encoded instanceof Rejection) { refuse(req, res, encoded); return; }

    try {
      const { outcome, duplicate } = await options.dedupe.once(encoded.event.id, () => options.publish({ id: encoded.event.id, key: encoded.key, value: encoded.value }));
      if (duplicate) metrics.duplicates.inc();
      metrics.accepted.inc({ outcome: duplicate ? 'duplicate' : outcome });
      answer(res, 200, 'success');
    } catch (error) {
      // Neither Kafka nor the spool holds the event: WeChat must try again.
      metrics.unavailable.inc();
      unstored.hit((occurrences) => { logger.error({ err: describeError(error), occurrences }, 'callback not stored: answering 503'); });
      answer(res, 503, 'temporarily unavailable\n');
    }
  };

  return async (req, res) => {
    const method = req.method ?? '';
    metrics.received.inc({ method: method === 'GET' || method === 'POST' ? method : 'other' });
    try {
      await handle(req, res);
    } catch (error) {
      // A bug or a broken connection: logged here without the URL (the server would log its path), and answered
      // with a fixed line, never the error. A client that went away mid-body is no fault of ours: debug only,
      // so a flood of aborted requests cannot flood the log.
      if ((req.destroyed && !req.complete) || (error as NodeJS.ErrnoException).code === 'ECONNRESET') logger.debug({ err: describeError(error) }, 'callback aborted by the client');
      else logger.error({ err: describeError(error) }, 'callback failed');
      if (res.headersSent) res.destroy();
      else answer(res, 500, 'internal error\n', true);
      if (!req.complete) res.once('finish', () => { req.destroy(); });
    }
  };
}
