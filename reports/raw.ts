/**
 * The churn report's rows computed straight from the raw event log, by another method than the rollups
 * (window functions over each user's events rather than sql/012's arrays): the parity test and
 * `npm run bench:report` check that both give the same report. It reads every event, which is why reports do not.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { BUCKET_SQL, KEY_SQL, churnQueries, shapeChurn, type BaselineRow, type ChurnReport, type ChurnRequest, type ChurnRow } from './churn.ts';

/** Each user's transitions: events whose type differs from the one before (before the first: not following). */
function transitions(database: string): string {
  return `SELECT appid, type, at, source, scene, qr_scene,
      lagInFrame(at) OVER u AS prev_at, lagInFrame(scene) OVER u AS prev_scene, lagInFrame(qr_scene) OVER u AS prev_qr_scene,
      countIf(type = 'subscribe') OVER (PARTITION BY appid, openid_key ORDER BY ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) > 0 AS followed_before
    FROM (
      SELECT appid, openid_key, ord, type, at, source, scene, qr_scene,
        lagInFrame(toString(type), 1, 'unsubscribe') OVER (PARTITION BY appid, openid_key ORDER BY ord ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev_type
      FROM ${database}.user_events
      WHERE appid IN {appids:Array(String)}
    )
    WHERE toString(type) != prev_type
    WINDOW u AS (PARTITION BY appid, openid_key ORDER BY ord ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)`;
}

/** Follows at their scene and campaign; unfollows at the scene and campaign of the follow they end. */
function churnEvents(database: string): string {
  return `SELECT appid, toStartOfHour(at) AS hour,
      multiIf(type = 'unsubscribe', 'unfollow', followed_before, 'returning', 'first') AS kind, toString(source) AS source,
      if(type = 'unsubscribe', prev_scene, scene) AS scene, if(type = 'unsubscribe', prev_qr_scene, qr_scene) AS qr_scene
    FROM (${transitions(database)})`;
}

export async function rawChurnReport(clickhouse: ClickHouseClient, database: string, request: ChurnRequest, rollupsAsOf: string | null): Promise<ChurnReport> {
  const { params } = churnQueries(database, request);
  const key = KEY_SQL[request.split ?? 'none'];
  const rows = await (await clickhouse.query({
    query: `SELECT appid, ${key} AS key, ${BUCKET_SQL[request.range.by]} AS bucket, kind, source, count() AS n
      FROM (${churnEvents(database)})
      WHERE hour >= toDateTime({start:UInt32}, 'UTC') AND hour < toDateTime({end:UInt32}, 'UTC')
      GROUP BY appid, key, bucket, kind, source`,
    query_params: params, format: 'JSONEachRow',
  })).json<ChurnRow & { n: string }>();
  const baseline = await (await clickhouse.query({
    query: `SELECT appid, ${key} AS key, sum(if(kind = 'unfollow', -1, 1)) AS followers
      FROM (${churnEvents(database)})
      WHERE hour < toDateTime({start:UInt32}, 'UTC')
      GROUP BY appid, key`,
    query_params: params, format: 'JSONEachRow',
  })).json<BaselineRow & { followers: string }>();
  return shapeChurn(request, rows.map((r) => ({ ...r, n: Number(r.n) })), baseline.map((b) => ({ ...b, followers: Number(b.followers) })), rollupsAsOf);
}
