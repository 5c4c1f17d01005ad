/**
 * The campaigns report computed straight from the raw event log, by another method than the rollups: window
 * functions over each user's events in `ord` order find the transitions (sql/012 sorts arrays per user), and the
 * figures are counted from them with the same definitions, written afresh. The parity test and
 * `npm run bench:report` check that both give the same report. It reads every event of the account, which is why
 * reports do not.
 */
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.ts';
import { COHORT_WEEKS, RETENTION_DAYS, UNFOLLOW_BUCKETS, shapeCampaigns, type CampaignsReport, type CampaignsRequest } from './campaigns.ts';

type CampaignRows = Parameters<typeof shapeCampaigns>[1];
type CohortRows = Parameters<typeof shapeCampaigns>[2];
type HistogramRows = Parameters<typeof shapeCampaigns>[3];

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/**
 * One row per follow spell of the account, from its events alone:
 *   - a transition is an event whose type differs from the one before it in `ord` order (before the first, the user
 *     did not follow), so a duplicate or a correction that agrees with the state is none;
 *   - a follow is a subscribe transition, `returning` if an earlier subscribe transition exists;
 *   - the unfollow ending it is the next transition, if any.
 * `age_ms`: how long before "now" the follow began; `secs`: its length in whole seconds (the difference of the two
 * instants' whole seconds, as the report defines it), 0 while it lasts.
 */
function spells(database: string): string {
  return `SELECT qr_scene, followed_before AS returning, at AS followed_at, next_type = 'unsubscribe' AS unfollowed,
      {now_ms:Int64} - toUnixTimestamp64Milli(at) AS age_ms,
      if(unfollowed, toInt64(toUnixTimestamp(next_at)) - toInt64(toUnixTimestamp(at)), 0) AS secs
    FROM (
      SELECT type, at, qr_scene,
        countIf(type = 'subscribe') OVER (PARTITION BY openid_key ORDER BY ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) > 0 AS followed_before,
        leadInFrame(toString(type), 1, '') OVER next AS next_type,
        leadInFrame(at, 1) OVER next AS next_at
      FROM (
        SELECT openid_key, ord, type, at, qr_scene,
          lagInFrame(toString(type), 1, 'unsubscribe') OVER (PARTITION BY openid_key ORDER BY ord ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev_type
        FROM ${database}.user_events
        WHERE appid = {appid:String}
      )
      WHERE toString(type) != prev_type
      WINDOW next AS (PARTITION BY openid_key ORDER BY ord ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING)
    )
    WHERE type = 'subscribe' AND age_ms >= 0`;
}

/** The queries, over the spells above: one row per campaign, one per cohort week (arrays over k), one per histogram bucket. */
export function rawCampaignsQueries(database: string): { readonly campaigns: string; readonly cohorts: string; readonly histogram: string } {
  const firstCampaignFollows = `FROM (${spells(database)}) WHERE qr_scene != '' AND NOT returning`;
  const retention = RETENTION_DAYS.map((d) => `countIf(age_ms >= ${d * DAY_MS}) AS eligible_${d}, countIf(age_ms >= ${d * DAY_MS} AND (NOT unfollowed OR secs >= ${d * 86_400})) AS stayed_${d}`).join(',\n      ');
  const bounds = UNFOLLOW_BUCKETS.flatMap((b) => (b.upTo === null ? [] : [b.upTo]));
  return {
    campaigns: `SELECT qr_scene AS campaign, count() AS brought, countIf(NOT unfollowed) AS still_following,
      ${retention},
      countIf(age_ms >= ${DAY_MS} AND unfollowed AND secs < 86400) AS lost_24h,
      if(countIf(unfollowed) = 0, NULL, quantileExactInclusiveIf(0.5)(secs, unfollowed)) AS median_seconds
      ${firstCampaignFollows}
      GROUP BY campaign
      ORDER BY brought DESC, campaign`,
    cohorts: `SELECT formatDateTime(toMonday(followed_at, {tz:String}), '%Y-%m-%d') AS week,
      sumForEach(arrayMap(k -> toUInt64(age_ms >= k * ${WEEK_MS}), range(${COHORT_WEEKS}))) AS eligible,
      sumForEach(arrayMap(k -> toUInt64(age_ms >= k * ${WEEK_MS} AND (NOT unfollowed OR secs >= k * ${WEEK_MS / 1000})), range(${COHORT_WEEKS}))) AS stayed
      ${firstCampaignFollows}
        AND toMonday(followed_at, {tz:String}) >= toMonday(fromUnixTimestamp64Milli({now_ms:Int64}, 'UTC'), {tz:String}) - ${(COHORT_WEEKS - 1) * 7}
      GROUP BY week`,
    histogram: `SELECT arrayCount(b -> secs >= b, [${bounds.join(', ')}]) AS bucket, count() AS unfollows
      FROM (${spells(database)})
      WHERE unfollowed
      GROUP BY bucket`,
  };
}

/** The campaigns report of `request`, from user_events alone; `rollupsAsOf` is copied into it so it compares whole. */
export async function rawCampaignsReport(clickhouse: ClickHouseClient, database: string, request: CampaignsRequest, rollupsAsOf: string | null): Promise<CampaignsReport> {
  const queries = rawCampaignsQueries(database);
  const params = { appid: request.appid, now_ms: request.nowMs, tz: request.tz };
  const run = <T>(query: string): Promise<T[]> => queryRows<T>(clickhouse, query, params);
  const campaignRows = await run<CampaignRows[number]>(queries.campaigns);
  const weeks = await run<{ week: string; eligible: string[]; stayed: string[] }>(queries.cohorts);
  const histogramRows = await run<HistogramRows[number]>(queries.histogram);
  const cohortRows: CohortRows[number][] = weeks.flatMap((w) =>
    Array.from({ length: COHORT_WEEKS }, (_, k) => ({ week: w.week, k, eligible: w.eligible[k] ?? '0', stayed: w.stayed[k] ?? '0' })));
  return shapeCampaigns(request, campaignRows, cohortRows, histogramRows, rollupsAsOf);
}
