/**
 * The decisions of snapshot history, free of I/O: which two snapshots a comparison reads, the window in which a
 * delivered callback explains a difference, how the differences add up, which comparisons to record after a
 * reconcile, and which snapshots retention drops.
 */
import { SNAPSHOT_ID } from '../../lib/contracts/fields.ts';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';

/** One snapshot of an account as the store knows it: its `snapshots` rows folded, and whether retention dropped it. */
export interface SnapshotEntry {
  readonly snapshotId: string;
  /** T0 in epoch ms; 0 while the store has no `begin` record. */
  readonly startedAt: number;
  /** T1 in epoch ms; 0 while the store has no `end` record. */
  readonly endedAt: number;
  readonly ended: boolean;
  readonly complete: boolean;
  /** Begin, end and every page the end announced are in the store. */
  readonly loaded: boolean;
  /** Why it ended incomplete. */
  readonly reason: string;
  /** WeChat's follower count, as its last page reported it. */
  readonly total: number;
  /** Openids the producer published, from the `end` record. */
  readonly openids: number;
  /** When retention dropped its members; undefined while they are kept. */
  readonly droppedAt?: number;
}

export type SnapshotState = 'running' | 'incomplete' | 'loading' | 'complete';

export function snapshotState(s: SnapshotEntry): SnapshotState {
  if (!s.ended) return 'running';
  if (!s.complete) return 'incomplete';
  return s.loaded ? 'complete' : 'loading';
}

/** A snapshot a comparison may read: complete, loaded, and its members kept. */
export function comparable(s: SnapshotEntry): boolean {
  return snapshotState(s) === 'complete' && s.droppedAt === undefined;
}

export interface PairRequest {
  readonly from?: string | undefined;
  readonly to?: string | undefined;
}

export interface SnapshotPair {
  readonly from: SnapshotEntry;
  readonly to: SnapshotEntry;
}

function unavailable(message: string): WxsyncError {
  return new WxsyncError(ErrorCode.SnapshotUnavailable, message);
}

/** Why a snapshot cannot be compared, or undefined when it can. */
function refusal(appid: string, s: SnapshotEntry, keep: number): string | undefined {
  const name = `snapshot ${s.snapshotId} of ${appid}`;
  if (s.droppedAt !== undefined) {
    return `${name} was dropped by retention on ${new Date(s.droppedAt).toISOString()} (the last ${keep} complete snapshots are kept, WXSYNC_SNAPSHOT_KEEP); its recorded comparison is in \`wxsync snapshots ${appid}\``;
  }
  switch (snapshotState(s)) {
    case 'running':
      return `${name} has not ended yet`;
    case 'incomplete':
      return `${name} is incomplete (${s.reason === '' ? 'no reason recorded' : s.reason}); an incomplete snapshot is never compared`;
    case 'loading':
      return `${name} is not fully loaded into the store yet`;
    case 'complete':
      return undefined;
  }
}

/**
 * The two snapshots to compare, `snapshots` in start order. Without --to, the newest comparable snapshot; without
 * --from, the comparable one before --to: by default the last two. A snapshot id the account does not have, the
 * same snapshot twice, or --from not older than --to is a usage error; a snapshot that exists but cannot be read
 * (dropped, incomplete, not loaded, running) or too few snapshots is SnapshotUnavailable.
 */
