import { startAdminServer, type AdminServerOptions, type RunningHttpServer, type Routes } from '../../lib/http-server.ts';
import { silentLogger } from '../../lib/logger.ts';
import { createRegistry } from '../../lib/metrics.ts';

export const TOKEN = 'dashboard-test-token-0123456789abcdef0123';

export interface AdminServer {
  readonly base: string;
  /** fetch with the token. */
  get(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

/** An admin listener on a free port serving `routes` (and `publicPage`), as `wxsync run` starts it. */
export async function adminServer(routes: Routes, publicPage?: AdminServerOptions['publicPage']): Promise<AdminServer> {
  const server: RunningHttpServer = await startAdminServer({
    port: 0, host: '127.0.0.1', token: TOKEN, registry: createRegistry(), logger: silentLogger(), limits: { maxConnections: 20, bodyMaxBytes: 1024 },
    readiness: () => Promise.resolve({ ready: true }), routes, ...(publicPage === undefined ? {} : { publicPage }),
  });
  const base = `http://127.0.0.1:${server.port}`;
  return {
    base,
    get: (path, init = {}) => fetch(`${base}${path}`, { ...init, headers: { ...Object.fromEntries(new Headers(init.headers).entries()), authorization: `Bearer ${TOKEN}` } }),
    close: () => server.close(100),
  };
}
