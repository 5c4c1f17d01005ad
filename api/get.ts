import type http from 'node:http';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import { sendJson } from '../lib/http-server.ts';

/**
 * The query of `GET <path>[?query]`, or undefined once the request was answered: 404 for another path (a route is
 * matched by prefix, so `/api/statusx` reaches the `/api/status` route), 405 for another method.
 */
export function getQuery(req: http.IncomingMessage, res: http.ServerResponse, path: string): URLSearchParams | undefined {
  const url = req.url ?? '';
  const rest = url.startsWith(path) ? url.slice(path.length) : undefined;
  if (rest === undefined || (rest !== '' && !rest.startsWith('?'))) {
    sendJson(res, 404, { error: 'not found' });
    return undefined;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendJson(res, 405, { error: 'use GET' });
    return undefined;
  }
  return new URLSearchParams(rest.slice(1));
}

/**
 * A count from the query string (`fallback` when absent): digits only, 1 to `max`. Anything else (signs, exponents,
 * spaces, more digits than `max` has) is a usage error naming the parameter and the range.
 */
export function countParam(query: URLSearchParams, name: string, fallback: number, max: number): number {
  const text = query.get(name) ?? String(fallback);
  const value = new RegExp(`^\\d{1,${String(max).length}}$`).test(text) ? Number(text) : NaN;
  if (!(value >= 1 && value <= max)) throw new WxsyncError(ErrorCode.UsageInvalid, `${name} must be a whole number from 1 to ${max}`);
  return value;
}
