import type http from 'node:http';
import { describeError } from '../../lib/errors.ts';
import type { RouteHandler } from '../../lib/http-server.ts';
import type { Logger } from '../../lib/logger.ts';
import type { EdgeDedupe } from './dedupe.ts';
import { toUserEvent } from './event.ts';
import type { CallbackMetrics } from './metrics.ts';
import { classifyMessage, parseXmlFields } from './parse.ts';
import type { Outcome, PublishedRecord } from './publisher.ts';
import { Rejection, reject } from './rejection.ts';
import { verifyPush, verifyUrl, type AccountKeys } from './verify.ts';

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
}

const PATH = /^\/wechat\/([^/]+)\/?$/;

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
  const tooLarge = reject(413, 'body_too_large', `the body is larger than ${cap} bytes`);
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > cap) return Promise.resolve(tooLarge);
  return new Promise((resolve, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > cap) {
        req.removeAllListeners('data');
        req.pause();
        resolve(tooLarge);
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
  const { metrics } = options;

  const refuse = (req: http.IncomingMessage, res: http.ServerResponse, rejection: Rejection): void => {
    metrics.rejected.inc({ reason: rejection.reason });
    options.logger.debug({ reason: rejection.reason, status: rejection.status }, 'callback refused');
    // An unread body (too large, or not read at all) would otherwise be parsed as the next request.
    const unread = !req.complete;
    answer(res, rejection.status, `${rejection.detail}\n`, unread);
    if (unread) res.once('finish', () => { req.destroy(); });
  };

  return async (req, res) => {
    const method = req.method ?? '';
    metrics.received.inc({ method: method === 'GET' || method === 'POST' ? method : 'other' });
    const url = new URL(req.url ?? '/', 'http://callback.invalid');
    const appid = PATH.exec(url.pathname)?.[1];
    const keys = appid === undefined ? undefined : options.accounts.get(decodeURIComponent(appid));
    const input = { keys, query: url.searchParams, nowMs: now(), maxClockSkewMs: options.maxClockSkewMs };

    if (method === 'GET') {
      const verified = verifyUrl(input);
      if (verified instanceof Rejection) { refuse(req, res, verified); return; }
      answer(res, 200, verified.echostr);
      return;
    }
    if (method !== 'POST') { refuse(req, res, reject(405, 'method', 'only GET and POST are served here')); return; }
    if (keys === undefined) { refuse(req, res, reject(404, 'unknown_appid', 'no account with this appid is configured')); return; }

    const body = await readBody(req, options.bodyMaxBytes);
    if (body instanceof Rejection) { refuse(req, res, body); return; }
    const verified = verifyPush(input, body.toString('utf8'));
    if (verified instanceof Rejection) { refuse(req, res, verified); return; }
    const fields = parseXmlFields(verified.xml);
    if (fields instanceof Rejection) { refuse(req, res, fields); return; }
    const message = classifyMessage(fields);
    if (message instanceof Rejection) { refuse(req, res, message); return; }
    if (message.kind === 'ignored') {
      metrics.ignored.inc({ what: message.what });
      metrics.accepted.inc({ outcome: 'ignored' });
      answer(res, 200, 'success');
      return;
    }
    const encoded = toUserEvent(keys.account.appid, message, now());
    if (encoded instanceof Rejection) { refuse(req, res, encoded); return; }

    try {
      const { outcome, duplicate } = await options.dedupe.once(encoded.event.id, () => options.publish({ id: encoded.event.id, key: encoded.key, value: encoded.value }));
      if (duplicate) metrics.duplicates.inc();
      metrics.accepted.inc({ outcome: duplicate ? 'duplicate' : outcome });
      answer(res, 200, 'success');
    } catch (error) {
      // Neither Kafka nor the spool holds the event: WeChat must try again.
      metrics.unavailable.inc();
      options.logger.error({ err: describeError(error) }, 'callback not stored: answering 503');
      answer(res, 503, 'temporarily unavailable\n');
    }
  };
}
