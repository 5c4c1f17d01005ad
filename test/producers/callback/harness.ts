import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, type Config } from '../../../lib/config.ts';
import type { UserEvent } from '../../../lib/contracts/user-event.ts';
import { decodeUserEvent } from '../../../lib/contracts/user-event.ts';
import { startAdminServer, startPublicServer, type RunningHttpServer } from '../../../lib/http-server.ts';
import { createKafkaGateway, type KafkaGateway } from '../../../lib/kafka.ts';
import { silentLogger } from '../../../lib/logger.ts';
import { createRegistry, type Registry } from '../../../lib/metrics.ts';
import type { RunningRole } from '../../../lib/role.ts';
import type { ClickHouseClient } from '../../../lib/clickhouse.ts';
import { startCallbackRole } from '../../../producers/callback/main.ts';
import type { PushMode } from '../../../sim/push.ts';
import type { ReadyAccount } from '../../../sim/server.ts';

/** The callback role behind a real HTTP server on a free port, as `wxsync run --roles callback` serves it. */
export interface RunningCallback {
  readonly config: Config;
  readonly kafka: KafkaGateway;
  readonly registry: Registry;
  readonly role: RunningRole;
  readonly server: RunningHttpServer;
  readonly base: string;
  /** The admin listener's base URL; its token is ADMIN_TOKEN. */
  readonly admin: string;
  stop(): Promise<void>;
}

export const ADMIN_TOKEN = 'callback-test-admin-token-0123456789abcdef';

/**
 * Writes the accounts file the role reads through WXSYNC_ACCOUNTS. Every simulated account has a key, so an
 * account without a mode in `modes` (by index) is in safe mode.
 */
export function writeAccounts(dir: string, accounts: readonly ReadyAccount[], extra: Record<string, string> = {}, modes: readonly (PushMode | undefined)[] = []): string {
  const file = path.join(dir, 'accounts.json');
  writeFileSync(file, JSON.stringify(accounts.map((a, i) => ({
    appid: a.appid, secret: a.secret, token: a.token, encodingAESKey: a.encodingAESKey, ...extra, ...(modes[i] === undefined ? {} : { mode: modes[i] }),
  }))));
  return file;
}

export async function startCallback(env: Record<string, string>): Promise<RunningCallback> {
  const config = loadConfig(env);
  const logger = silentLogger();
  const kafka = createKafkaGateway(config.kafka, logger, '-callback-test');
  await kafka.ensureTopics([{ topic: config.kafka.topics.userEvents, partitions: config.kafka.partitions.userEvents }]);
  const registry = createRegistry();
  // The callback role never touches ClickHouse.
  const role = await startCallbackRole({ config, logger, registry, kafka, clickhouse: undefined as unknown as ClickHouseClient });
  const limits = { maxConnections: config.http.maxConnections, bodyMaxBytes: config.callback.bodyMaxBytes };
  const server = await startPublicServer({ port: 0, host: '127.0.0.1', logger, ready: () => role.ready(), routes: role.publicRoutes ?? [], limits });
  const admin = await startAdminServer({
    port: 0, host: '127.0.0.1', token: ADMIN_TOKEN, registry, logger, limits, readiness: () => Promise.resolve({ ready: role.ready(), roles: { callback: role.ready() } }), routes: role.routes ?? [],
  });
  return {
    config, kafka, registry, role, server,
    base: `http://127.0.0.1:${server.port}`,
    admin: `http://127.0.0.1:${admin.port}`,
    async stop() {
      await server.close();
      await admin.close();
      await role.stop();
      await kafka.close();
    },
  };
}

export async function eventsIn(kafka: KafkaGateway, topic: string): Promise<UserEvent[]> {
  const records = await kafka.readAll(topic, 30_000);
  return records.map((r) => decodeUserEvent(r.value));
}

export async function metric(registry: Registry, name: string, labels = ''): Promise<number> {
  const text = await registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels === '' ? ' ' : `{${labels}} `}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}