export function choosePair(appid: string, snapshots: readonly SnapshotEntry[], request: PairRequest, keep: number): SnapshotPair {
  const find = (id: string | undefined, flag: string): SnapshotEntry | undefined => {
    if (id === undefined) return undefined;
    const found = snapshots.find((s) => s.snapshotId === id);
    if (found === undefined) throw new WxsyncError(ErrorCode.UsageInvalid, `unknown snapshot ${id} of ${appid} (${flag}); \`wxsync snapshots ${appid}\` lists them`);
    return found;
  };
  const givenFrom = find(request.from, '--from');
  const givenTo = find(request.to, '--to');
  if (givenFrom !== undefined && givenTo !== undefined) {
    if (givenFrom.snapshotId === givenTo.snapshotId) throw new WxsyncError(ErrorCode.UsageInvalid, `--from and --to both name ${givenFrom.snapshotId}: a snapshot has no differences with itself`);
    if (givenFrom.startedAt >= givenTo.startedAt) {
      throw new WxsyncError(ErrorCode.UsageInvalid, `--from ${givenFrom.snapshotId} did not start before --to ${givenTo.snapshotId}: give the older snapshot as --from`);
    }
  }
  for (const given of [givenFrom, givenTo]) {
    const why = given === undefined ? undefined : refusal(appid, given, keep);
    if (why !== undefined) throw unavailable(why);
  }
  const usable = snapshots.filter(comparable);
  const to = givenTo ?? usable.findLast((s) => givenFrom === undefined || s.startedAt > givenFrom.startedAt);
  if (to === undefined) {
    throw unavailable(givenFrom === undefined
      ? `${appid} has no complete snapshot to compare; run \`wxsync snapshot ${appid}\``
      : `${appid} has no complete snapshot after ${givenFrom.snapshotId} to compare it with`);
  }
  const from = givenFrom ?? usable.findLast((s) => s.startedAt < to.startedAt);
  if (from === undefined) {
    throw unavailable(`${appid} has no complete snapshot kept before ${to.snapshotId} to compare it with; a comparison needs two`);
  }
  return { from, to };
}

export interface Window {
  readonly fromMs: number;
  readonly toMs: number;
}

/**
 * Where a callback explains a difference: from `from`'s start to `to`'s end, widened by δ on both sides. A user
 * absent from `from` and present in `to` followed after `from` paged past them (at or after its start) and before
 * `to` paged past them (at or before its end), so the subscribe's CreateTime lies in that span; narrower bounds (from
 * `from`'s end to `to`'s start) would call a follow during either crawl unexplained. δ (the reconcile's window
 * margin) covers the skew between WeChat's CreateTime and our clock, which stamped T0 and T1.
 */
export function explanationWindow(pair: SnapshotPair, marginMs: number): Window {
  return { fromMs: pair.from.startedAt - marginMs, toMs: pair.to.endedAt + marginMs };
}

export type Side = 'added' | 'removed';
export const SIDES: readonly Side[] = ['added', 'removed'];

/** One group of the summary query: differences of one side, explained or not, with one scene and campaign. */
export interface DetailCount {
  readonly side: Side;
  readonly explained: boolean;
  readonly scene: string;
  readonly campaign: string;
  readonly count: number;
}

export interface SideCounts {
  readonly total: number;
  /** A delivered callback of the matching type inside the window says so. */
  readonly explained: number;
  /** No callback says so: its push was lost (or never reached the store). */
  readonly unexplained: number;
}

/** The differences of one scene or one campaign. */
export interface Concentration {
  /** '' when unknown: the subscribe concerned carried none, or the store holds no subscribe of the user. */
  readonly key: string;
  readonly added: number;
  readonly addedUnexplained: number;
  readonly removed: number;
  readonly removedUnexplained: number;
}

export interface Summary {
  readonly added: SideCounts;
  readonly removed: SideCounts;
  /** unexplained ÷ (added + removed): the share of pushes lost; null when the snapshots do not differ. */
  readonly unexplainedShare: number | null;
  /** Largest first (added + removed), then by key. */
  readonly byScene: readonly Concentration[];
  readonly byCampaign: readonly Concentration[];
}

