/**
 * wxsync's two HTTP listeners.
 * - The public one (PORT) faces the internet because WeChat must reach it: it serves the routes the roles
 *   make public (the callback role's `/wechat/`) and bare `/healthz` and `/readyz` (a status code, an empty
 *   body), and answers everything else 404 with an empty body: it tells a stranger nothing.
 * - The admin one (127.0.0.1 by default) serves the API, /metrics and detailed health, and answers 401 to
 *   every request, on every path, that does not carry the admin token as a bearer credential, so nothing,
 *   not even which paths or accounts exist, is learnt without it. The one exception is the dashboard's sign-in
 *   page (`publicPage`): fixed, holding nothing but the script that sends the token the browser was given.
 *   State-changing requests from a browser page of another site are refused as well (a bearer header cannot be
 *   sent cross-site without CORS, which is never granted; the Origin / Sec-Fetch-Site check says so explicitly).
 * Both are hardened alike: header and request timeouts, a keep-alive timeout, a connection cap, and a cap on
 * every request body.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { bearerMatches } from './admin.ts';
import { ErrorCode, isWxsyncError, WxsyncError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { Registry } from './metrics.ts';

export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
export type Routes = ReadonlyArray<readonly [prefix: string, handler: RouteHandler]>;

export interface HttpLimits {
  /** Connections kept at once; more are refused until one ends. */
  readonly maxConnections: number;
  /** Bodies of routes that do not read their own (the callback route caps its own) larger than this are refused. */
  readonly bodyMaxBytes: number;
}

/** The whole request, headers included, must arrive within this: a slow-loris client is cut off. */
const REQUEST_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 5_000;
/** Longer than a load balancer's usual idle timeout (60 s), so the balancer, not wxsync, closes first. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** A response that takes longer (a reconcile waiting for the consumer) keeps its socket this long at most. */
const ADMIN_SOCKET_TIMEOUT_MS = 30 * 60_000;
const HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

export interface RunningHttpServer {
  readonly port: number;
  /**
   * Stops accepting connections, lets requests in flight finish (idle keep-alive connections are closed at
   * once), and resolves when every connection has ended or `graceMs` has passed, when the rest are cut.
   */
  close(graceMs?: number): Promise<void>;
}

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { ...HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** A status and nothing more: what the public listener answers anything but its routes with. */
function bare(res: http.ServerResponse, status: number): void {
  res.writeHead(status, { ...HEADERS, 'content-length': 0 });
  res.end();
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, `${JSON.stringify(body)}\n`, 'application/json');
}

/**
 * What an API route answers for a failure: a WxsyncError's code and message (written for the operator), and
 * for anything else a fixed text, never an internal error's own message or stack.
 */
export function errorAnswer(error: unknown): { readonly error: string; readonly code: string } {
  return isWxsyncError(error) ? { error: error.message, code: error.code } : { error: 'internal error (see the log of wxsync run)', code: 'INTERNAL' };
}

/**
 * The account and query of `<method> <prefix><appid>[?query]` (an API route of a role), or undefined once the
 * request was answered 404 (another path, an account not configured) or 405 (another method).
 */
export function routedAccount(
  req: http.IncomingMessage, res: http.ServerResponse, prefix: string, accounts: ReadonlySet<string>, method: 'GET' | 'POST',
): { readonly appid: string; readonly query: URLSearchParams } | undefined {
  const url = req.url ?? '';
  const match = url.startsWith(prefix) ? /^([A-Za-z0-9_-]{1,64})(?:\?(.*))?$/.exec(url.slice(prefix.length)) : null;
  if (match === null || req.method !== method) {
    sendJson(res, match === null ? 404 : 405, { error: match === null ? 'not found' : `use ${method}` });
    return undefined;
  }
  const appid = match[1] ?? '';
  if (!accounts.has(appid)) {
    sendJson(res, 404, { error: `unknown account ${appid}` });
    return undefined;
  }
  return { appid, query: new URLSearchParams(match[2] ?? '') };
}

/** routedAccount for a state-changing route. */
export function postedAccount(
  req: http.IncomingMessage, res: http.ServerResponse, prefix: string, accounts: ReadonlySet<string>,
): { readonly appid: string; readonly query: URLSearchParams } | undefined {
  return routedAccount(req, res, prefix, accounts, 'POST');
}

/** The path without its query, for matching: never a decoded or normalised form a route did not ask for. */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** Refuses a body larger than `max` (declared or streamed) with 413 before any route sees it; true if refused. */
function bodyTooLarge(req: http.IncomingMessage, res: http.ServerResponse, max: number): boolean {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (Number.isFinite(declared) && declared <= max && req.headers['transfer-encoding'] === undefined) return false;
  if (Number.isFinite(declared) && declared > max) {
    res.setHeader('connection', 'close');
    bare(res, 413);
    req.resume();
    return true;
  }
  // A chunked body: count as it streams, and cut the connection once it passes the cap.
  let seen = 0;
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > max && !res.headersSent) {
      res.setHeader('connection', 'close');
      bare(res, 413);
      req.destroy();
    }
  });
  return false;
}

