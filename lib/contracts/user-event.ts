import {
  MAX_EVENT_BYTES, APPID, EVENT_ID, FieldReader, OPENID, SNAPSHOT_ID, checkRecordSize, compact, readVersionedObject, versionedReader,
} from './fields.ts';

export const USER_EVENT_VERSION = 1;
export type UserEventType = 'subscribe' | 'unsubscribe';
export type UserEventSource = 'callback' | 'correction';
/**
 * Which reconcile rule decided a correction: `missing` and `stale` from a snapshot difference, `live` from
 * batchget's live answer about a user who changed inside the snapshot's window.
 */
export type CorrectionRule = 'missing' | 'stale' | 'live';

/** A record of wx.user.events, keyed `appid:openid` so one user's events stay in one partition. */
export interface UserEvent {
  readonly v: typeof USER_EVENT_VERSION;
  readonly id: string;
  readonly appid: string;
  readonly openid: string;
  readonly type: UserEventType;
  /** WeChat's CreateTime in ms for callbacks; the decided time for corrections. */
  readonly at: number;
  readonly source: UserEventSource;
  readonly scene?: string;
  readonly qrScene?: string;
  readonly ticket?: string;
  readonly receivedAt: number;
  readonly correction?: { readonly snapshotId: string; readonly rule: CorrectionRule };
}

export function userEventKey(event: Pick<UserEvent, 'appid' | 'openid'>): string {
  return `${event.appid}:${event.openid}`;
}

export function validateUserEvent(reader: FieldReader): UserEvent {
  const source = reader.oneOf('source', ['callback', 'correction'] as const);
  const correctionReader = reader.object('correction');
  let correction: UserEvent['correction'];
  if (correctionReader !== undefined) {
    correction = {
      snapshotId: correctionReader.text('snapshotId', SNAPSHOT_ID),
      rule: correctionReader.oneOf('rule', ['missing', 'stale', 'live'] as const),
    };
    reader.adopt('correction', correctionReader);
  }
  if (source === 'correction' && correction === undefined) reader.problems.push('correction is required when source is correction');
  if (source === 'callback' && correction !== undefined) reader.problems.push('correction is only allowed when source is correction');
  const event = compact<UserEvent>({
    v: USER_EVENT_VERSION,
    id: reader.text('id', EVENT_ID),
    appid: reader.text('appid', APPID),
    openid: reader.text('openid', OPENID),
    type: reader.oneOf('type', ['subscribe', 'unsubscribe'] as const),
    at: reader.timestampMs('at'),
    source,
    scene: reader.optionalText('scene', undefined, 128),
    qrScene: reader.optionalText('qrScene', undefined, 128),
    ticket: reader.optionalText('ticket', undefined, 256),
    receivedAt: reader.timestampMs('receivedAt'),
    correction,
  });
  reader.check('user event');
  return event;
}

const WHAT = 'user event';

export function decodeUserEvent(raw: Buffer | null): UserEvent {
  return validateUserEvent(readVersionedObject(raw, WHAT, USER_EVENT_VERSION, MAX_EVENT_BYTES));
}

/**
 * Validates before encoding: the producing side never publishes what the consuming side would reject. The
 * event is checked as an object rather than by decoding the bytes: JSON keeps every value the rules accept
 * as it is, and the callback role's hot path parses nothing it has just written.
 */
export function encodeUserEvent(event: UserEvent): Buffer {
  validateUserEvent(versionedReader(event, WHAT, USER_EVENT_VERSION));
  const bytes = Buffer.from(JSON.stringify(event));
  checkRecordSize(bytes, WHAT, MAX_EVENT_BYTES);
  return bytes;
}
