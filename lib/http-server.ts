import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.ts';
import type { Registry } from './metrics.ts';

export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

export interface HttpServerOptions {
  readonly port: number;
  readonly host?: string;
  readonly registry: Registry;
  /** Ready means every role has connected and can take work; /healthz only says the process answers. */
  readonly ready: () => boolean;
  /** Extra routes by path prefix (the callback role adds /wechat/). */
  readonly routes?: ReadonlyArray<readonly [prefix: string, handler: RouteHandler]>;
  readonly logger: Logger;
}

export interface RunningHttpServer {
  readonly port: number;
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, `${JSON.stringify(body)}\n`, 'application/json');
}

/**
 * The account and query of `POST <prefix><appid>[?query]` (an API route of a role), or undefined once the
 * request was answered 404 (another path, an account not configured) or 405 (another method).
 */
export function postedAccount(
  req: http.IncomingMessage, res: http.ServerResponse, prefix: string, accounts: ReadonlySet<string>,
): { readonly appid: string; readonly query: URLSearchParams } | undefined {
  const url = req.url ?? '';
  const match = url.startsWith(prefix) ? /^([A-Za-z0-9_-]{1,64})(?:\?(.*))?$/.exec(url.slice(prefix.length)) : null;
  if (match === null || req.method !== 'POST') {
    sendJson(res, match === null ? 404 : 405, { error: match === null ? 'not found' : 'use POST' });
    return undefined;
  }
  const appid = match[1] ?? '';
  if (!accounts.has(appid)) {
    sendJson(res, 404, { error: `unknown account ${appid}` });
    return undefined;
  }
  return { appid, query: new URLSearchParams(match[2] ?? '') };
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const handle = async (): Promise<void> => {
      const route = options.routes?.find(([prefix]) => url.startsWith(prefix));
      if (route !== undefined) {
        await route[1](req, res);
      } else if (url === '/healthz') {
        send(res, 200, 'ok\n');
      } else if (url === '/readyz') {
        if (options.ready()) send(res, 200, 'ready\n');
        else send(res, 503, 'not ready\n');
      } else if (url === '/metrics') {
        send(res, 200, await options.registry.metrics(), options.registry.contentType);
      } else {
        send(res, 404, 'not found\n');
      }
    };
    handle().catch((error: unknown) => {
      options.logger.error({ err: error, url }, 'request failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => { resolve(); });
      server.closeIdleConnections();
    }),
  };
}
