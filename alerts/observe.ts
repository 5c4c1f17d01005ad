/**
 * The alert loop's shell: each tick samples the metrics of the roles in this process from their registry, keeps
 * the last minute or so of samples, runs the pure rules and state machine, reads from the store what a text needs
 * (the sentinel's check for a drift, the refused reconcile's reason), sets `wxsync_alerts_firing`, logs every
 * change and hands each webhook its grouped, rate-limited message. Sending is the delivery's, which never waits.
 */
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import type { Config } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import { Gauge, type Registry } from '../lib/metrics.ts';
import { reconcileRuns } from '../api/reconciles.ts';
import type { Delivery } from './delivery.ts';
import type { AlertKind } from './kinds.ts';
import { EMPTY_OUTBOX, nextMessage, routes, type Outbox } from './outbox.ts';
import { evaluateRules, RATE_WINDOW_MS, RULE_METRICS, type Figures, type Sample, type Series } from './rules.ts';
import { step, type AlertStates, type Transition } from './state.ts';
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

/** The rule metrics' current values in the registry. */
export async function sampleRegistry(registry: Registry, at: number): Promise<Sample> {
  const metrics = new Map<string, Series[]>();
  for (const metric of await registry.getMetricsAsJSON()) {
    if (WANTED.has(metric.name)) metrics.set(metric.name, metric.values.map((v) => ({ labels: { ...v.labels } as Series['labels'], value: v.value })));
  }
  return { at, metrics };
}

interface SentinelRow {
  last_total: string;
  last_store: string;
  last_in_flight: string;
  last_action: string;
  action_at: string;
  last_outcome: string;
  outcome_at: string;
}

/**
 * From the sentinel's checks of an account: the totals of its newest one that found a drift, the latest action it took and the latest
 * outcome, when that outcome came after the action (an older one belongs to an earlier drift). Undefined while
 * the table does not exist or cannot be read: the text then gives the metric's figure alone.
 */
interface SentinelFigures {
  readonly totals: Figures;
  readonly action: string;
  readonly outcome: string;
}

async function sentinelFigures(clickhouse: ClickHouseClient, database: string, appid: string, logger: Logger): Promise<SentinelFigures | undefined> {
  try {
    const [row] = await (await clickhouse.query({
      query: `SELECT argMaxIf(wechat_total, checked_at, result = 'drift') AS last_total, argMaxIf(store_count, checked_at, result = 'drift') AS last_store,
          argMaxIf(in_flight, checked_at, result = 'drift') AS last_in_flight,
          argMaxIf(action, checked_at, action != '') AS last_action, toUnixTimestamp64Milli(maxIf(checked_at, action != '')) AS action_at,
          argMaxIf(outcome, checked_at, outcome != '') AS last_outcome, toUnixTimestamp64Milli(maxIf(checked_at, outcome != '')) AS outcome_at
        FROM ${database}.sentinel_checks WHERE appid = {appid:String} HAVING countIf(result = 'drift') > 0`,
      query_params: { appid },
      format: 'JSONEachRow',
    })).json<SentinelRow>();
    if (row === undefined) return undefined;
    return {
      totals: { wechatTotal: Number(row.last_total), storeCount: Number(row.last_store), inFlight: Number(row.last_in_flight) },
      action: row.last_action,
      outcome: row.last_outcome !== '' && Number(row.outcome_at) >= Number(row.action_at) ? row.last_outcome : '',
    };
  } catch (error) {
    logger.debug({ err: error, appid }, 'the sentinel\'s checks cannot be read; the drift alert gives the metric alone');
    return undefined;
  }
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

  /** What the store adds to a transition's figures. */
  const enrich = async (transition: Transition): Promise<Transition> => {
    if (transition.kind === 'drift') {
      const found = await sentinelFigures(clickhouse, database, transition.appid, logger);
      if (found === undefined) return transition;
      const { totals, action, outcome } = found;
      return { ...transition, figures: { ...transition.figures, ...(transition.status === 'firing' ? { ...totals, action } : { outcome }) } };
    }
    if (transition.kind === 'reconcile_refused' && transition.status === 'firing') {
      const last = await reconcileRuns(clickhouse, database, [transition.appid], 1).then((r) => r.runs[0], () => undefined);
      if (last?.status === 'refused' && last.reason !== '') return { ...transition, figures: { ...transition.figures, reason: last.reason } };
    }
    return transition;
  };

  return {
    async tick() {
      const at = now();
      history = [...history.filter((s) => s.at > at - keepMs), await sampleRegistry(registry, at)];
      const evaluated = step(states, evaluateRules(history, settings), at, { forMs, resolveHoldMs: settings.resolveHoldMs });
      states = evaluated.states;
      const transitions = await Promise.all(evaluated.transitions.map(enrich));
      for (const t of transitions) {
        firing.set({ kind: t.kind, appid: t.appid }, t.status === 'firing' ? 1 : 0);
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
