import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RoleStarter } from '../lib/role.ts';
import { historyFor } from '../producers/reconcile/compare.ts';
import { historyRoutes } from '../producers/reconcile/compare-api.ts';
import { WechatClients } from '../lib/wechat/client.ts';
import { dashboardRoutes } from '../dashboard/routes.ts';
import { accountRoutes } from './accounts.ts';
import { datacubeCache } from './datacube-cache.ts';
import { followerLines } from './followers.ts';
import { reconcileRoutes } from './reconciles.ts';
import { reportRoutes } from './reports.ts';
import { retentionRoutes } from './retention.ts';
import { statusRoutes } from './status.ts';

const FOLLOWERS = /^\/api\/followers\/([A-Za-z0-9_-]{1,64})$/;

/**
 * The read side of the store over HTTP, so CLI commands work while `wxsync run` holds the embedded store
 * (⚑ one chDB directory, one process). `GET /api/followers/<appid>`: one openid per line; snapshot history
 * (`/api/snapshots/<appid>`, `/api/compare/<appid>`): see producers/reconcile/compare-api.ts; reports
 * (`/api/report/churn`, `/api/report/campaigns`): see reports.ts; what the dashboard reads besides (`/api/accounts`,
 * `/api/status`, `/api/retention`, `/api/reconciles`): see accounts.ts, status.ts, retention.ts, reconciles.ts; the
 * dashboard's own files: dashboard/routes.ts.
 */
export const startApiRole: RoleStarter = ({ config, clickhouse, kafka, registry, logger }) => {
  const accounts = new Set(config.accounts.map((a) => a.appid));
  // For `report churn --check`: WeChat's datacube, asked only when a report wants it, finished days once.
  const clients = new WechatClients({ apiBase: config.wechatApiBase, accounts: config.accounts, logger });
  const datacube = datacubeCache();
  return Promise.resolve({
    name: 'api',
    routes: [
      ...reportRoutes(config, clickhouse, (appid) => datacube.source(clients.get(appid))),
      ...accountRoutes(config),
      ...statusRoutes({ config, clickhouse, kafka, registry, history: historyFor(config, clickhouse, logger), logger }),
      ...retentionRoutes(config, clickhouse),
      ...reconcileRoutes(config, clickhouse),
      ...dashboardRoutes(),
      ...historyRoutes(historyFor(config, clickhouse, logger), accounts, logger), ['/api/followers/', async (req, res) => {
      const refuse = (status: number, text: string): void => {
        res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${text}\n`);
      };
      const appid = FOLLOWERS.exec(req.url ?? '')?.[1];
      if (req.method !== 'GET') {
        refuse(405, 'use GET');
        return;
      }
      if (appid === undefined || !accounts.has(appid)) {
        refuse(404, appid === undefined ? 'not found' : `unknown account ${appid}`);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      await pipeline(Readable.from(followerLines(clickhouse, config.clickhouse.database, appid)), res);
    }]],
    ready: () => true,
    stop: () => {
      clients.close();
      return Promise.resolve();
    },
  });
};
