/**
 * The alert loop's shell: each tick samples the metrics of the roles in this process from their registry, keeps
 * the last minute or so of samples, runs the pure rules and state machine, reads from the store what a text needs
 * (the sentinel's check for a drift, the refused reconcile's reason), sets `wxsync_alerts_firing`, logs every
 * change and hands each webhook its grouped, rate-limited message. Sending is the delivery's, which never waits.
 *
 * The sentinel sets its drift gauge when it finds a drift and writes the check's row once its snapshot is under
 * way, and writes the outcome row only after the reconcile; so a drift's message waits (up to DETAILS_WAIT_MS)
 * for the row of the very check that fired it, and its resolution for the outcome of the last snapshot started
 * while it fired.
 */
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import type { Config } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import { Gauge, type Registry } from '../lib/metrics.ts';
import { reconcileRuns } from '../api/reconciles.ts';
import { clickhouseSentinelStore } from '../producers/snapshot/sentinel-store.ts';
import type { Delivery } from './delivery.ts';
import type { AlertKind } from './kinds.ts';
import { EMPTY_OUTBOX, nextMessage, routes, type Outbox } from './outbox.ts';
import { evaluateRules, RATE_WINDOW_MS, RULE_METRICS, type Sample, type Series } from './rules.ts';
import { alertKey, step, type AlertStates, type Transition } from './state.ts';
import { renderMessage, transitionLine, type TextContext } from './text.ts';

export interface AlertLoopDeps {
  readonly config: Config;
  readonly registry: Registry;
  readonly clickhouse: ClickHouseClient;
  readonly logger: Logger;
  readonly delivery: Delivery;
  readonly context: TextContext;
  readonly now?: () => number;
}

export interface AlertLoop {
  /** One evaluation: sample, evaluate, notify. */
  tick(): Promise<void>;
}

const WANTED: ReadonlySet<string> = new Set(RULE_METRICS);
/** How long a drift's message waits for the sentinel's row; then it goes with the metric's figure alone. */
export const DETAILS_WAIT_MS = 60_000;
/** The sentinel's rows of an account read for one message: far more than one drift's check, action and outcome. */
const RECENT_ROWS = 50;

/** The rule metrics' current values in the registry. */
export async function sampleRegistry(registry: Registry, at: number): Promise<Sample> {
  const metrics = new Map<string, Series[]>();
  for (const metric of await registry.getMetricsAsJSON()) {
    if (WANTED.has(metric.name)) metrics.set(metric.name, metric.values.map((v) => ({ labels: { ...v.labels } as Series['labels'], value: v.value })));
  }
  return { at, metrics };
}

