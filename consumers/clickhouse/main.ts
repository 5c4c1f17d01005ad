import type { RoleStarter } from '../../lib/role.ts';
import { RollupRefresher } from '../../reports/refresh.ts';
import { startClickHouseConsumer } from './consumer.ts';

export const startConsumerRole: RoleStarter = async ({ config, kafka, clickhouse, logger, registry }) => {
  // The churn rollups are recomputed after what the consumer writes (paced by RollupRefresher), so reports follow
  // the data, and a report after a reconcile shows the lost pushes it found.
  const refresher = new RollupRefresher(clickhouse, config.clickhouse.database, logger.child({ role: 'consumer' }));
  const consumer = await startClickHouseConsumer({
    config, kafka, clickhouse, logger, registry,
    wrapWriter: (writer) => ({
      async write(routed) {
        await writer.write(routed);
        if (routed.userEvents.length > 0) refresher.request();
      },
    }),
  });
  let joined = false;
  void consumer.joined.then(() => { joined = true; });
  // Not ready while stalled: a write that keeps failing holds back every commit, and /readyz must say so.
  return { name: 'consumer', ready: () => joined && !consumer.stall().stalled, stop: async () => { await consumer.stop(); await refresher.stop(); } };
};
