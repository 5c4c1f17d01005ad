import http from 'node:http';
import { ErrorCode, WxsyncError } from './errors.ts';

export interface ApiAnswer {
  readonly status: number;
  readonly body: http.IncomingMessage;
}

/**
 * A request to the `wxsync run` on this machine (its PORT), or undefined when nothing listens there, in
 * which case the command may open the store itself. node:http rather than fetch: a reconcile may wait
 * minutes for the consumer, longer than fetch's header timeout.
 */
export function requestRunning(port: number, method: 'GET' | 'POST', path: string): Promise<ApiAnswer | undefined> {
  if (port === 0) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path }, (res) => { resolve({ status: res.statusCode ?? 0, body: res }); });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') resolve(undefined);
      else reject(new WxsyncError(ErrorCode.ApiRequestFailed, `cannot reach wxsync run on port ${port}: ${error.message}`, { cause: error, retriable: true }));
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
