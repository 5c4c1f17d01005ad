/**
 * The demo's live summary: one screen redrawn in place on a terminal, a plain line now and then elsewhere (a log or
 * a pipe must not fill with escape codes). Pure: the demo gathers the state, these say it.
 */
import type { SnapshotListing } from '../producers/reconcile/compare.ts';
import type { ChurnReport } from '../reports/churn.ts';
import { alignTable } from '../reports/format.ts';

export interface ReconcileSeen {
  /** When it finished (ms). */
  readonly at: number;
  readonly corrections: number;
  /** The account's first reconcile: its corrections brought every follower in, with their subscribe times. */
  readonly first: boolean;
}

export interface AccountState {
  readonly appid: string;
  /** Followers on (simulated) WeChat now. */
  readonly truth: number;
  /** The last comparison of the store's followers with WeChat's; undefined before the first. */
  readonly compared?: { readonly store: number; readonly differences: number };
  /** While a snapshot the demo asked for runs: how far it is. */
  readonly snapshot?: { readonly pages: number; readonly expectedPages: number } | undefined;
  readonly lastReconcile?: ReconcileSeen;
  /** The second of the minute its scheduled snapshots start at (snapshotSecond); each reconcile follows once its snapshot is loaded. */
  readonly snapshotSecond: number;
}

export interface DemoState {
  readonly nowMs: number;
  readonly elapsedMs: number;
  /** Pushes WeChat sent a second, lately; of them, dropped on purpose; and the callbacks wxsync took. */
  readonly pushesPerSecond: number;
  readonly droppedPerSecond: number;
  readonly takenPerSecond: number | undefined;
  readonly accounts: readonly AccountState[];
  /** What the demo is doing, when it is not simply running (starting the first snapshots, stopping). */
  readonly phase: string;
}

/** Local wall-clock time, HH:MM:SS. */
export function clockTime(ms: number): string {
  return new Date(ms).toTimeString().slice(0, 8);
}

export function elapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
    : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

const number = (n: number): string => n.toLocaleString('en-US');

/**
 * The second of the minute at which the k-th of n accounts is snapshotted: once a minute each, spread over the
 * minute, so one snapshot's load has passed before the next starts.
 */
export function snapshotSecond(k: number, n: number): number {
  return Math.floor((60 * k) / n);
}

/** The next instant after `nowMs` whose second of the minute is `second`. */
export function nextAtSecond(nowMs: number, second: number): number {
  const at = Math.floor(nowMs / 60_000) * 60_000 + second * 1000;
  return at > nowMs ? at : at + 60_000;
}

/** Sample `total` (a count that only grows) at `at`; the rate over the samples of the last `windowMs`. */
export class Rate {
  private readonly samples: { at: number; total: number }[] = [];

  constructor(private readonly windowMs = 5000) {}

  add(at: number, total: number): number {
    this.samples.push({ at, total });
    while (this.samples.length > 2 && at - (this.samples[1]?.at ?? at) >= this.windowMs) this.samples.shift();
    const first = this.samples[0];
    return first === undefined || at <= first.at ? 0 : ((total - first.total) * 1000) / (at - first.at);
  }
}

function truthCell(account: AccountState, nowMs: number): string {
  if (account.compared === undefined) return 'not compared yet';
  if (account.compared.differences === 0) return 'equal';
  const next = account.lastReconcile === undefined ? 'importing' : `next reconcile after ${clockTime(nextAtSecond(nowMs, account.snapshotSecond))}`;
  return `differs by ${number(account.compared.differences)} (${next})`;
}

function reconcileCell(account: AccountState): string {
  if (account.snapshot !== undefined) {
    const { pages, expectedPages } = account.snapshot;
    // The last page is the end-of-list answer: the snapshot is complete, and its reconcile waits for it to be loaded.
    if (pages >= expectedPages) return 'snapshot done, reconciling';
    const width = 20;
    const filled = Math.min(width, Math.round((pages / Math.max(1, expectedPages)) * width));
    return `snapshot [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pages}/${expectedPages} pages`;
  }
  const r = account.lastReconcile;
  // Imports run one at a time, the smallest account first.
  if (r === undefined) return 'waiting for its import';
  return r.first ? `${clockTime(r.at)}: imported ${number(r.corrections)} followers` : `${clockTime(r.at)}: ${number(r.corrections)} lost pushes recovered`;
}

