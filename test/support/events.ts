import { callbackEventId } from '../../lib/contracts/event-id.ts';
import { encodeUserEvent, userEventKey, type UserEvent, type UserEventType } from '../../lib/contracts/user-event.ts';
import type { KafkaGateway, OutRecord } from '../../lib/kafka.ts';
import { lagging } from '../../producers/reconcile/watermark.ts';

export const T0 = Date.UTC(2026, 0, 1);

export function callbackEvent(appid: string, openid: string, type: UserEventType, createTimeSeconds: number, extra: Partial<UserEvent> = {}): UserEvent {
  return {
    v: 1,
    id: callbackEventId(appid, openid, createTimeSeconds, type),
    appid,
    openid,
    type,
    at: createTimeSeconds * 1000,
    source: 'callback',
    receivedAt: createTimeSeconds * 1000 + 5,
    ...extra,
  };
}

/** A 28-character openid in WeChat's style, deterministic in `n`. */
export function openidOf(n: number): string {
  return `o${n.toString(36).padStart(27, '0')}`;
}

export function eventRecord(event: UserEvent): OutRecord {
  return { key: userEventKey(event), value: encodeUserEvent(event) };
}

export async function produceAll(kafka: KafkaGateway, topic: string, records: readonly OutRecord[], chunk = 5000): Promise<void> {
  const producer = await kafka.producer();
  try {
    for (let i = 0; i < records.length; i += chunk) await producer.send(topic, records.slice(i, i + chunk));
  } finally {
    await producer.close();
  }
}

/** True once the group has committed every partition of every topic up to its end. */
export async function caughtUp(kafka: KafkaGateway, groupId: string, topics: readonly string[]): Promise<boolean> {
  for (const topic of topics) {
    if (lagging(await kafka.endOffsets(topic), await kafka.committedOffsets(groupId, topic)).length > 0) return false;
  }
  return true;
}
