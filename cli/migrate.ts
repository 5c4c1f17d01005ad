import { createClickHouse } from '../lib/clickhouse.ts';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { migrate } from '../lib/migrate.ts';

export const summary = 'apply sql/ to the configured ClickHouse';

export async function main(): Promise<number> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const client = createClickHouse(config.clickhouse);
  try {
    const statements = await migrate(client, config.clickhouse.database, logger);
    process.stdout.write(`migrated ${config.clickhouse.database}: ${statements} statements applied\n`);
    return 0;
  } finally {
    await client.close();
  }
}
