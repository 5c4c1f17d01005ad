import type { FuzzReport } from './run.ts';

/** RSS may grow this much over a run (allocator warm-up, caches) before it counts as not flat. */
const RSS_SLACK_MB = 64;

/** Everything wrong with a fuzz run; empty when every request was refused and nothing leaked through. */
export function fuzzVerdict(report: FuzzReport): string[] {
  const problems: string[] = [];
  if (report.crashed) problems.push('wxsync run crashed');
  for (const error of report.serverErrors.slice(0, 20)) problems.push(error);
  if (report.published !== 0) problems.push(`${report.published} records were published`);
  const refused = (report.byStatus['4xx'] ?? 0) + (report.byStatus['closed'] ?? 0);
  if (refused !== report.requests) problems.push(`${report.requests - refused} of ${report.requests} requests were not refused (${JSON.stringify(report.byStatus)})`);
  if (report.rssEndMb - report.rssStartMb > RSS_SLACK_MB) problems.push(`RSS grew from ${report.rssStartMb.toFixed(1)} to ${report.rssEndMb.toFixed(1)} MB`);
  return problems;
}