async function listen(
  name: string, handler: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>,
  options: { readonly port: number; readonly host: string; readonly limits: HttpLimits; readonly socketTimeoutMs: number; readonly logger: Logger },
): Promise<RunningHttpServer> {
  const inFlight = new Set<http.ServerResponse>();
  let closing = false;
  const server = http.createServer({
    requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS, maxHeaderSize: 16 * 1024,
    // How often the two timeouts above are enforced (30 s by default: a slow-loris client would hold on that long).
    connectionsCheckingInterval: 1000,
  }, (req, res) => {
    // Once closing, a response ends its connection, so a keep-alive client cannot hold the listener open.
    if (closing) res.setHeader('connection', 'close');
    inFlight.add(res);
    res.once('close', () => { inFlight.delete(res); });
    handler(req, res).catch((error: unknown) => {
      // Logged without the URL's query, which may carry signatures; answered without the error.
      options.logger.error({ err: error, listener: name, method: req.method, path: pathOf(req.url ?? '/').slice(0, 200) }, 'request failed');
      if (!res.headersSent) bare(res, 500);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.maxConnections = options.limits.maxConnections;
  server.timeout = options.socketTimeoutMs;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => { sockets.delete(socket); });
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    // A malformed request or oversized headers: one bare 400, then the connection goes. A timeout is a 408: it also
    // ends connections a browser opened ahead of need and left idle, and a browser resends a request that meets a
    // 408 on such a connection (a 400 would fail it).
    const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: (graceMs = 10_000) => new Promise<void>((resolve) => {
      closing = true;
      for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
      const cut = setTimeout(() => { for (const socket of sockets) socket.destroy(); }, graceMs);
      server.close(() => { clearTimeout(cut); resolve(); });
      server.closeIdleConnections();
    }),
  };
}

export interface PublicServerOptions {
  readonly port: number;
  readonly host?: string;
  /** Ready means every role can take work; /healthz only says the process answers. */
  readonly ready: () => boolean;
  /** The routes the roles make public: WeChat's `/wechat/`, nothing else. */
  readonly routes: Routes;
  readonly limits: HttpLimits;
  readonly logger: Logger;
}

export async function startPublicServer(options: PublicServerOptions): Promise<RunningHttpServer> {
  return listen('public', async (req, res) => {
    const url = req.url ?? '/';
    const route = options.routes.find(([prefix]) => url.startsWith(prefix));
    if (route !== undefined) {
      await route[1](req, res);
      return;
    }
    if (bodyTooLarge(req, res, options.limits.bodyMaxBytes)) return;
    const path = pathOf(url);
    const probe = req.method === 'GET' || req.method === 'HEAD';
    if (probe && path === '/healthz') bare(res, 200);
    else if (probe && path === '/readyz') bare(res, options.ready() ? 200 : 503);
    else bare(res, 404);
  }, { port: options.port, host: options.host ?? '0.0.0.0', limits: options.limits, socketTimeoutMs: KEEP_ALIVE_TIMEOUT_MS + 5000, logger: options.logger });
}

export interface AdminServerOptions {
  readonly port: number;
  readonly host: string;
  readonly token: string;
  readonly registry: Registry;
  /** The detailed /readyz: 200 when `ready`, else 503, with everything checked as JSON. */
  readonly readiness: () => Promise<{ readonly ready: boolean } & Readonly<Record<string, unknown>>>;
  readonly routes: Routes;
  readonly limits: HttpLimits;
  readonly logger: Logger;
  /**
   * A page served at `path` to GET and HEAD without the token, because a browser opening an address cannot send a
   * bearer header: the dashboard's sign-in page (dashboard/sign-in.ts). It must be the same for everyone and reveal
   * nothing of this installation.
   */
  readonly publicPage?: { readonly path: string; readonly html: string; readonly headers: Readonly<Record<string, string>> };
}

/** A request a browser sends on behalf of a page of another site (or of no site it can name). */
function crossSite(req: http.IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

export async function startAdminServer(options: AdminServerOptions): Promise<RunningHttpServer> {
  return listen('admin', async (req, res) => {
    const page = options.publicPage;
    if (page !== undefined && pathOf(req.url ?? '/') === page.path && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { ...HEADERS, ...page.headers, 'content-length': Buffer.byteLength(page.html) });
      res.end(req.method === 'HEAD' ? undefined : page.html);
      req.resume();
      return;
    }
    if (!bearerMatches(req.headers.authorization, options.token)) {
      res.setHeader('www-authenticate', 'Bearer realm="wxsync"');
      send(res, 401, 'unauthorized: send the admin token as "Authorization: Bearer <token>" (WXSYNC_ADMIN_TOKEN or the admin-token file in the data directory)\n');
      req.resume();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD' && crossSite(req)) {
      send(res, 403, 'cross-site requests may not change anything\n');
      req.resume();
      return;
    }
    if (bodyTooLarge(req, res, options.limits.bodyMaxBytes)) return;
    const url = req.url ?? '/';
    const route = options.routes.find(([prefix]) => url.startsWith(prefix));
    const path = pathOf(url);
    if (route !== undefined) {
      await route[1](req, res);
    } else if (path === '/healthz') {
      send(res, 200, 'ok\n');
    } else if (path === '/readyz') {
      const health = await options.readiness();
      sendJson(res, health.ready ? 200 : 503, health);
    } else if (path === '/metrics') {
      send(res, 200, await options.registry.metrics(), options.registry.contentType);
    } else {
      send(res, 404, 'not found\n');
    }
  }, { port: options.port, host: options.host, limits: options.limits, socketTimeoutMs: ADMIN_SOCKET_TIMEOUT_MS, logger: options.logger });
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
