/**
 * `wxsync report churn --check`: WeChat's own daily figures (datacube getusersummary and getusercumulate) beside
 * wxsync's, day by day. WeChat counts China days and has nothing for today, nor for yesterday before 08:00.
 */
import { fetchUserCumulate, fetchUserSummary, type DatacubeDays, type DatacubeSource, type UserCumulateDay, type UserSummaryDay } from '../lib/wechat/datacube.ts';
import type { ChurnReport } from './churn.ts';

export interface DayFigures {
  readonly follows: number;
  readonly unfollows: number;
  readonly followers: number;
}

export interface CheckDay {
  readonly day: string;
  readonly wxsync: DayFigures;
  /** null when WeChat has no figures for the day: today, or not ready yet. */
  readonly wechat: DayFigures | null;
  readonly wechatStatus: 'ready' | 'not ready' | 'today';
  /** wxsync − WeChat; null without WeChat's figures. */
  readonly difference: DayFigures | null;
}

export interface ChurnCheck {
  readonly days: readonly CheckDay[];
  /** Days WeChat gave figures for, and of those the days where all three agree. */
  readonly compared: number;
  readonly equal: number;
}

/** Pure: the report's days beside WeChat's answers. */
export function compareWithWechat(report: ChurnReport, summary: DatacubeDays<UserSummaryDay>, cumulate: DatacubeDays<UserCumulateDay>): ChurnCheck {
  const summaries = new Map(summary.days.map((d) => [d.day, d]));
  const cumulates = new Map(cumulate.days.map((d) => [d.day, d]));
  const days = report.periods.map((period): CheckDay => {
    const wxsync = { follows: period.follows, unfollows: period.unfollows, followers: period.followersEnd };
    const s = summaries.get(period.period);
    const c = cumulates.get(period.period);
    if (s === undefined || c === undefined) return { day: period.period, wxsync, wechat: null, wechatStatus: 'today', difference: null };
    if (!s.ready || !c.ready) return { day: period.period, wxsync, wechat: null, wechatStatus: 'not ready', difference: null };
    const wechat = { follows: s.newUsers, unfollows: s.cancelUsers, followers: c.cumulate };
    return {
      day: period.period, wxsync, wechat, wechatStatus: 'ready',
      difference: { follows: wxsync.follows - wechat.follows, unfollows: wxsync.unfollows - wechat.unfollows, followers: wxsync.followers - wechat.followers },
    };
  });
  const compared = days.filter((d) => d.difference !== null);
  return {
    days, compared: compared.length,
    equal: compared.filter((d) => d.difference?.follows === 0 && d.difference.unfollows === 0 && d.difference.followers === 0).length,
  };
}

export async function checkWithWechat(source: DatacubeSource, report: ChurnReport, now: () => number): Promise<ChurnCheck> {
  const summary = await fetchUserSummary(source, report.from, report.to, { now });
  const cumulate = await fetchUserCumulate(source, report.from, report.to, { now });
  return compareWithWechat(report, summary, cumulate);
}
