import type { RoleStarter } from '../../lib/role.ts';
import { startClickHouseConsumer } from './consumer.ts';

export const startConsumerRole: RoleStarter = async ({ config, kafka, clickhouse, logger, registry }) => {
  const consumer = await startClickHouseConsumer({ config, kafka, clickhouse, logger, registry });
  let joined = false;
  void consumer.joined.then(() => { joined = true; });
  return { name: 'consumer', ready: () => joined, stop: () => consumer.stop() };
};
