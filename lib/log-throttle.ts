/**
 * A failure that repeats per request (a spool that refuses writes, a broker that is down) is logged once, then
 * at most once per interval with how often it happened meanwhile: a line per request would flood the log, and
 * the disk the log shares with the spool, exactly when the operator needs both. Metrics count every one.
 */
/** How often a repeating failure is logged at most. */
export const REPEAT_LOG_INTERVAL_MS = 30_000;

export class LogThrottle {
  private loggedAt = Number.NEGATIVE_INFINITY;
  private occurrences = 0;

  constructor(private readonly intervalMs: number = REPEAT_LOG_INTERVAL_MS, private readonly now: () => number = Date.now) {}

  /** Counts one occurrence; when a line is due, calls `log` with the occurrences since the last line. */
  hit(log: (occurrences: number) => void): void {
    this.occurrences += 1;
    const now = this.now();
    if (now - this.loggedAt < this.intervalMs) return;
    log(this.occurrences);
    this.occurrences = 0;
    this.loggedAt = now;
  }
}
