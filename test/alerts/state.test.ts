import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Evaluation } from '../../alerts/rules.ts';
import { step, type AlertStates, type Transition } from '../../alerts/state.ts';

const OPTIONS = { forMs: (): number => 60_000, resolveHoldMs: 30_000 };

function run(frames: readonly (readonly Evaluation[])[], everyMs = 10_000): (Transition & { tick: number })[] {
  let states: AlertStates = new Map();
  const out: (Transition & { tick: number })[] = [];
  frames.forEach((evaluations, tick) => {
    const next = step(states, evaluations, tick * everyMs, OPTIONS);
    states = next.states;
    out.push(...next.transitions.map((t) => ({ ...t, tick })));
  });
  return out;
}

const drift = (active: boolean, appid = 'wxa', value = 5): Evaluation => ({ kind: 'drift', appid, active, figures: { drift: active ? value : 0 } });

describe('the state machine', () => {
  it('a condition that ends before its `for` duration never fires, and its clock starts again', () => {
    const frames = [...Array<boolean>(5).fill(true), false, ...Array<boolean>(5).fill(true)].map((a) => [drift(a)]);
    assert.deepEqual(run(frames), [], 'true for 40 s, false, true for 40 s: never 60 s in a row');
    assert.deepEqual(run([...frames, [drift(true)], [drift(true)]]).map((t) => [t.status, t.tick]), [['firing', 12]]);
  });

  it('a flapping condition fires once and resolves once, only after it stays false for the hold', () => {
    // True for a minute, then every other evaluation until evaluation 28; false from 29 on.
    const flapping = Array.from({ length: 30 }, (_, i) => [drift(i < 6 || i % 2 === 0)]);
    const transitions = run([...flapping, ...Array.from({ length: 5 }, () => [drift(false)])]);
    assert.deepEqual(transitions.map((t) => [t.status, t.tick]), [['firing', 6], ['resolved', 32]]);
  });

  it('keeps the newest figures while firing, and resolves with the figures of the time it resolves', () => {
    const transitions = run([
      ...Array.from({ length: 7 }, () => [drift(true, 'wxa', 5)]), [drift(true, 'wxa', 9)],
      ...Array.from({ length: 4 }, () => [drift(false)]),
    ]);
    assert.deepEqual(transitions.map((t) => [t.status, t.figures['drift']]), [['firing', 5], ['resolved', 0]]);
  });

  it('an alert whose metric disappears (its role stopped) resolves after the hold', () => {
    const transitions = run([...Array.from({ length: 7 }, () => [drift(true)]), [], [], [], []]);
    assert.deepEqual(transitions.map((t) => [t.status, t.tick, t.figures['drift']]), [['firing', 6, 5], ['resolved', 10, 5]]);
  });

  it('accounts are apart: one firing does not hold back or resolve another', () => {
    const frames = Array.from({ length: 12 }, (_, i) => [drift(true, 'wxa'), drift(i >= 3, 'wxb')]);
    assert.deepEqual(run(frames).map((t) => [t.status, t.appid, t.tick]), [['firing', 'wxa', 6], ['firing', 'wxb', 9]]);
  });
});
