/**
 * What each webhook is sent, pure: the transitions of one evaluation that concern it go in one message, and a
 * webhook gets at most `perMinute` messages a minute; what arrives beyond that is held and sent, grouped, in the
 * next message the limit allows. A group chat sees a burst as one message, never a flood.
 */
import type { AlertWebhook } from './webhook-config.ts';
import type { Transition } from './state.ts';

/** Transitions one message lists at most; beyond them it says how many more there were. */
export const MAX_LISTED = 30;

export interface Message {
  readonly transitions: readonly Transition[];
  /** Transitions left out of the list (too many at once). */
  readonly omitted: number;
}

export interface Outbox {
  /** When the messages of the last minute were sent. */
  readonly sentAt: readonly number[];
  readonly held: readonly Transition[];
  readonly omitted: number;
}

export const EMPTY_OUTBOX: Outbox = { sentAt: [], held: [], omitted: 0 };

/**
 * Whether a webhook takes a transition: those of the accounts it names (all accounts' when it names none, and only
 * then the process-wide ones, appid ''), of the kinds it names (all when none).
 */
export function routes(webhook: Pick<AlertWebhook, 'appids' | 'kinds'>, transition: Pick<Transition, 'kind' | 'appid'>): boolean {
  const account = webhook.appids === undefined || webhook.appids.includes(transition.appid);
  return account && (webhook.kinds === undefined || webhook.kinds.includes(transition.kind));
}

/** The outbox after an evaluation at `now` brought `transitions` (this webhook's), and the message to send now, if any. */
export function nextMessage(outbox: Outbox, transitions: readonly Transition[], now: number, perMinute: number): { outbox: Outbox; message?: Message } {
  const sentAt = outbox.sentAt.filter((at) => at > now - 60_000);
  const pending = [...outbox.held, ...transitions];
  const listed = pending.slice(0, MAX_LISTED);
  const omitted = outbox.omitted + pending.length - listed.length;
  if (listed.length === 0) return { outbox: { sentAt, held: [], omitted: 0 } };
  if (sentAt.length >= perMinute) return { outbox: { sentAt, held: listed, omitted } };
  return { outbox: { sentAt: [...sentAt, now], held: [], omitted: 0 }, message: { transitions: listed, omitted } };
}
