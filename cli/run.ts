import { parseArgs } from 'node:util';
import { createClickHouse } from '../lib/clickhouse.ts';
import { loadConfig } from '../lib/config.ts';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import { adminToken, removeAdminEndpoint, writeAdminEndpoint } from '../lib/admin.ts';
import { startAdminServer, startPublicServer } from '../lib/http-server.ts';
import { createKafkaGateway } from '../lib/kafka.ts';
import { createLogger } from '../lib/logger.ts';
import { createRegistry } from '../lib/metrics.ts';
import { migrate } from '../lib/migrate.ts';
import { topicSpecs } from '../lib/topics.ts';
import type { RoleStarter, RunningRole } from '../lib/role.ts';
import { startConsumerRole } from '../consumers/clickhouse/main.ts';
import { startCallbackRole } from '../producers/callback/main.ts';
import { startSnapshotRole } from '../producers/snapshot/main.ts';
import { startReconcileRole } from '../producers/reconcile/main.ts';
import { startApiRole } from '../api/main.ts';

export const summary = 'the main job: all roles in one process (--roles picks some)';

const ROLES: Readonly<Record<string, RoleStarter | undefined>> = {
  consumer: startConsumerRole,
  callback: startCallbackRole,
  snapshot: startSnapshotRole,
  reconcile: startReconcileRole,
  api: startApiRole,
};

export function selectRoles(requested: string | undefined): string[] {
  const available = Object.entries(ROLES).filter(([, start]) => start !== undefined).map(([name]) => name);
  if (requested === undefined) return available;
  const names = requested.split(',').map((r) => r.trim()).filter((r) => r !== '');
  const unknown = names.filter((n) => !(n in ROLES));
  if (unknown.length > 0) throw new WxsyncError(ErrorCode.UsageInvalid, `unknown role(s) ${unknown.join(', ')}; roles are ${Object.keys(ROLES).join(', ')}`);
  const missing = names.filter((n) => ROLES[n] === undefined);
  if (missing.length > 0) throw new WxsyncError(ErrorCode.UsageInvalid, `role(s) ${missing.join(', ')} are not built yet; available: ${available.join(', ')}`);
  if (names.length === 0) throw new WxsyncError(ErrorCode.UsageInvalid, '--roles names no role');
  return names;
}

export async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { roles: { type: 'string' } }, strict: true });
  } catch (error) {
    throw new WxsyncError(ErrorCode.UsageInvalid, (error as Error).message);
  }
  const roleNames = selectRoles(parsed.values.roles);
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const registry = createRegistry();
  const kafka = createKafkaGateway(config.kafka, logger);
  const clickhouse = createClickHouse(config.clickhouse);
  const roles: RunningRole[] = [];
  let shuttingDown = false;

  const stopAll = async (): Promise<void> => {
    for (const role of roles.reverse()) await role.stop();
    await kafka.close();
    await clickhouse.close();
  };

  try {
    await kafka.ensureTopics(topicSpecs(config));
    await migrate(clickhouse, config.clickhouse.database, logger);
    for (const name of roleNames) {
      const start = ROLES[name];
      if (start !== undefined) roles.push(await start({ config, logger, registry, kafka, clickhouse }));
    }
  } catch (error) {
    await stopAll().catch((stopError: unknown) => { logger.error({ err: stopError }, 'cleanup after a failed start failed'); });
    throw error;
  }

  const limits = { maxConnections: config.http.maxConnections, bodyMaxBytes: config.callback.bodyMaxBytes };
  const { admin: adminConfig } = config.http;
  const token = adminToken(adminConfig, true) as string;
  const adminServer = await startAdminServer({
    port: adminConfig.port,
    host: adminConfig.host,
    token,
    registry,
    logger,
    limits,
    readiness: () => Object.fromEntries(roles.map((r) => [r.name, !shuttingDown && r.ready()])),
    routes: roles.flatMap((r) => r.routes ?? []),
  });
  writeAdminEndpoint(adminConfig, { host: adminConfig.host, port: adminServer.port, pid: process.pid });
  const publicServer = await startPublicServer({
    port: config.http.port,
    logger,
    limits,
    ready: () => !shuttingDown && roles.every((r) => r.ready()),
    routes: roles.flatMap((r) => r.publicRoutes ?? []),
  });
  logger.info({ roles: roleNames, port: publicServer.port, admin: `${adminConfig.host}:${adminServer.port}` }, 'wxsync running');

  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (shuttingDown) return;
      shuttingDown = true;
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  // Stop taking pushes first and let those in flight finish (answered success once published or spooled),
  // then stop the roles, which drain what they hold, then the admin listener.
  await publicServer.close();
  await stopAll();
  removeAdminEndpoint(adminConfig);
  await adminServer.close(1000);
  logger.info('stopped');
  return 0;
}