function traffic(state: DemoState): string {
  const taken = state.takenPerSecond === undefined ? '' : `; wxsync took ${number(Math.round(state.takenPerSecond))}/s`;
  return `WeChat pushes ${number(Math.round(state.pushesPerSecond))}/s, ${number(Math.round(state.droppedPerSecond))}/s of them dropped on purpose${taken}`;
}

/** The terminal's screen: a heading, the traffic, a row an account. */
export function screen(state: DemoState): string[] {
  const table = alignTable(
    ['account', 'WeChat', 'store', 'store = truth', 'last reconcile'],
    state.accounts.map((a) => [a.appid, number(a.truth), a.compared === undefined ? '–' : number(a.compared.store), truthCell(a, state.nowMs), reconcileCell(a)]),
  );
  return [
    `wxsync demo · ${elapsed(state.elapsedMs)} · ${state.phase}`,
    traffic(state),
    '',
    ...table.split('\n'),
  ];
}

/** One line for a log or a pipe. */
export function plainLine(state: DemoState): string {
  const accounts = state.accounts.map((a) => {
    const store = a.compared === undefined ? '' : `, store ${a.compared.differences === 0 ? 'equal' : `differs by ${number(a.compared.differences)}`}`;
    return `${a.appid} ${number(a.truth)} followers${store}`;
  });
  return `demo ${elapsed(state.elapsedMs)}: ${traffic(state)}; ${accounts.join('; ')}`;
}

/**
 * What redraws `lines` in place of the `previous` screen's: up to its first line, then the new lines, each
 * clearing what was there, then clearing below (the new screen may be shorter). Lines are cut to the terminal's
 * `width`: a wrapped line would take two rows and the next redraw would start one too low.
 */
export function redraw(previous: number, lines: readonly string[], width: number): string {
  return `${previous > 0 ? `\x1b[${previous}F` : ''}${lines.map((line) => `\x1b[2K${line.slice(0, Math.max(1, width - 1))}\n`).join('')}\x1b[J`;
}

/** The account's newest reconcile that ran, from its snapshot listing (the admin API's /api/snapshots/<appid>). */
export function lastReconcileOf(listing: SnapshotListing): ReconcileSeen | undefined {
  const done = listing.snapshots.flatMap((s) => (s.reconcile?.status === 'done' ? [s.reconcile] : []));
  const newest = done.reduce<(typeof done)[number] | undefined>((a, b) => (a === undefined || b.finishedAt > a.finishedAt ? b : a), undefined);
  return newest === undefined ? undefined : { at: Date.parse(newest.finishedAt), corrections: newest.corrections, first: done.length === 1 };
}

/** The sum of a counter over all its labels, from Prometheus' text format. */
export function metricTotal(metrics: string, name: string): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return total;
}

export interface YearRow {
  readonly year: string;
  readonly follows: number;
  readonly unfollows: number;
  readonly followersEnd: number;
}

/** A monthly churn report summed by calendar year, years without a follow or unfollow left out. */
export function yearsOf(report: ChurnReport): YearRow[] {
  const years = new Map<string, YearRow>();
  for (const p of report.periods) {
    const year = p.period.slice(0, 4);
    const seen = years.get(year);
    years.set(year, { year, follows: (seen?.follows ?? 0) + p.follows, unfollows: (seen?.unfollows ?? 0) + p.unfollows, followersEnd: p.followersEnd });
  }
  return [...years.values()].filter((y) => y.follows + y.unfollows > 0);
}

/** The years as a table: how far back the imported follow history reaches, and what today added. */
export function formatYears(rows: readonly YearRow[]): string {
  return alignTable(['year', 'follows', 'unfollows', 'followers at its end'], rows.map((y) => [y.year, number(y.follows), number(y.unfollows), number(y.followersEnd)]));
}