function concentrate(counts: readonly DetailCount[], keyOf: (c: DetailCount) => string): Concentration[] {
  const groups = new Map<string, { added: number; addedUnexplained: number; removed: number; removedUnexplained: number }>();
  for (const c of counts) {
    const key = keyOf(c);
    const group = groups.get(key) ?? { added: 0, addedUnexplained: 0, removed: 0, removedUnexplained: 0 };
    if (c.side === 'added') {
      group.added += c.count;
      if (!c.explained) group.addedUnexplained += c.count;
    } else {
      group.removed += c.count;
      if (!c.explained) group.removedUnexplained += c.count;
    }
    groups.set(key, group);
  }
  return [...groups].map(([key, g]) => ({ key, ...g }))
    .sort((a, b) => b.added + b.removed - (a.added + a.removed) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export function summarize(counts: readonly DetailCount[]): Summary {
  const side = (which: Side): SideCounts => {
    const mine = counts.filter((c) => c.side === which);
    const total = mine.reduce((sum, c) => sum + c.count, 0);
    const explained = mine.filter((c) => c.explained).reduce((sum, c) => sum + c.count, 0);
    return { total, explained, unexplained: total - explained };
  };
  const added = side('added');
  const removed = side('removed');
  const differences = added.total + removed.total;
  return {
    added,
    removed,
    unexplainedShare: differences === 0 ? null : (added.unexplained + removed.unexplained) / differences,
    byScene: concentrate(counts, (c) => c.scene),
    byCampaign: concentrate(counts, (c) => c.campaign),
  };
}

/**
 * The comparisons to record after a reconcile of `upTo`: each comparable snapshot started no later than it, against
 * the comparable one before it, unless already recorded (`recorded` holds `from→to` keys). Recording what a failed
 * attempt or an upgrade left out as well keeps the history free of gaps among the kept snapshots.
 */
export function pairsToRecord(snapshots: readonly SnapshotEntry[], upTo: string, recorded: ReadonlySet<string>): SnapshotPair[] {
  const last = snapshots.find((s) => s.snapshotId === upTo);
  if (last === undefined) return [];
  const usable = snapshots.filter((s) => comparable(s) && s.startedAt <= last.startedAt);
  const pairs: SnapshotPair[] = [];
  for (let k = 1; k < usable.length; k += 1) {
    const from = usable[k - 1];
    const to = usable[k];
    if (from !== undefined && to !== undefined && !recorded.has(pairKey(from.snapshotId, to.snapshotId))) pairs.push({ from, to });
  }
  return pairs;
}

export function pairKey(from: string, to: string): string {
  return `${from}→${to}`;
}

/** What retention knows of a snapshot besides its entry: whether the store still holds members of it. */
export interface RetentionEntry extends SnapshotEntry {
  readonly hasMembers: boolean;
}

/**
 * The snapshots whose members retention drops: every snapshot that started before the `keep`-th newest complete,
 * loaded one (in progress, incomplete or complete alike: none of them can be compared any more), except those a
 * comparison is reading (`inUse`). One already dropped is dropped again when members of it are back (a record
 * redelivered after the drop) or its partition outlived a crash between the mark and the drop. With fewer than
 * `keep` complete snapshots nothing goes, so the newest complete one is never dropped (keep ≥ 2).
 */
export function snapshotsToDrop(snapshots: readonly RetentionEntry[], keep: number, inUse: ReadonlySet<string>): RetentionEntry[] {
  const complete = snapshots.filter((s) => snapshotState(s) === 'complete' && s.droppedAt === undefined)
    .sort((a, b) => b.startedAt - a.startedAt);
  const oldestKept = complete[keep - 1];
  if (oldestKept === undefined) return [];
  return snapshots.filter((s) => s.startedAt > 0 && s.startedAt < oldestKept.startedAt && !inUse.has(s.snapshotId)
    && (s.droppedAt === undefined || s.hasMembers));
}

/** A comparison as asked for on the command line or in the API's query string. */
export interface CompareOptions extends PairRequest {
  /** List the openids of one side instead of the summary. */
  readonly list?: Side;
}

/** Checks a comparison's options as given (strings or absent): a bad one is a usage error naming what is wrong. */
export function compareOptions(given: { readonly from?: string | undefined; readonly to?: string | undefined; readonly list?: string | undefined }): CompareOptions {
  for (const flag of ['from', 'to'] as const) {
    const id = given[flag];
    if (id !== undefined && !SNAPSHOT_ID.test(id)) throw new WxsyncError(ErrorCode.UsageInvalid, `--${flag} must be a snapshot id (${SNAPSHOT_ID.source})`);
  }
  const { list } = given;
  if (list !== undefined && !SIDES.includes(list as Side)) throw new WxsyncError(ErrorCode.UsageInvalid, `--list must be ${SIDES.join(' or ')}`);
  return {
    ...(given.from === undefined ? {} : { from: given.from }),
    ...(given.to === undefined ? {} : { to: given.to }),
    ...(list === undefined ? {} : { list: list as Side }),
  };
}
