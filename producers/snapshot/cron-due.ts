/**
 * When an account's snapshot cron last came due: what wxsync_snapshot_overdue_seconds measures from. node-cron
 * only looks forward (next run), so this walks back from now a minute at a time through its own matcher, in the
 * scheduler's time zone (the process's, as lib/schedule.ts schedules). Each walk stops at the previous one's
 * start, so after the first only the minutes since the last call are matched.
 */
import cron from 'node-cron';

/** How far back the first walk looks: a monthly schedule's previous due time, at most. */
const LOOKBACK_MS = 31 * 24 * 3600 * 1000;
const MINUTE_MS = 60_000;

export class CronDue {
  private due: number | undefined;
  private walkedTo: number | undefined;
  private readonly seconds: readonly number[];

  constructor(private readonly expression: string) {
    // Six-field expressions name seconds; the walk tries each in a minute, latest first.
    this.seconds = [...cron.parse(expression).second].sort((a, b) => b - a);
  }

  /** The latest due time at or before `nowMs`, epoch ms; undefined if none within the lookback. */
  previous(nowMs: number): number | undefined {
    const stop = this.walkedTo ?? nowMs - LOOKBACK_MS;
    const task = cron.createTask(this.expression, () => undefined);
    try {
      for (let minute = Math.floor(nowMs / MINUTE_MS) * MINUTE_MS; minute > stop - MINUTE_MS; minute -= MINUTE_MS) {
        const found = this.seconds.map((s) => minute + s * 1000).find((at) => at <= nowMs && at > stop && task.match(new Date(at)));
        if (found !== undefined) {
          this.due = found;
          break;
        }
      }
    } finally {
      void task.destroy();
    }
    this.walkedTo = nowMs;
    return this.due;
  }
}
