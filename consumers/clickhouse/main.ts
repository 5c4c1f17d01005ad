import type { RoleStarter } from '../../lib/role.ts';
import { startClickHouseConsumer } from './consumer.ts';

export const startConsumerRole: RoleStarter = async ({ config, kafka, clickhouse, logger, registry }) => {
  const consumer = await startClickHouseConsumer({ config, kafka, clickhouse, logger, registry });
  let joined = false;
  void consumer.joined.then(() => { joined = true; });
  // Not ready while stalled: a write that keeps failing holds back every commit, and /readyz must say so.
  return { name: 'consumer', ready: () => joined && !consumer.stall().stalled, stop: () => consumer.stop() };
};
