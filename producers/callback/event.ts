import { callbackEventId } from '../../lib/contracts/event-id.ts';
import { encodeUserEvent, userEventKey, type UserEvent } from '../../lib/contracts/user-event.ts';
import type { FollowMessage } from './parse.ts';
import { Rejection, reject } from './rejection.ts';

const QR_PREFIX = 'qrscene_';
/** The user-info API's name for a follow through a parametrised QR code (wechat-protocol.md §3). */
const QR_SCENE = 'ADD_SCENE_QR_CODE';
// The record contract's limits (lib/contracts/user-event.ts).
const MAX_SCENE = 128;
const MAX_TICKET = 256;

export interface EncodedEvent {
  readonly event: UserEvent;
  readonly key: string;
  readonly value: Buffer;
}

/** A verified follow message → the wx.user.events record, validated exactly as the consumer will validate it. */
export function toUserEvent(appid: string, message: FollowMessage, receivedAt: number): EncodedEvent | Rejection {
  // Only a subscribe through a QR code carries the `qrscene_` prefix; anything else in EventKey is not a scene.
  const qrScene = message.type === 'subscribe' && message.eventKey?.startsWith(QR_PREFIX) === true
    ? message.eventKey.slice(QR_PREFIX.length)
    : undefined;
  // Scene fields are extras: one that does not fit the record is dropped rather than losing the follow.
  const keepScene = qrScene !== undefined && qrScene.length <= MAX_SCENE;
  const keepTicket = keepScene && message.ticket !== undefined && message.ticket.length <= MAX_TICKET;
  const event: UserEvent = {
    v: 1,
    id: callbackEventId(appid, message.openid, message.createTime, message.type),
    appid,
    openid: message.openid,
    type: message.type,
    at: message.createTime * 1000,
    source: 'callback',
    ...(keepScene ? { scene: QR_SCENE, qrScene } : {}),
    ...(keepTicket ? { ticket: message.ticket } : {}),
    receivedAt,
  };
  try {
    return { event, key: userEventKey(event), value: encodeUserEvent(event) };
  } catch {
    // The contract's message names the field at fault; the sender only learns which refusal it was.
    return reject('invalid_field');
  }
}
