/**
 * Reports as text: an aligned table for people, CSV for spreadsheets (one header row, raw ratios), JSON as the
 * API answers it. Pure: the CLI prints what these return.
 */
import type { CampaignsReport } from './campaigns.ts';
import type { ChurnFigures, ChurnReport } from './churn.ts';

export const FORMATS = ['table', 'json', 'csv'] as const;
export type Format = (typeof FORMATS)[number];

function percent(ratio: number | null): string {
  return ratio === null ? '–' : `${(ratio * 100).toFixed(1)}%`;
}

function duration(seconds: number | null): string {
  if (seconds === null) return '–';
  if (seconds < 3600) return `${(seconds / 60).toFixed(0)} min`;
  if (seconds < 86_400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function alignTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.every((r) => /^[-+]?[\d.,%–]*( ?(min|h|d|%))?$/.test(r[i] ?? '')));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (numeric[i] === true ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function csvCell(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csv(header: readonly string[], rows: readonly (readonly (string | number | null)[])[]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n');
}

const CHURN_COLUMNS = ['follows', 'first', 'returning', 'unfollows', 'net', 'followers', 'unfollow rate', 'recovered'] as const;

function churnCells(f: ChurnFigures): string[] {
  return [f.follows, f.firstFollows, f.returningFollows, f.unfollows, f.net, f.followersEnd].map(String).concat(percent(f.unfollowRate), percent(f.recoveredShare));
}

function churnValues(f: ChurnFigures): (number | null)[] {
  return [f.follows, f.firstFollows, f.returningFollows, f.unfollows, f.net, f.followersStart, f.followersEnd, f.unfollowRate, f.recoveredFollows, f.recoveredUnfollows, f.recoveredShare];
}
const CHURN_CSV_COLUMNS = ['follows', 'first_follows', 'returning_follows', 'unfollows', 'net', 'followers_start', 'followers_end', 'unfollow_rate', 'recovered_follows', 'recovered_unfollows', 'recovered_share'];

function keyLabel(report: ChurnReport, key: string): string {
  if (key !== '') return key;
  return report.split === 'campaign' ? '(no campaign)' : '(unknown scene)';
}

export function formatChurn(report: ChurnReport, format: Format): string {
  if (format === 'json') return JSON.stringify(report, null, 2);
  const series = report.split === null ? [{ key: '', periods: report.periods, total: report.total }] : report.splits;
  if (format === 'csv') {
    // With --check (one account, no split), WeChat's figures close each day's row.
    const wechat = new Map(report.check?.days.map((d) => [d.day, d.wechat]) ?? []);
    const checkColumns = report.check === undefined ? [] : ['wechat_follows', 'wechat_unfollows', 'wechat_followers'];
    const header = ['appids', ...(report.split === null ? [] : [report.split]), 'period', ...CHURN_CSV_COLUMNS, ...checkColumns];
    const rows = series.flatMap((s) => [...s.periods, { period: 'total', ...s.total }].map((p) => {
      const w = wechat.get(p.period);
      return [
        report.appids.join(' '), ...(report.split === null ? [] : [s.key]), p.period, ...churnValues(p),
        ...(report.check === undefined ? [] : [w?.follows ?? null, w?.unfollows ?? null, w?.followers ?? null]),
      ];
    }));
    return csv(header, rows);
  }
  const title = `churn of ${report.appids.length === 1 ? report.appids[0] ?? '' : `${report.appids.length} accounts`}, ${report.from} to ${report.to} (${report.tz}), by ${report.by}`;
  const parts = [title, `rollups as of ${report.rollupsAsOf ?? 'never refreshed (run wxsync report --fresh)'}`];
  if (report.accounts.length > 0) {
    parts.push('', alignTable(['account', ...CHURN_COLUMNS], report.accounts.map((a) => [a.appid, ...churnCells(a.total)])));
  }
  for (const s of series) {
    if (report.split !== null) parts.push('', `${report.split} ${keyLabel(report, s.key)}`);
    parts.push('', alignTable(['period', ...CHURN_COLUMNS], [...s.periods, { period: 'total', ...s.total }].map((p) => [p.period, ...churnCells(p)])));
  }
  if (report.check !== undefined) {
    const signed = (n: number): string => (n > 0 ? `+${n}` : String(n));
    parts.push('', `WeChat's own figures (datacube), China days: equal on ${report.check.equal} of ${report.check.compared} days WeChat reported`, '', alignTable(
      ['day', 'follows', 'WeChat new', 'Δ', 'unfollows', 'WeChat cancel', 'Δ', 'followers', 'WeChat cumulate', 'Δ'],
      report.check.days.map((d) => {
        if (d.wechat === null || d.difference === null) return [d.day, String(d.wxsync.follows), d.wechatStatus, '', String(d.wxsync.unfollows), '', '', String(d.wxsync.followers), '', ''];
        return [
          d.day, String(d.wxsync.follows), String(d.wechat.follows), signed(d.difference.follows), String(d.wxsync.unfollows), String(d.wechat.unfollows),
          signed(d.difference.unfollows), String(d.wxsync.followers), String(d.wechat.followers), signed(d.difference.followers),
        ];
      }),
    ));
  }
  parts.push('', `followers at the start: ${report.total.followersStart}; unfollow rate = unfollows ÷ followers at the period's start.`);
  if (report.total.recoveredUnfollows + report.total.recoveredFollows > 0) {
    parts.push(
      `recovered = found by a snapshot or a live check because WeChat's push was lost (${report.total.recoveredFollows} follows, ${report.total.recoveredUnfollows} unfollows).`,
      'WeChat does not say when a user whose push was lost left: such an unfollow happened between the last time wxsync saw the user',
      'and the snapshot that found them gone, and is dated at that snapshot\'s start (a live check\'s: the second before it asked).',
    );
  }
  return parts.join('\n');
}

export function formatCampaigns(report: CampaignsReport, format: Format): string {
  if (format === 'json') return JSON.stringify(report, null, 2);
  const retentionHeader = report.campaigns[0]?.retention.map((r) => `after ${r.days} d`) ?? [];
  if (format === 'csv') {
    return csv(
      ['campaign', 'brought', 'still_following', ...retentionHeader.map((h) => `share_${h.replaceAll(' ', '_')}`), 'lost_within_24h', 'lost_within_24h_share', 'median_seconds_to_unfollow'],
      report.campaigns.map((c) => [c.campaign, c.brought, c.stillFollowing, ...c.retention.map((r) => r.share), c.lostWithin24h, c.lostWithin24hShare, c.medianSecondsToUnfollow]),
    );
  }
  const parts = [`QR campaigns of ${report.appid} as of ${report.asOf} (${report.tz}); rollups as of ${report.rollupsAsOf ?? 'never refreshed'}`, ''];
  parts.push(report.campaigns.length === 0 ? 'no follows through a QR campaign' : alignTable(
    ['campaign', 'brought', 'following', ...retentionHeader, 'lost < 24 h', 'median to unfollow'],
    report.campaigns.map((c) => [c.campaign, String(c.brought), String(c.stillFollowing), ...c.retention.map((r) => percent(r.share)), percent(c.lostWithin24hShare), duration(c.medianSecondsToUnfollow)]),
  ));
  if (report.cohorts.length > 0) {
    const weeks = Math.max(...report.cohorts.map((c) => c.shares.length));
    parts.push('', 'share still following, by week of following (campaign follows) and weeks since', '', alignTable(
      ['week of', 'followers', ...Array.from({ length: weeks }, (_, k) => `w${k}`)],
      report.cohorts.map((c) => [c.week, String(c.followers), ...c.shares.map((s) => (s === null ? '' : percent(s)))]),
    ));
  }
  parts.push('', 'time to unfollow, every follow of the account that ended', '', alignTable(['lasted', 'unfollows'], report.timeToUnfollow.map((b) => [b.label, String(b.unfollows)])));
  return parts.join('\n');
}
