import type { ClickHouseClient } from '../lib/clickhouse.ts';

/**
 * The account's current followers in the store, one openid per line, sorted so two lists diff cleanly.
 * Streamed in the chunks ClickHouse returns: 10M followers never sit in memory at once.
 */
export async function* followerLines(client: ClickHouseClient, database: string, appid: string): AsyncGenerator<string> {
  const result = await client.query({
    query: `SELECT openid FROM ${database}.subscribed_keys(appid = {appid:String}) ORDER BY openid`,
    query_params: { appid },
    format: 'TabSeparated',
  });
  for await (const rows of result.stream()) {
    let chunk = '';
    for (const row of rows) chunk += `${row.text}\n`;
    yield chunk;
  }
}
