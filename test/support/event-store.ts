import type { ClickHouseClient } from '@clickhouse/client';
import { userEventRow, type UserEventRow } from '../../consumers/clickhouse/route.ts';
import { createClickHouse } from '../../lib/clickhouse.ts';
import type { UserEvent } from '../../lib/contracts/user-event.ts';
import type { InRecord } from '../../lib/kafka.ts';
import { silentLogger } from '../../lib/logger.ts';
import { migrate } from '../../lib/migrate.ts';
import { refreshRollups } from '../../reports/refresh.ts';
import { testEnv, type TestEnv } from './env.ts';

/** A China (UTC+8) local time `YYYY-MM-DDTHH:MM[:SS[.mmm]]` as Unix ms. */
export function beijing(local: string): number {
  return Date.parse(`${local.length === 16 ? `${local}:00` : local}+08:00`);
}

/**
 * A builder of the events of a report fixture: ids in order, a push received 0.8 s after its CreateTime and a
 * correction an hour after the time it carries, as a reconcile would.
 */
export function fixtureEvents(defaultAppid: string) {
  let serial = 0;
  return (openid: string, type: UserEvent['type'], local: string, source: UserEvent['source'], scene = '', qrScene = '', appid = defaultAppid): UserEvent => {
    serial += 1;
    const at = beijing(local);
    return {
      v: 1, id: `${openid}-${serial}`, appid, openid, type, at, source, receivedAt: at + (source === 'callback' ? 800 : 3_600_000),
      ...(scene === '' ? {} : { scene }), ...(qrScene === '' ? {} : { qrScene }),
      ...(source === 'correction' ? { correction: { snapshotId: 's1', rule: type === 'subscribe' ? 'missing' : 'stale' } } : {}),
    };
  };
}

export interface EventStore {
  readonly env: TestEnv;
  readonly clickhouse: ClickHouseClient;
  readonly db: string;
  close(): Promise<void>;
}

const ORIGIN: InRecord = { topic: 't', partition: 0, offset: '0', key: null, value: null, timestamp: '0' };

/**
 * A fresh store holding `events` in user_events, the churn rollups refreshed. One insert per event, so an event
 * listed twice is a second row until a merge, as a redelivery leaves it.
 */
export async function storeWithEvents(events: readonly UserEvent[]): Promise<EventStore> {
  const env = testEnv();
  const clickhouse = createClickHouse(env.config.clickhouse);
  const db = env.config.clickhouse.database;
  await migrate(clickhouse, db, silentLogger());
  for (const e of events) {
    const row: { -readonly [K in keyof UserEventRow]?: UserEventRow[K] } = { ...userEventRow(e, ORIGIN) };
    delete row.origin;
    await clickhouse.insert({ table: `${db}.user_events`, values: [row], format: 'JSONEachRow' });
  }
  await refreshRollups(clickhouse, db, { timeoutMs: 60_000 });
  return {
    env, clickhouse, db,
    async close() {
      await clickhouse.close();
      env.cleanup();
    },
  };
}
