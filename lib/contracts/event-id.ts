import { createHash } from 'node:crypto';
import type { UserEventType } from './user-event.ts';

function digest(parts: readonly (string | number)[]): string {
  // NUL cannot occur in any part (appids, openids and snapshot ids are validated), so the joined
  // form is unambiguous.
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);
}

/** ⚑ The id of a callback event: a retried or replayed push of the same event gets the same id. */
export function callbackEventId(appid: string, openid: string, createTimeSeconds: number, event: UserEventType): string {
  return digest(['callback', appid, openid, createTimeSeconds, event]);
}

/** ⚑ The id of a correction: reconciling the same snapshot twice emits the same ids. */
export function correctionEventId(snapshotId: string, openid: string, type: UserEventType): string {
  return digest(['correction', snapshotId, openid, type]);
}