export function createAlertLoop(deps: AlertLoopDeps): AlertLoop {
  const { config, registry, clickhouse, logger, delivery, context } = deps;
  const settings = config.alerts;
  const database = config.clickhouse.database;
  const now = deps.now ?? Date.now;
  const firing = new Gauge({ name: 'wxsync_alerts_firing', help: 'Alerts firing now, by kind and account (appid \'\' for process-wide ones)', labelNames: ['kind', 'appid'], registers: [registry] });
  const forMs = (kind: AlertKind): number => (kind === 'spool_not_draining' ? settings.spoolMs : kind === 'consumer_stuck' ? settings.stuckMs : 0);
  // The refused-push rate needs a sample a minute old; nothing needs older ones.
  const keepMs = RATE_WINDOW_MS + 2 * settings.evalMs;
  let history: Sample[] = [];
  let states: AlertStates = new Map();
  let outboxes: Outbox[] = settings.webhooks.map(() => EMPTY_OUTBOX);

  const sentinel = clickhouseSentinelStore(clickhouse, database);
  /** Per firing drift, when the check that fired it ran (ms): the sentinel's rows from then on are this drift's. */
  const firedChecks = new Map<string, number>();
  let waiting: { transition: Transition; since: number }[] = [];

  /** The transition with what the store adds to its figures; undefined while that is not written yet. */
  const detailed = async (transition: Transition): Promise<Transition | undefined> => {
    const key = alertKey(transition.kind, transition.appid);
    if (transition.kind === 'reconcile_refused' && transition.status === 'firing') {
      const last = await reconcileRuns(clickhouse, database, [transition.appid], 1).then((r) => r.runs[0], () => undefined);
      return last?.status === 'refused' && last.reason !== '' ? { ...transition, figures: { ...transition.figures, reason: last.reason } } : transition;
    }
    if (transition.kind !== 'drift') return transition;
    const firedCheck = transition.status === 'firing' ? Number(transition.figures['checkedAt'] ?? 0) * 1000 : firedChecks.get(key);
    if (firedCheck === undefined) return transition;
    let rows;
    try {
      rows = await sentinel.recent(transition.appid, RECENT_ROWS);
    } catch (error) {
      logger.debug({ err: error, appid: transition.appid }, 'the sentinel\'s checks cannot be read; the drift alert gives the metric alone');
      return transition;
    }
    // Newest first: the check that fired it, or for a resolution the last drift found while it fired (a correction
    // that left a drift is followed by another check and snapshot).
    const drift = rows.find((r) => r.result === 'drift' && r.checkedAt >= firedCheck - 1);
    if (transition.status === 'firing') {
      if (drift === undefined) return undefined;
      firedChecks.set(key, drift.checkedAt);
      return { ...transition, figures: { ...transition.figures, wechatTotal: drift.wechatTotal, storeCount: drift.storeCount, inFlight: drift.inFlight, action: drift.action } };
    }
    if (drift === undefined || drift.snapshotId === '') return transition;
    const outcome = rows.find((r) => r.result === 'outcome' && r.snapshotId === drift.snapshotId);
    return outcome === undefined ? undefined : { ...transition, figures: { ...transition.figures, outcome: outcome.outcome } };
  };

  /** The transitions ready to be told, in order: one waiting for its details holds back the later ones of its alert. */
  const release = async (at: number): Promise<Transition[]> => {
    const ready: Transition[] = [];
    const held: typeof waiting = [];
    const blocked = new Set<string>();
    for (const entry of waiting) {
      const key = alertKey(entry.transition.kind, entry.transition.appid);
      const done = blocked.has(key) ? undefined : await detailed(entry.transition);
      const told = done ?? (!blocked.has(key) && at - entry.since >= DETAILS_WAIT_MS ? entry.transition : undefined);
      if (told === undefined) {
        held.push(entry);
        blocked.add(key);
        continue;
      }
      ready.push(told);
      if (told.status === 'resolved') firedChecks.delete(key);
    }
    waiting = held;
    return ready;
  };

  return {
    async tick() {
      const at = now();
      history = [...history.filter((s) => s.at > at - keepMs), await sampleRegistry(registry, at)];
      const evaluated = step(states, evaluateRules(history, settings), at, { forMs, resolveHoldMs: settings.resolveHoldMs });
      states = evaluated.states;
      for (const t of evaluated.transitions) firing.set({ kind: t.kind, appid: t.appid }, t.status === 'firing' ? 1 : 0);
      waiting.push(...evaluated.transitions.map((transition) => ({ transition, since: at })));
      const transitions = await release(at);
      for (const t of transitions) {
        const fields = { kind: t.kind, appid: t.appid, figures: t.figures };
        if (t.status === 'firing') logger.warn(fields, `alert firing: ${transitionLine(t, 'en', context)}`);
        else logger.info(fields, `alert resolved: ${transitionLine(t, 'en', context)}`);
      }
      outboxes = settings.webhooks.map((webhook, index) => {
        const next = nextMessage(outboxes[index] ?? EMPTY_OUTBOX, transitions.filter((t) => routes(webhook, t)), at, settings.messagesPerMinute);
        if (next.message !== undefined) delivery.send(index, { message: next.message, rendered: renderMessage(next.message, webhook.language, context) });
        return next.outbox;
      });
    },
  };
}
