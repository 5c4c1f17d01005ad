/**
 * The churn rollups (sql/012) are refreshable materialized views: ClickHouse recomputes them on their schedule in
 * its own threads. wxsync also asks for a refresh when corrections are loaded and when a report wants the
 * newest figures, and must know when one that saw everything loaded before the ask has finished.
 *
 * That is told by polling system.view_refreshes, not by SYSTEM WAIT VIEW: chDB runs one query at a time per
 * process, so a wait of seconds would hold back every insert of the consumer.
 */
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, WxsyncError, describeError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';

/** In refresh order: churn_hourly is computed from follow_spells, churn_hourly_totals from churn_hourly. */
export const ROLLUP_VIEWS = ['follow_spells_refresh', 'churn_hourly_refresh', 'churn_hourly_totals_refresh'] as const;
const POLL_MS = 100;

export interface ViewRefresh {
  readonly status: string;
  /** Unix seconds the latest refresh attempt (and the latest successful one) started; null before any. */
  readonly lastRefresh: number | null;
  readonly lastSuccess: number | null;
  readonly exception: string;
}

export async function viewRefresh(clickhouse: ClickHouseClient, database: string, view: string): Promise<ViewRefresh | undefined> {
  const [row] = await queryRows<{ status: string; last_refresh: number | null; last_success: number | null; exception: string }>(clickhouse,
    `SELECT status, toUnixTimestamp(last_refresh_time) AS last_refresh, toUnixTimestamp(last_success_time) AS last_success, exception
      FROM system.view_refreshes WHERE database = {db:String} AND view = {view:String}`,
    { db: database, view });
  if (row === undefined) return undefined;
  return { status: row.status, lastRefresh: row.last_refresh, lastSuccess: row.last_success, exception: row.exception };
}

/**
 * What polling decides: a refresh that began at or after `mark` (Unix seconds) has finished (`done`) or failed,
 * or one is still to come or running (`wait`).
 */
export function refreshOutcome(state: ViewRefresh, mark: number): 'done' | 'failed' | 'wait' {
  if (state.status === 'Running' || state.lastRefresh === null || state.lastRefresh < mark) return 'wait';
  if (state.lastSuccess !== null && state.lastSuccess >= mark) return 'done';
  return state.exception === '' ? 'wait' : 'failed';
}

export interface RefreshOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

async function poll(clickhouse: ClickHouseClient, database: string, view: string, until: (state: ViewRefresh) => boolean, deadline: number, signal?: AbortSignal): Promise<ViewRefresh> {
  for (;;) {
    const state = await viewRefresh(clickhouse, database, view);
    if (state === undefined) throw new WxsyncError(ErrorCode.ClickHouseFailed, `${database}.${view} does not exist: run wxsync migrate`);
    if (until(state)) return state;
    if (performance.now() > deadline) throw new WxsyncError(ErrorCode.ClickHouseFailed, `${database}.${view} did not finish refreshing in time`, { retriable: true });
    await sleep(POLL_MS, undefined, signal === undefined ? {} : { signal });
  }
}

/**
 * Refreshes every rollup, in order, each from a start after this call began, and returns when all have
 * finished. A refresh already running is let finish first: it may have begun before rows this call must see.
 */
