import type { RoleStarter } from '../../lib/role.ts';
import { RollupRefresher } from '../../reports/refresh.ts';
import { startClickHouseConsumer } from './consumer.ts';

export const startConsumerRole: RoleStarter = async ({ config, kafka, clickhouse, logger, registry }) => {
  // Corrections change past periods (a lost push found by a snapshot): the churn rollups are refreshed after
  // them rather than at their next schedule, so a report after a reconcile shows what it found.
  const refresher = new RollupRefresher(clickhouse, config.clickhouse.database, logger.child({ role: 'consumer' }));
  const consumer = await startClickHouseConsumer({
    config, kafka, clickhouse, logger, registry,
    wrapWriter: (writer) => ({
      async write(routed) {
        await writer.write(routed);
        if (routed.userEvents.some((row) => row.source === 'correction')) refresher.request();
      },
    }),
  });
  let joined = false;
  void consumer.joined.then(() => { joined = true; });
  // Not ready while stalled: a write that keeps failing holds back every commit, and /readyz must say so.
  return { name: 'consumer', ready: () => joined && !consumer.stall().stalled, stop: async () => { await consumer.stop(); await refresher.stop(); } };
};
