/**
 * `wxsync report campaigns`: how long the followers each QR campaign brought stay. Reads follow_spells (sql/012):
 * one row per follow, with the unfollow that ended it, so every figure is a count over spells.
 */
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.ts';
import { rollupsAsOf } from './refresh.ts';

/** The "share still following after d days" columns. */
export const RETENTION_DAYS = [1, 7, 30, 90] as const;
/** Cohort weeks shown, the newest last. */
export const COHORT_WEEKS = 12;
/** Time-to-unfollow histogram: upper bounds in seconds, the last bucket open. */
export const UNFOLLOW_BUCKETS = [
  { label: '< 1 h', upTo: 3600 },
  { label: '1 h – 1 d', upTo: 86_400 },
  { label: '1 – 7 d', upTo: 7 * 86_400 },
  { label: '7 – 30 d', upTo: 30 * 86_400 },
  { label: '30 – 90 d', upTo: 90 * 86_400 },
  { label: '90 d – 1 y', upTo: 365 * 86_400 },
  { label: '≥ 1 y', upTo: null },
] as const;

export interface CampaignsRequest {
  readonly appid: string;
  /** "Now" for every "after d days" and "still following": when the report is made. */
  readonly nowMs: number;
  readonly tz: string;
}

export interface Retention {
  readonly days: number;
  /** First follows at least `days` old. */
  readonly eligible: number;
  readonly stayed: number;
  /** stayed ÷ eligible; null when none is old enough. */
  readonly share: number | null;
}

export interface CampaignFigures {
  readonly campaign: string;
  /** First follows through the campaign's QR code. */
  readonly brought: number;
  /** Of those, still following now (the same follow: a follower who left and came back counts as gone). */
  readonly stillFollowing: number;
  readonly retention: readonly Retention[];
  /** Of the first follows at least a day old, those that ended within 24 h. */
  readonly lostWithin24h: number;
  readonly lostWithin24hShare: number | null;
  /** Median time from follow to unfollow, in seconds, over the first follows that ended; null if none did. */
  readonly medianSecondsToUnfollow: number | null;
}

export interface CohortRow {
  /** The Monday of the week of following, local. */
  readonly week: string;
  readonly followers: number;
  /** Share still following k weeks after following, k = 0…; null where the week is not that old yet. */
  readonly shares: readonly (number | null)[];
}

export interface CampaignsReport {
  readonly report: 'campaigns';
  readonly appid: string;
  /** "Now" of the report. */
  readonly asOf: string;
  /** When the data was read: the start of the rollup refresh the report reads (null before the first). */
  readonly rollupsAsOf: string | null;
  readonly tz: string;
  readonly campaigns: readonly CampaignFigures[];
  readonly cohorts: readonly CohortRow[];
  /** Every follow of the account that ended (any scene, first or returning), by how long it lasted. */
  readonly timeToUnfollow: readonly { readonly label: string; readonly unfollows: number }[];
}

const SECONDS = `dateDiff('second', followed_at, unfollowed_at)`;
const FIRST_CAMPAIGN_FOLLOWS = `appid = {appid:String} AND qr_scene != '' AND returning = 0 AND followed_at <= {now:DateTime64(3, 'UTC')}`;
const OLD_ENOUGH = (days: number): string => `followed_at <= {now:DateTime64(3, 'UTC')} - INTERVAL ${days} DAY`;
const STAYED = (days: number): string => `(unfollowed = 0 OR ${SECONDS} >= ${days * 86_400})`;

