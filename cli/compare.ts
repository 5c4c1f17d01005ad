import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { answerError, readText, requestRunning, type ApiAnswer } from '../lib/api-client.ts';
import { createClickHouse } from '../lib/clickhouse.ts';
import type { Config } from '../lib/config.ts';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { migrate } from '../lib/migrate.ts';
import { historyFor, type ComparisonReport, type DifferenceRow, type SnapshotHistory } from '../producers/reconcile/compare.ts';
import { compareOptions, type Concentration, type Side } from '../producers/reconcile/compare-plan.ts';
import { accountInvocation } from './command.ts';

export const summary = 'followers added and removed between two kept snapshots, explained by a delivered callback or not, by scene and campaign';

const USAGE = 'usage: wxsync compare <appid> [--from SNAPSHOT] [--to SNAPSHOT] [--list added|removed] [--format table|csv|jsonl]';

export const FORMATS = ['table', 'csv', 'jsonl'] as const;
export type Format = (typeof FORMATS)[number];

export function formatOf(value: string): Format {
  const format = FORMATS.find((f) => f === value);
  if (format === undefined) throw new WxsyncError(ErrorCode.UsageInvalid, `--format must be ${FORMATS.join(', ')}`);
  return format;
}

export async function write(chunk: string): Promise<void> {
  if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
}

/**
 * GET from the `wxsync run` that holds the store, undefined when none runs. Its refusals keep their meaning: a bad
 * request (400) is a usage error (exit 2), a snapshot it cannot compare (409) a SnapshotUnavailable (exit 1).
 */
export async function getFromRunning(config: Config, path: string): Promise<ApiAnswer | undefined> {
  const answer = await requestRunning(config, 'GET', path);
  if (answer === undefined || answer.status === 200) return answer;
  if (answer.status !== 400 && answer.status !== 409) throw await answerError(answer, 'api');
  const text = (await readText(answer.body)).trim();
  let message = text;
  try {
    const body = JSON.parse(text) as { error?: unknown };
    if (typeof body.error === 'string') message = body.error;
  } catch {
    // Not JSON: the text itself says it.
  }
  throw new WxsyncError(answer.status === 400 ? ErrorCode.UsageInvalid : ErrorCode.SnapshotUnavailable, message);
}

/** Opens the store itself (nothing runs that holds it) and hands `work` the same history the API uses. */
export async function withStore<T>(config: Config, work: (history: SnapshotHistory) => Promise<T>): Promise<T> {
  const logger = createLogger(config.logLevel);
  const clickhouse = createClickHouse(config.clickhouse);
  try {
    await migrate(clickhouse, config.clickhouse.database, logger);
    return await work(historyFor(config, clickhouse, logger));
  } finally {
    await clickhouse.close();
  }
}

/** Columns padded to their widest cell; `right` names the columns aligned right (numbers). */
export function alignTable(rows: readonly (readonly string[])[], right: ReadonlySet<number>): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, k) => { widths[k] = Math.max(widths[k] ?? 0, cell.length); });
  return rows.map((row) => row.map((cell, k) => {
    if (k === row.length - 1 && !right.has(k)) return cell;
    return right.has(k) ? cell.padStart(widths[k] ?? 0) : cell.padEnd(widths[k] ?? 0);
  }).join('  ').trimEnd()).map((line) => `${line}\n`).join('');
}

/** One CSV record (RFC 4180): a field holding a comma, quote or line break is quoted, its quotes doubled. */
export function csvRow(fields: readonly (string | number | boolean)[]): string {
  return `${fields.map((f) => {
    const text = String(f);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  }).join(',')}\n`;
}

