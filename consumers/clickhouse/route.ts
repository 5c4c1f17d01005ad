import type { Topics } from '../../lib/config.ts';
import { decodeSnapshotRecord, type SnapshotRecord } from '../../lib/contracts/snapshot.ts';
import { decodeUserEvent, type UserEvent } from '../../lib/contracts/user-event.ts';
import { decodeUserProfile, type UserProfile } from '../../lib/contracts/user-profile.ts';
import { dlqRecord, type DlqRecord } from '../../lib/contracts/dlq.ts';
import { ErrorCode, isWxsyncError, describeError } from '../../lib/errors.ts';
import type { InRecord } from '../../lib/kafka.ts';

/**
 * The Kafka record a row came from. Kept on every row so that a row ClickHouse refuses can be sent to the DLQ as
 * the record it came from, whole (a snapshot page yields two rows from one record).
 */
export type Origin = InRecord;

export interface UserEventRow {
  readonly origin: Origin;
  readonly id: string;
  readonly appid: string;
  readonly openid: string;
  readonly type: UserEvent['type'];
  readonly at: number;
  readonly source: UserEvent['source'];
  readonly scene: string;
  readonly qr_scene: string;
  readonly ticket: string;
  readonly received_at: number;
  readonly correction_snapshot_id: string;
  readonly correction_rule: string;
  /** UInt64 as a decimal string: it does not fit a JS number. */
  readonly ord: string;
}

export interface SnapshotRow {
  readonly origin: Origin;
  readonly appid: string;
  readonly snapshot_id: string;
  readonly kind: SnapshotRecord['kind'];
  readonly page: number;
  readonly started_at: number;
  readonly ended_at: number;
  readonly fetched_at: number;
  readonly complete: number;
  readonly reason: string;
  readonly total: number;
  readonly pages: number;
  readonly openids: number;
  readonly page_openids: number;
  readonly cursor: string;
  readonly next_openid: string;
}

/** The openids of one page: one row of snapshot_member_pages, which ClickHouse expands into snapshot_members. */
export interface SnapshotMemberPage {
  readonly origin: Origin;
  readonly appid: string;
  readonly snapshot_id: string;
  readonly page: number;
  /** The page record's fetchedAt: tells the rows of a page fetched again after a crash from the earlier fetch's. */
  readonly fetched_at: number;
  readonly openids: readonly string[];
}

export interface UserProfileRow {
  readonly origin: Origin;
  readonly appid: string;
  readonly openid: string;
  readonly subscribe: number;
  readonly subscribe_time: number;
  readonly unionid: string;
  readonly subscribe_scene: string;
  readonly qr_scene: number;
  readonly qr_scene_str: string;
  readonly tagid_list: readonly number[];
  readonly remark: string;
  readonly fetched_at: number;
}

/** Everything one flush writes: rows per table, and the records rejected to the DLQ. */
export interface Routed {
  readonly userEvents: UserEventRow[];
  readonly snapshots: SnapshotRow[];
  readonly snapshotMembers: SnapshotMemberPage[];
  readonly userProfiles: UserProfileRow[];
  readonly dlq: DlqRecord[];
}

export function emptyRouted(): Routed {
  return { userEvents: [], snapshots: [], snapshotMembers: [], userProfiles: [], dlq: [] };
}

/** Rows a routed set will write: what batch sizes are measured in (a snapshot page counts its openids). */
export function routedSize(routed: Routed): number {
  let members = 0;
  for (const page of routed.snapshotMembers) members += page.openids.length;
  return routed.userEvents.length + routed.snapshots.length + members + routed.userProfiles.length + routed.dlq.length;
}

export function appendRouted(into: Routed, from: Routed): void {
  for (const key of ['userEvents', 'snapshots', 'snapshotMembers', 'userProfiles', 'dlq'] as const) {
    const target = into[key] as unknown[];
    for (const row of from[key]) target.push(row);
  }
}

const AT_SHIFT = 22n;
const SOURCE_BIT = 21n;
const ARRIVAL_SHIFT = 1n;
/** Arrival is ranked from 5 minutes before `at` (clock skew) to about 12 minutes after; outside, clamped. */
const ARRIVAL_OFFSET_MS = 300_000;
const ARRIVAL_MAX = 0xfffff;