export function campaignsQueries(database: string): { readonly campaigns: string; readonly cohorts: string; readonly histogram: string } {
  const retention = RETENTION_DAYS.map((d) => `countIf(${OLD_ENOUGH(d)}) AS eligible_${d}, countIf(${OLD_ENOUGH(d)} AND ${STAYED(d)}) AS stayed_${d}`).join(',\n      ');
  return {
    campaigns: `SELECT qr_scene AS campaign, count() AS brought, countIf(unfollowed = 0) AS still_following,
      ${retention},
      countIf(${OLD_ENOUGH(1)} AND unfollowed = 1 AND ${SECONDS} < 86400) AS lost_24h,
      if(countIf(unfollowed = 1) = 0, NULL, quantileExactInclusiveIf(0.5)(${SECONDS}, unfollowed = 1)) AS median_seconds
      FROM ${database}.follow_spells
      WHERE ${FIRST_CAMPAIGN_FOLLOWS}
      GROUP BY campaign
      ORDER BY brought DESC, campaign`,
    // Weeks since following: a follow is eligible for week k once it is k weeks old, and stayed if it lasted as long.
    cohorts: `SELECT formatDateTime(toMonday(followed_at, {tz:String}), '%Y-%m-%d') AS week, k,
      countIf(followed_at <= {now:DateTime64(3, 'UTC')} - toIntervalWeek(k)) AS eligible,
      countIf(followed_at <= {now:DateTime64(3, 'UTC')} - toIntervalWeek(k) AND (unfollowed = 0 OR ${SECONDS} >= k * 604800)) AS stayed
      FROM ${database}.follow_spells
      ARRAY JOIN range(${COHORT_WEEKS}) AS k
      WHERE ${FIRST_CAMPAIGN_FOLLOWS} AND toMonday(followed_at, {tz:String}) > toMonday({now:DateTime64(3, 'UTC')}, {tz:String}) - toIntervalWeek(${COHORT_WEEKS})
      GROUP BY week, k`,
    histogram: `SELECT multiIf(${UNFOLLOW_BUCKETS.map((b, i) => (b.upTo === null ? String(i) : `${SECONDS} < ${b.upTo}, ${i}`)).join(', ')}) AS bucket, count() AS unfollows
      FROM ${database}.follow_spells
      WHERE appid = {appid:String} AND unfollowed = 1 AND followed_at <= {now:DateTime64(3, 'UTC')}
      GROUP BY bucket`,
  };
}

type CampaignRow = { campaign: string; brought: string; still_following: string; lost_24h: string; median_seconds: number | null } & Record<string, string | number | null>;

function share(part: number, whole: number): number | null {
  return whole === 0 ? null : part / whole;
}

/** The report from the query rows: pure. */
export function shapeCampaigns(
  request: CampaignsRequest,
  campaignRows: readonly CampaignRow[],
  cohortRows: readonly { week: string; k: number; eligible: string; stayed: string }[],
  histogramRows: readonly { bucket: number; unfollows: string }[],
  rollupsAsOf: string | null,
): CampaignsReport {
  const campaigns = campaignRows.map((row): CampaignFigures => {
    const retention = RETENTION_DAYS.map((days): Retention => {
      const eligible = Number(row[`eligible_${days}`]);
      const stayed = Number(row[`stayed_${days}`]);
      return { days, eligible, stayed, share: share(stayed, eligible) };
    });
    const lost = Number(row.lost_24h);
    return {
      campaign: row.campaign, brought: Number(row.brought), stillFollowing: Number(row.still_following), retention,
      lostWithin24h: lost, lostWithin24hShare: share(lost, retention[0]?.eligible ?? 0),
      medianSecondsToUnfollow: row.median_seconds,
    };
  });
  const weeks = new Map<string, (number | null)[]>();
  const cohortSizes = new Map<string, number>();
  for (const row of cohortRows) {
    const shares = weeks.get(row.week) ?? Array.from({ length: COHORT_WEEKS }, (): number | null => null);
    weeks.set(row.week, shares);
    const eligible = Number(row.eligible);
    if (row.k === 0) cohortSizes.set(row.week, eligible);
    shares[row.k] = share(Number(row.stayed), eligible);
  }
  const cohorts = [...weeks.keys()].sort().map((week) => ({ week, followers: cohortSizes.get(week) ?? 0, shares: weeks.get(week) ?? [] }));
  const counts = new Map(histogramRows.map((r) => [r.bucket, Number(r.unfollows)]));
  return {
    report: 'campaigns', appid: request.appid, asOf: new Date(request.nowMs).toISOString(), rollupsAsOf, tz: request.tz, campaigns, cohorts,
    timeToUnfollow: UNFOLLOW_BUCKETS.map((b, i) => ({ label: b.label, unfollows: counts.get(i) ?? 0 })),
  };
}

export async function campaignsReport(clickhouse: ClickHouseClient, database: string, request: CampaignsRequest): Promise<CampaignsReport> {
  const queries = campaignsQueries(database);
  const params = { appid: request.appid, now: request.nowMs / 1000, tz: request.tz };
  const run = <T>(query: string): Promise<T[]> => queryRows<T>(clickhouse, query, params);
  const [campaignRows, cohortRows, histogramRows, asOf] = await Promise.all([
    run<CampaignRow>(queries.campaigns),
    run<{ week: string; k: number; eligible: string; stayed: string }>(queries.cohorts),
    run<{ bucket: number; unfollows: string }>(queries.histogram),
    rollupsAsOf(clickhouse, database),
  ]);
  return shapeCampaigns(request, campaignRows, cohortRows, histogramRows, asOf);
}
