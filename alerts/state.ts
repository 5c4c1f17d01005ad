/**
 * Fire once, resolve once, pure: per (kind, appid), a condition that holds for its `for` duration fires; it does
 * not fire again while it holds; it resolves once it has been false for the resolve hold, so a condition that
 * flickers (a gauge crossing its threshold each evaluation) gives one alert, not one a tick.
 */
import type { AlertKind } from './kinds.ts';
import type { Evaluation, Figures } from './rules.ts';

export interface AlertState {
  readonly kind: AlertKind;
  readonly appid: string;
  readonly phase: 'pending' | 'firing';
  /** When the condition started holding (pending) or when the alert fired (firing). */
  readonly since: number;
  /** Firing: when the condition was last seen false, while the resolve hold runs. */
  readonly falseSince?: number;
  readonly figures: Figures;
}

export type AlertStates = ReadonlyMap<string, AlertState>;

export interface Transition {
  readonly status: 'firing' | 'resolved';
  readonly kind: AlertKind;
  readonly appid: string;
  /** Firing: the figures that fired it; resolved: the figures now. */
  readonly figures: Figures;
  /** When it fired; for a resolution, `at` minus this is how long it fired. */
  readonly firedAt: number;
  readonly at: number;
}

export interface StepOptions {
  /** How long a condition must hold before it fires. */
  readonly forMs: (kind: AlertKind) => number;
  readonly resolveHoldMs: number;
}

export function alertKey(kind: AlertKind, appid: string): string {
  return `${kind}\u0000${appid}`;
}

/**
 * The states after one evaluation at `now`, and what fired or resolved. A key no evaluation mentions (its metric
 * gone) counts as false.
 */
export function step(states: AlertStates, evaluations: readonly Evaluation[], now: number, options: StepOptions): { states: AlertStates; transitions: Transition[] } {
  const next = new Map<string, AlertState>();
  const transitions: Transition[] = [];
  const seen = new Map(evaluations.map((e) => [alertKey(e.kind, e.appid), e]));
  for (const [key, state] of states) {
    if (!seen.has(key)) seen.set(key, { kind: state.kind, appid: state.appid, active: false, figures: state.figures });
  }
  for (const [key, evaluation] of seen) {
    const { kind, appid, active, figures } = evaluation;
    const state = states.get(key);
    if (state === undefined || state.phase === 'pending') {
      if (!active) continue;
      const since = state?.since ?? now;
      if (now - since >= options.forMs(kind)) {
        next.set(key, { kind, appid, phase: 'firing', since: now, figures });
        transitions.push({ status: 'firing', kind, appid, figures, firedAt: now, at: now });
      } else {
        next.set(key, { kind, appid, phase: 'pending', since, figures });
      }
      continue;
    }
    if (active) {
      next.set(key, { kind, appid, phase: 'firing', since: state.since, figures });
      continue;
    }
    const falseSince = state.falseSince ?? now;
    if (now - falseSince >= options.resolveHoldMs) {
      transitions.push({ status: 'resolved', kind, appid, figures, firedAt: state.since, at: now });
    } else {
      next.set(key, { ...state, falseSince });
    }
  }
  return { states: next, transitions };
}
