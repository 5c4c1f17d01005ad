import http from 'node:http';
import { adminToken, readAdminEndpoint } from './admin.ts';
import type { Config } from './config.ts';
import { ErrorCode, WxsyncError } from './errors.ts';

export interface ApiAnswer {
  readonly status: number;
  readonly body: http.IncomingMessage;
}

/**
 * A request to the admin listener of the `wxsync run` on this machine, found through the endpoint file it
 * writes into the data directory and authenticated with the admin token; undefined when no run listens, in
 * which case the command may open the store itself. node:http rather than fetch: a reconcile may wait minutes
 * for the consumer, longer than fetch's header timeout.
 */
export function requestRunning(config: Config, method: 'GET' | 'POST', path: string): Promise<ApiAnswer | undefined> {
  const admin = config.http.admin;
  const endpoint = readAdminEndpoint(admin);
  const token = adminToken(admin, false);
  if (endpoint === undefined || token === undefined) return Promise.resolve(undefined);
  const host = endpoint.host === '0.0.0.0' ? '127.0.0.1' : endpoint.host === '::' ? '::1' : endpoint.host;
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port: endpoint.port, method, path, headers: { authorization: `Bearer ${token}` } }, (res) => {
      resolve({ status: res.statusCode ?? 0, body: res });
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      // A run that died without removing its endpoint file: nothing listens.
      if (error.code === 'ECONNREFUSED') resolve(undefined);
      else reject(new WxsyncError(ErrorCode.ApiRequestFailed, `cannot reach wxsync run on ${host}:${endpoint.port}: ${error.message}`, { cause: error, retriable: true }));
    });
    req.end();
  });
}

export async function readText(body: http.IncomingMessage): Promise<string> {
  let text = '';
  body.setEncoding('utf8');
  for await (const chunk of body) text += chunk as string;
  return text;
}

/**
 * The error for an answer other than 200. A bare `not found` is the server's own 404: the running process
 * lacks the role that serves the path (`details.missingRole`). Routes answer errors as JSON `{ error, code }`.
 */
export async function answerError(answer: ApiAnswer, role: string): Promise<WxsyncError> {
  const text = (await readText(answer.body)).trim();
  if (answer.status === 404 && text === 'not found') {
    return new WxsyncError(ErrorCode.ApiRequestFailed, `the running wxsync has no ${role} role; start it with the ${role} role`, { details: { missingRole: true } });
  }
  let detail = text;
  try {
    const body = JSON.parse(text) as { error?: unknown; code?: unknown };
    if (typeof body.error === 'string') detail = typeof body.code === 'string' ? `${body.code}: ${body.error}` : body.error;
  } catch {
    // Not JSON: the text itself says it.
  }
  return new WxsyncError(ErrorCode.ApiRequestFailed, `the running wxsync answered ${answer.status}: ${detail}`);
}
