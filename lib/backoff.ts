import { setTimeout as sleepFor } from 'node:timers/promises';

/**
 * Exponential backoff with "equal jitter": half the delay is fixed so retries never hammer a recovering
 * dependency, half is random so many retriers do not retry in lockstep.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Resolves after `ms`, or early (without throwing) when the signal aborts. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleepFor(ms, undefined, signal === undefined ? undefined : { signal });
  } catch (error) {
    if ((error as { name?: unknown }).name !== 'AbortError') throw error;
  }
}
