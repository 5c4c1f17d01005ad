import { readText } from '../lib/api-client.ts';
import type { ListedSnapshot, SnapshotListing } from '../producers/reconcile/compare.ts';
import { accountInvocation } from './command.ts';
import { alignTable, count, csvRow, formatOf, getFromRunning, percent, shortTime, withStore, write, type Format } from './compare.ts';

export const summary = 'the account\'s snapshots: start, end, total, completeness, kept or dropped, reconcile result, comparison with the one before';

const USAGE = 'usage: wxsync snapshots <appid> [--format table|csv|jsonl]';

function reconcileCell(s: ListedSnapshot): string {
  if (s.reconcile === null) return '—';
  return s.reconcile.status === 'done' ? `done, ${count(s.reconcile.corrections)} corrections` : s.reconcile.status;
}

export function formatListing(listing: SnapshotListing, format: Format): string {
  if (format === 'jsonl') return listing.snapshots.map((s) => `${JSON.stringify({ appid: listing.appid, ...s })}\n`).join('');
  if (format === 'csv') {
    return csvRow(['snapshot_id', 'started_at', 'ended_at', 'total', 'openids', 'state', 'reason', 'data', 'dropped_at', 'reconcile_status', 'reconcile_corrections',
      'compared_with', 'added', 'added_unexplained', 'removed', 'removed_unexplained', 'unexplained_share'])
      + listing.snapshots.map((s) => csvRow([
        s.snapshotId, s.startedAt ?? '', s.endedAt ?? '', s.total, s.openids, s.state, s.reason, s.data, s.droppedAt ?? '',
        s.reconcile?.status ?? '', s.reconcile?.corrections ?? '', s.comparison?.fromSnapshotId ?? '',
        s.comparison?.added ?? '', s.comparison?.addedUnexplained ?? '', s.comparison?.removed ?? '', s.comparison?.removedUnexplained ?? '',
        s.comparison?.unexplainedShare ?? '',
      ])).join('');
  }
  if (listing.snapshots.length === 0) return `${listing.appid} has no snapshot yet\n`;
  const table = alignTable([
    ['snapshot', 'started', 'ended', 'total', 'state', 'data', 'reconcile', 'added (unexpl.)', 'removed (unexpl.)', 'unexpl. share', 'note'],
    ...listing.snapshots.map((s) => {
      const c = s.comparison;
      return [
        s.snapshotId, shortTime(s.startedAt), shortTime(s.endedAt), count(s.total), s.state, s.data, reconcileCell(s),
        c === null ? '—' : `+${count(c.added)} (${count(c.addedUnexplained)})`, c === null ? '—' : `−${count(c.removed)} (${count(c.removedUnexplained)})`,
        c === null ? '—' : percent(c.unexplainedShare), s.reason,
      ];
    }),
  ], new Set([3, 7, 8, 9]));
  return `${table}snapshot data is kept for the last ${listing.keep} complete snapshots (WXSYNC_SNAPSHOT_KEEP); added and removed compare each with the complete snapshot before it\n`;
}

/** Exit codes: 0 listed, 1 a failure, 2 a bad invocation. */
export async function main(argv: readonly string[]): Promise<number> {
  const { appid, values, config } = accountInvocation(argv, USAGE, { format: { type: 'string', default: 'table' } });
  const format = formatOf(values.format);
  // ⚑ While `wxsync run` holds the embedded store, only it may open it: ask it.
  const answer = await getFromRunning(config, `/api/snapshots/${appid}`);
  const listing = answer === undefined
    ? await withStore(config, (history) => history.list(appid))
    : JSON.parse(await readText(answer.body)) as SnapshotListing;
  await write(formatListing(listing, format));
  return 0;
}