export async function refreshRollups(clickhouse: ClickHouseClient, database: string, options: RefreshOptions): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  let readFrom: number | undefined;
  for (const view of ROLLUP_VIEWS) {
    await poll(clickhouse, database, view, (s) => s.status !== 'Running', deadline, options.signal);
    // Refresh times are whole seconds of ClickHouse's clock (a server's may differ from ours): start in a
    // second no earlier refresh can carry.
    const [clock] = await (await clickhouse.query({ query: 'SELECT toUnixTimestamp64Milli(now64(3)) AS ms', format: 'JSONEachRow' })).json<{ ms: string }>();
    const serverMs = Number(clock?.ms);
    const mark = Math.floor(serverMs / 1000) + 1;
    await sleep(mark * 1000 - serverMs, undefined, options.signal === undefined ? {} : { signal: options.signal });
    await clickhouse.command({ query: `SYSTEM REFRESH VIEW ${database}.${view}` });
    const state = await poll(clickhouse, database, view, (s) => refreshOutcome(s, mark) !== 'wait', deadline, options.signal);
    if (refreshOutcome(state, mark) === 'failed') {
      throw new WxsyncError(ErrorCode.ClickHouseFailed, `refreshing ${database}.${view} failed: ${state.exception}`, { retriable: true });
    }
    // The first view is the one that reads user_events: its start dates all three.
    readFrom ??= state.lastRefresh ?? mark;
  }
  await clickhouse.insert({ table: `${database}.rollup_refreshes`, values: [{ read_from: readFrom }], format: 'JSONEachRow' });
}

/**
 * Pure: the second the rollups' data was read, in Unix seconds, 0 before any refresh: the oldest of this process's
 * last successful refreshes of the three views (0 when one has none yet), or the last refresh a process recorded
 * in rollup_refreshes, whichever is newer. Either dates data the tables hold: a recorded refresh finished in all
 * three, and any later one only replaced them with newer.
 */
export function rollupsReadFrom(lastSuccesses: readonly (number | null | undefined)[], recorded: number): number {
  return Math.max(Math.min(...lastSuccesses.map((seconds) => seconds ?? 0)), recorded);
}

/** When the rollups' data was read (see rollupsReadFrom), as ISO time; null before the first refresh. */
export async function rollupsAsOf(clickhouse: ClickHouseClient, database: string): Promise<string | null> {
  const states = await Promise.all(ROLLUP_VIEWS.map((view) => viewRefresh(clickhouse, database, view)));
  const [recorded] = await queryRows<{ seconds: number }>(clickhouse, `SELECT toUnixTimestamp(max(read_from)) AS seconds FROM ${database}.rollup_refreshes`);
  const seconds = rollupsReadFrom(states.map((state) => state?.lastSuccess), recorded?.seconds ?? 0);
  return seconds === 0 ? null : new Date(seconds * 1000).toISOString();
}

/** How long to wait before a refresh asked for at `now`: at least `delayMs`, and until twice the last one's duration has passed since it ended. */
export function refreshDelay(now: number, delayMs: number, lastEnd: number, lastDurationMs: number): number {
  return Math.max(delayMs, lastEnd + 2 * lastDurationMs - now);
}

/**
 * Refreshes the rollups soon after it is asked (the consumer asks after every write to user_events): a few
 * seconds after the first ask, so a stream of batches costs one refresh, never two at once, and never sooner
 * than twice the last refresh's duration after its end, so that however large the log grows, refreshing takes
 * at most a third of the time (a refresh recomputes the whole log: about 5.6 minutes at 50M events here).
 */
export class RollupRefresher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private lastEnd = Number.NEGATIVE_INFINITY;
  private lastDurationMs = 0;
  private readonly abort = new AbortController();

  constructor(
    private readonly clickhouse: ClickHouseClient,
    private readonly database: string,
    private readonly logger: Logger,
    private readonly delayMs = 3000,
    private readonly timeoutMs = 3_600_000,
  ) {}

  request(): void {
    if (this.stopped || this.timer !== undefined) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    const wait = refreshDelay(performance.now(), this.delayMs, this.lastEnd, this.lastDurationMs);
    this.timer = setTimeout(() => { this.run(); }, wait);
    this.timer.unref();
  }

  private run(): void {
    this.timer = undefined;
    const started = performance.now();
    this.running = refreshRollups(this.clickhouse, this.database, { timeoutMs: this.timeoutMs, signal: this.abort.signal })
      .catch((error: unknown) => { if (!this.stopped) this.logger.warn({ err: describeError(error) }, 'churn rollups not refreshed; their schedule will'); })
      .finally(() => {
        this.lastEnd = performance.now();
        this.lastDurationMs = this.lastEnd - started;
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.request();
        }
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
    await this.running;
  }
}
