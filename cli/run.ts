import { parseArgs } from 'node:util';
import { createClickHouse, storeWritable } from '../lib/clickhouse.ts';
import { loadConfig } from '../lib/config.ts';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import { adminToken, removeAdminEndpoint, writeAdminEndpoint } from '../lib/admin.ts';
import { sleep } from '../lib/backoff.ts';
import { startAdminServer, startPublicServer, type Routes } from '../lib/http-server.ts';
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
import { startAlertsRole } from '../alerts/main.ts';
import { signInPage } from '../dashboard/sign-in.ts';

export const summary = 'the main job: all roles in one process (--roles picks some)';

const ROLES: Readonly<Record<string, RoleStarter | undefined>> = {
  consumer: startConsumerRole,
  callback: startCallbackRole,
  snapshot: startSnapshotRole,
  reconcile: startReconcileRole,
  api: startApiRole,
  alerts: startAlertsRole,
};

/** Roles that start and serve while no broker answers: the callback role spools, the API reads the store. */
const STARTS_WITHOUT_KAFKA = new Set(['callback', 'api']);
const LATE_START_RETRY_MS = 5000;
const EXIT_GRACE_MS = 2000;

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

/**
 * Every role but the consumer works for the accounts in WXSYNC_ACCOUNTS; without one they would start and idle,
 * which looks like a hang. A consumer alone loads whatever Kafka holds, so it needs none.
 */
export function checkAccounts(roleNames: readonly string[], accounts: number): void {
  if (accounts > 0 || roleNames.every((name) => name === 'consumer')) return;
  throw new WxsyncError(ErrorCode.UsageInvalid, 'no accounts configured: set WXSYNC_ACCOUNTS to a JSON file listing your Official Accounts, '
    + 'e.g. [{"appid":"wx…","secret":"…","token":"…","encodingAESKey":"…"}] (README, Configuration). '
    + 'To watch wxsync work against simulated accounts first, run `npx wxsync demo`.');
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
  checkAccounts(roleNames, config.accounts.length);
  const logger = createLogger(config.logLevel);
  const registry = createRegistry();
  const kafka = createKafkaGateway(config.kafka, logger);
  const clickhouse = createClickHouse(config.clickhouse);
  const roles: RunningRole[] = [];
  let shuttingDown = false;
  const stopping = new AbortController();
  // Live lists: a role started late (once Kafka is reachable) adds its routes to listeners already serving.
  const adminRoutes: Array<Routes[number]> = [];
  const publicRoutes: Array<Routes[number]> = [];
  const startRole = async (name: string): Promise<void> => {
    const start = ROLES[name];
    if (start === undefined) return;
    const role = await start({ config, logger, registry, kafka, clickhouse });
    roles.push(role);
    adminRoutes.push(...role.routes ?? []);
    publicRoutes.push(...role.publicRoutes ?? []);
  };

  const roleReady = (name: string): boolean => roles.find((r) => r.name === name)?.ready() ?? false;

  const stopAll = async (): Promise<void> => {
    for (const role of roles.reverse()) await role.stop();
    await kafka.close();
    await clickhouse.close();
  };

  const specs = topicSpecs(config);
  const ensureTopics = (): Promise<boolean> => kafka.ensureTopics(specs).then(() => true, (error: unknown) => {
    logger.warn({ err: error }, 'Kafka is not reachable: callbacks are spooled, and the roles that need Kafka start once it is');
    return false;
  });
  const deferred: string[] = [];
  try {
    const kafkaUp = await ensureTopics();
    await migrate(clickhouse, config.clickhouse.database, logger);
    for (const name of roleNames) {
      if (kafkaUp || STARTS_WITHOUT_KAFKA.has(name)) await startRole(name);
      else deferred.push(name);
    }
  } catch (error) {
    await stopAll().catch((stopError: unknown) => { logger.error({ err: stopError }, 'cleanup after a failed start failed'); });
    throw error;
  }
  // The roles that need Kafka, once it answers: topics first, then each role, retried until it starts.
  const lateStart = (async () => {
    if (deferred.length === 0) return;
    while (!stopping.signal.aborted && !await ensureTopics()) await sleep(LATE_START_RETRY_MS, stopping.signal);
    for (const name of deferred) {
      while (!stopping.signal.aborted) {
        try {
          await startRole(name);
          logger.info({ role: name }, 'role started now that Kafka is reachable');
          break;
        } catch (error) {
          logger.warn({ err: error, role: name }, 'role cannot start yet; retrying');
          await sleep(LATE_START_RETRY_MS, stopping.signal);
        }
      }
    }
  })();

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
    readiness: async () => {
      const rolesReady = Object.fromEntries(roleNames.map((name) => [name, !shuttingDown && roleReady(name)]));
      const [kafkaReachable, store] = await Promise.all([
        kafka.reachable(),
        storeWritable(clickhouse),
      ]);
      const spoolDepth = (await registry.getSingleMetric('wxsync_callback_spool_depth')?.get())?.values[0]?.value;
      return { ready: Object.values(rolesReady).every(Boolean) && kafkaReachable && store, roles: rolesReady, kafkaReachable, store, ...(spoolDepth === undefined ? {} : { spoolDepth }) };
    },
    routes: adminRoutes,
    publicPage: signInPage(),
  });
  writeAdminEndpoint(adminConfig, { host: adminConfig.host, port: adminServer.port, pid: process.pid });
  const publicServer = await startPublicServer({
    port: config.http.port,
    logger,
    limits,
    // Whether this process takes WeChat's pushes (spooled while Kafka is down): what a load balancer in front of
    // the callback URL needs. A process without the callback role is ready when all its roles are.
    ready: () => !shuttingDown && (roleNames.includes('callback') ? roleReady('callback') : roleNames.every(roleReady)),
    routes: publicRoutes,
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
  stopping.abort();
  await lateStart;
  await publicServer.close();
  await stopAll();
  removeAdminEndpoint(adminConfig);
  await adminServer.close(1000);
  logger.info('stopped');
  // Everything is flushed and closed. A Kafka client still retrying a connection from an outage would keep
  // the process alive on its own timers for minutes; it has nothing left to do.
  setTimeout(() => { process.exit(0); }, EXIT_GRACE_MS).unref();
  return 0;
}