export const count = (n: number): string => n.toLocaleString('en-US');
export const percent = (share: number | null): string => (share === null ? '—' : `${(100 * share).toFixed(2)}%`);
/** An ISO time to the second, for tables. */
export const shortTime = (time: string | null): string => (time === null ? '—' : time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'));

/** Scenes or campaigns a table shows; csv and jsonl carry them all. */
const TABLE_GROUPS = 20;

function groupTable(title: string, groups: readonly Concentration[]): string {
  if (groups.length === 0) return '';
  const shown = groups.slice(0, TABLE_GROUPS);
  const table = alignTable([
    [title, 'added', 'unexplained', 'removed', 'unexplained'],
    ...shown.map((g) => [g.key === '' ? '(unknown)' : g.key, count(g.added), count(g.addedUnexplained), count(g.removed), count(g.removedUnexplained)]),
  ], new Set([1, 2, 3, 4]));
  const more = groups.length - shown.length;
  return `\n${table.replace(/^(?=.)/gm, '  ')}${more > 0 ? `  … ${count(more)} more (--format csv or jsonl lists every one)\n` : ''}`;
}

export function formatReport(report: ComparisonReport, format: Format): string {
  if (format === 'jsonl') return `${JSON.stringify(report)}\n`;
  if (format === 'csv') {
    const row = (dimension: string, key: string, added: number, addedUnexplained: number, removed: number, removedUnexplained: number): string =>
      csvRow([report.from.snapshotId, report.to.snapshotId, dimension, key, added, added - addedUnexplained, addedUnexplained, removed, removed - removedUnexplained, removedUnexplained]);
    return csvRow(['from_snapshot', 'to_snapshot', 'dimension', 'key', 'added', 'added_explained', 'added_unexplained', 'removed', 'removed_explained', 'removed_unexplained'])
      + row('all', '', report.added.total, report.added.unexplained, report.removed.total, report.removed.unexplained)
      + report.byScene.map((g) => row('scene', g.key, g.added, g.addedUnexplained, g.removed, g.removedUnexplained)).join('')
      + report.byCampaign.map((g) => row('campaign', g.key, g.added, g.addedUnexplained, g.removed, g.removedUnexplained)).join('');
  }
  const { added, removed } = report;
  const differences = added.total + removed.total;
  const snapshots = alignTable([
    ['from', report.from.snapshotId, `${shortTime(report.from.startedAt)} → ${shortTime(report.from.endedAt)}`, `${count(report.from.total)} followers`],
    ['to', report.to.snapshotId, `${shortTime(report.to.startedAt)} → ${shortTime(report.to.endedAt)}`, `${count(report.to.total)} followers`],
  ], new Set([3]));
  const counts = alignTable([
    ['', 'followers', 'explained', 'unexplained'],
    ['added', count(added.total), count(added.explained), count(added.unexplained)],
    ['removed', count(removed.total), count(removed.explained), count(removed.unexplained)],
  ], new Set([1, 2, 3]));
  const share = differences === 0
    ? '  the two snapshots hold the same followers\n'
    : `  unexplained share ${percent(report.unexplainedShare)}: ${count(added.unexplained + removed.unexplained)} of ${count(differences)} differences had no delivered callback (the callback-loss rate)\n`;
  return `comparison of ${report.appid}\n${snapshots.replace(/^(?=.)/gm, '  ')}`
    + `  a callback explains a difference when its time is within ${shortTime(report.window.from)} → ${shortTime(report.window.to)}\n\n`
    + `${counts.replace(/^(?=.)/gm, '  ')}${share}`
    + groupTable('scene', report.byScene) + groupTable('campaign', report.byCampaign)
    + `\n  compared in ${count(report.durationMs)} ms\n`;
}

/** Widths of the list's table columns: WeChat's openids have 28 characters, its longest scene name 30. A stream cannot measure its rows first. */
const LIST_WIDTHS = [28, 7, 9, 30] as const;

export function listHeader(format: Format): string {
  if (format === 'jsonl') return '';
  const names = ['openid', 'side', 'explained', 'scene', 'campaign'];
  return format === 'csv' ? csvRow(names) : listLine(names);
}

function listLine(cells: readonly string[]): string {
  return `${cells.map((cell, k) => cell.padEnd(LIST_WIDTHS[k] ?? 0)).join('  ').trimEnd()}\n`;
}

export function formatRows(rows: readonly DifferenceRow[], format: Format): string {
  switch (format) {
    case 'jsonl':
      return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
    case 'csv':
      return rows.map((r) => csvRow([r.openid, r.side, r.explained, r.scene, r.campaign])).join('');
    case 'table':
      return rows.map((r) => listLine([r.openid, r.side, r.explained ? 'yes' : 'no', r.scene === '' ? '-' : r.scene, r.campaign === '' ? '-' : r.campaign])).join('');
  }
}

const ROWS_PER_WRITE = 1000;

/** The list the running process streams: each difference a line, then a line saying it is complete (or why not). */
async function* runningRows(answer: ApiAnswer): AsyncGenerator<DifferenceRow[]> {
  let complete = false;
  let batch: DifferenceRow[] = [];
  for await (const line of createInterface({ input: answer.body, crlfDelay: Infinity })) {
    if (line === '') continue;
    const item = JSON.parse(line) as Partial<DifferenceRow> & { complete?: boolean; error?: string; code?: string };
    if (typeof item.openid === 'string') {
      batch.push(item as DifferenceRow);
      if (batch.length < ROWS_PER_WRITE) continue;
      yield batch;
      batch = [];
    } else if (item.complete === true) {
      yield batch;
      complete = true;
    } else {
      const code = Object.values(ErrorCode).find((c) => c === item.code) ?? ErrorCode.ApiRequestFailed;
      throw new WxsyncError(code, item.error ?? 'the running wxsync stopped the list');
    }
  }
  if (!complete) throw new WxsyncError(ErrorCode.ApiRequestFailed, 'the running wxsync cut the list off before its end; what was printed is partial');
}

async function printRows(rows: AsyncIterable<DifferenceRow[]>, format: Format): Promise<void> {
  await write(listHeader(format));
  for await (const chunk of rows) await write(formatRows(chunk, format));
}

/** Exit codes: 0 compared, 1 a snapshot cannot be compared (dropped, incomplete, not loaded, too few) or a failure, 2 a bad invocation. */
export async function main(argv: readonly string[]): Promise<number> {
  const { appid, values, config } = accountInvocation(argv, USAGE, {
    from: { type: 'string' }, to: { type: 'string' }, list: { type: 'string' }, format: { type: 'string', default: 'table' },
  });
  const format = formatOf(values.format);
  const options = compareOptions(values);
  const query = new URLSearchParams();
  for (const key of ['from', 'to', 'list'] as const) {
    const value = options[key];
    if (value !== undefined) query.set(key, value);
  }
  // ⚑ While `wxsync run` holds the embedded store, only it may open it: ask it.
  const answer = await getFromRunning(config, `/api/compare/${appid}?${query.toString()}`);
  const side: Side | undefined = options.list;
  if (side === undefined) {
    const report = answer === undefined
      ? await withStore(config, (history) => history.compare(appid, options))
      : JSON.parse(await readText(answer.body)) as ComparisonReport;
    await write(formatReport(report, format));
    return 0;
  }
  if (answer !== undefined) {
    await printRows(runningRows(answer), format);
    return 0;
  }
  await withStore(config, async (history) => {
    const list = await history.differences(appid, options, side);
    await printRows(list.rows, format);
  });
  return 0;
}
