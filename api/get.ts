import type http from 'node:http';
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