/**
 * The order of one user's events, packed into a UInt64 for ClickHouse's argMax:
 * - `at` (ms) in the high 42 bits: good until 2109, beyond the contracts' MAX_MS (before 2100), so no `at` a
 *   record may carry wraps (ClickHouse would wrap a UInt64 silently);
 * - then callbacks above corrections: a real event wins a tie with a correction (⚑);
 * - then arrival (`receivedAt` relative to `at`): WeChat's CreateTime has whole seconds, and a user who
 *   leaves and comes back within one second sends two events with the same `at`, pushed in order;
 * - then unsubscribe above subscribe, so two events alike in everything still order the same everywhere.
 * A redelivered record carries the same fields, so it gets the same order.
 */
export function eventOrder(event: Pick<UserEvent, 'at' | 'source' | 'type' | 'receivedAt'>): bigint {
  const arrival = Math.min(ARRIVAL_MAX, Math.max(0, event.receivedAt - event.at + ARRIVAL_OFFSET_MS));
  return (BigInt(event.at) << AT_SHIFT)
    | ((event.source === 'callback' ? 1n : 0n) << SOURCE_BIT)
    | (BigInt(arrival) << ARRIVAL_SHIFT)
    | (event.type === 'unsubscribe' ? 1n : 0n);
}

export function userEventRow(event: UserEvent, origin: Origin): UserEventRow {
  return {
    origin,
    id: event.id,
    appid: event.appid,
    openid: event.openid,
    type: event.type,
    at: event.at,
    source: event.source,
    scene: event.scene ?? '',
    qr_scene: event.qrScene ?? '',
    ticket: event.ticket ?? '',
    received_at: event.receivedAt,
    correction_snapshot_id: event.correction?.snapshotId ?? '',
    correction_rule: event.correction?.rule ?? '',
    ord: eventOrder(event).toString(),
  };
}

function snapshotRows(record: SnapshotRecord, origin: Origin, into: Routed): void {
  const base = {
    origin, appid: record.appid, snapshot_id: record.snapshotId, kind: record.kind, page: 0, started_at: 0, ended_at: 0,
    fetched_at: 0, complete: 0, reason: '', total: 0, pages: 0, openids: 0, page_openids: 0, cursor: '', next_openid: '',
  };
  switch (record.kind) {
    case 'begin':
      into.snapshots.push({ ...base, started_at: record.startedAt });
      return;
    case 'page':
      into.snapshots.push({
        ...base, page: record.page, fetched_at: record.fetchedAt, total: record.total,
        page_openids: record.openids.length, cursor: record.cursor, next_openid: record.nextOpenid,
      });
      if (record.openids.length > 0) {
        into.snapshotMembers.push({
          origin, appid: record.appid, snapshot_id: record.snapshotId, page: record.page, fetched_at: record.fetchedAt, openids: record.openids,
        });
      }
      return;
    case 'end':
      into.snapshots.push({
        ...base, started_at: record.startedAt, ended_at: record.endedAt, complete: record.complete ? 1 : 0,
        reason: record.reason ?? '', total: record.total, pages: record.pages, openids: record.openids,
      });
      return;
  }
}

function userProfileRow(profile: UserProfile, origin: Origin): UserProfileRow {
  return {
    origin,
    appid: profile.appid,
    openid: profile.openid,
    subscribe: profile.subscribe,
    subscribe_time: profile.subscribeTime ?? 0,
    unionid: profile.unionid ?? '',
    subscribe_scene: profile.subscribeScene ?? '',
    qr_scene: profile.qrScene ?? 0,
    qr_scene_str: profile.qrSceneStr ?? '',
    tagid_list: profile.tagidList,
    remark: profile.remark ?? '',
    fetched_at: profile.fetchedAt,
  };
}

/**
 * Decides where each record goes: rows for the tables, or the DLQ with its reason. Pure: the same records
 * always route to the same rows, which is what makes redelivery harmless.
 */
export function routeRecords(records: readonly InRecord[], topics: Topics, now: number): Routed {
  const routed = emptyRouted();
  for (const record of records) {
    try {
      switch (record.topic) {
        case topics.userEvents:
          routed.userEvents.push(userEventRow(decodeUserEvent(record.value), record));
          break;
        case topics.snapshots:
          snapshotRows(decodeSnapshotRecord(record.value), record, routed);
          break;
        case topics.userProfiles:
          routed.userProfiles.push(userProfileRow(decodeUserProfile(record.value), record));
          break;
        default:
          routed.dlq.push(dlqRecord(record, ErrorCode.RecordInvalid, `no route for topic ${record.topic}`, now));
      }
    } catch (error) {
      const code = isWxsyncError(error) ? error.code : ErrorCode.RecordUndecodable;
      routed.dlq.push(dlqRecord(record, code, describeError(error), now));
    }
  }
  return routed;
}
