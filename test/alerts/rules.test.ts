import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AlertKind } from '../../alerts/kinds.ts';
import { evaluateRules, type Sample } from '../../alerts/rules.ts';
import { step, type AlertStates, type Transition } from '../../alerts/state.ts';
import { transitionLine, type TextContext } from '../../alerts/text.ts';
import { THRESHOLDS, one, per, sample, type Metrics } from './support.ts';

const APPID = 'wx0123456789abcdef';
const EVAL_MS = 15_000;
const HOLD_MS = 60_000;
const FOR_MS: Partial<Record<AlertKind, number>> = { spool_not_draining: 300_000, consumer_stuck: 300_000 };
const CONTEXT: TextContext = { names: new Map([[APPID, '测试号']]), tz: 'Asia/Shanghai' };
const T0 = Date.parse('2026-11-26T02:00:00Z');

interface Case {
  readonly kind: AlertKind;
  /** The metrics at evaluation `i` while the condition holds, and while it does not. */
  readonly on: (i: number) => Metrics;
  readonly off: (i: number) => Metrics;
  /** Process-wide alerts name no account. */
  readonly account: boolean;
  /** What the firing line must say, in English and Chinese. */
  readonly en: RegExp;
  readonly zh: RegExp;
  /** Evaluations the condition stays true after the metrics stop saying so (a rate's window). */
  readonly lagTicks?: number;
}

let refused = 1000;

const CASES: readonly Case[] = [
  {
    kind: 'drift', account: true,
    on: () => ({ wxsync_sentinel_drift_followers: per(APPID, 50) }), off: () => ({ wxsync_sentinel_drift_followers: per(APPID, 0) }),
    en: /Drift on 测试号 \(wx0123456789abcdef\): the store is 50 followers off/, zh: /公众号 测试号 \(wx0123456789abcdef\) 粉丝数漂移：库与微信相差 50 个粉丝/,
  },
  {
    kind: 'pushes_lost', account: true,
    on: () => ({ wxsync_reconcile_last_corrections: per(APPID, 150), wxsync_reconcile_last_followers: per(APPID, 20_000) }),
    off: () => ({ wxsync_reconcile_last_corrections: per(APPID, 3), wxsync_reconcile_last_followers: per(APPID, 20_000) }),
    en: /corrected 150 of 20,000 followers \(0\.75%\)/, zh: /在 20,000 个粉丝中修正了 150 个/,
  },
  {
    kind: 'spool_not_draining', account: false,
    on: () => ({ wxsync_callback_spool_depth: one(40) }), off: () => ({ wxsync_callback_spool_depth: one(0) }),
    en: /Callback spool not draining: 40 callbacks wait for Kafka/, zh: /40 条回调等待写入 Kafka/,
  },
  {
    kind: 'consumer_stuck', account: false,
    on: (i) => ({ wxsync_consumer_stalled: one(1), wxsync_consumer_seconds_since_write: one(120 + i * 15) }),
    off: () => ({ wxsync_consumer_stalled: one(0), wxsync_consumer_seconds_since_write: one(1) }),
    en: /Consumer stuck: records wait and nothing was stored for \d{3} s/, zh: /已 \d{3} 秒未写入存储/,
  },
  {
    kind: 'snapshot_failed', account: true,
    on: () => ({ wxsync_snapshot_last_failed: per(APPID, 1), wxsync_snapshot_last_complete_timestamp_seconds: per(APPID, Date.parse('2026-11-25T19:00:00Z') / 1000) }),
    off: () => ({ wxsync_snapshot_last_failed: per(APPID, 0) }),
    en: /Snapshot of 测试号 \(wx0123456789abcdef\) failed or ended incomplete; last complete one: 2026-11-26 03:00 \(Asia\/Shanghai\)/,
    zh: /快照失败或不完整；最近一次完整快照：2026-11-26 03:00/,
  },
  {
    kind: 'snapshot_overdue', account: true,
    on: () => ({ wxsync_snapshot_overdue_seconds: per(APPID, 5400) }), off: () => ({ wxsync_snapshot_overdue_seconds: per(APPID, 0) }),
    en: /Snapshot of 测试号 \(wx0123456789abcdef\) overdue by 1 h 30 min/, zh: /快照逾期 1小时 30分钟/,
  },
  {
    kind: 'quota_low', account: true,
    on: () => ({ wxsync_userget_quota_remaining: per(APPID, 20), wxsync_userget_quota_limit: per(APPID, 500) }),
    off: () => ({ wxsync_userget_quota_remaining: per(APPID, 480), wxsync_userget_quota_limit: per(APPID, 500) }),
    en: /20 of 500 calls left today/, zh: /今日剩余 20 \/ 500 次/,
  },
  {
    kind: 'reconcile_refused', account: true,
    on: () => ({ wxsync_reconcile_last_refused: per(APPID, 1) }), off: () => ({ wxsync_reconcile_last_refused: per(APPID, 0) }),
    en: /Reconcile of 测试号 \(wx0123456789abcdef\) refused; the store was left as it was/, zh: /对账被拒绝；库未改动/,
  },
  {
    kind: 'pushes_refused_spike', account: false,
    // 100 more refused every 15 s; it fires at the first evaluation that sees 100 more than a minute before.
    on: (i) => {
      refused = 1000 + 100 * i;
      return { wxsync_callback_rejected_total: [{ labels: { reason: 'signature' }, value: refused }, { labels: { reason: 'stale' }, value: 2 }] };
    },
    off: () => ({ wxsync_callback_rejected_total: [{ labels: { reason: 'signature' }, value: refused }, { labels: { reason: 'stale' }, value: 2 }] }),
    // The last minute still holds the spike for three evaluations after it ends.
    lagTicks: 3,
    en: /100 pushes refused a minute \(signature 100\): a wrong token or an attack/, zh: /每分钟 100 条推送被拒绝（signature 100）/,
  },
  {
    kind: 'datacube_disagrees', account: true,
    on: () => ({ wxsync_datacube_disagreeing_days: per(APPID, 2) }), off: () => ({ wxsync_datacube_disagreeing_days: per(APPID, 0) }),
    en: /2 of the last 7 settled days differ from WeChat's datacube/, zh: /有 2 天与微信数据统计（datacube）不一致/,
  },
];

/**
 * Evaluations every 15 s on a fake clock: 4 with the condition false, `onTicks` with it true, then false to the
 * end. Every transition, with the evaluation it came at.
 */
function drive(c: Case, onTicks: number, total: number): { transitions: (Transition & { tick: number })[] } {
  let states: AlertStates = new Map();
  const history: Sample[] = [];
  const transitions: (Transition & { tick: number })[] = [];
  for (let i = 0; i < total; i += 1) {
    const at = T0 + i * EVAL_MS;
    const on = i >= 4 && i < 4 + onTicks;
    history.push(sample(at, on ? c.on(i - 4 + 1) : c.off(i)));
    const next = step(states, evaluateRules(history, THRESHOLDS), at, { forMs: (k) => FOR_MS[k] ?? 0, resolveHoldMs: HOLD_MS });
    states = next.states;
    transitions.push(...next.transitions.map((t) => ({ ...t, tick: i })));
  }
  return { transitions };
}

describe('every alert kind: fires once after its duration, not again while it holds, resolves once', () => {
  for (const c of CASES) {
    it(c.kind, () => {
      const forMs = FOR_MS[c.kind] ?? 0;
      const onTicks = forMs / EVAL_MS + 20;
      const { transitions } = drive(c, onTicks, 4 + onTicks + 10);
      assert.deepEqual(transitions.map((t) => [t.status, t.kind]), [['firing', c.kind], ['resolved', c.kind]], JSON.stringify(transitions));
      const [fired, resolved] = transitions as [Transition & { tick: number }, Transition & { tick: number }];
      assert.equal(fired.tick, 4 + forMs / EVAL_MS, `${c.kind} fires after its for duration (${forMs} ms), not before`);
      // False from evaluation 4 + onTicks on; resolved once false for the hold.
      assert.equal(resolved.tick, 4 + onTicks + (c.lagTicks ?? 0) + HOLD_MS / EVAL_MS);
      assert.equal(resolved.at - resolved.firedAt, (resolved.tick - fired.tick) * EVAL_MS);
      assert.equal(fired.appid, c.account ? APPID : '');
      const en = transitionLine(fired, 'en', CONTEXT);
      const zh = transitionLine(fired, 'zh', CONTEXT);
      assert.match(en, /^\[FIRING\] /);
      assert.match(zh, /^\[告警\] /);
      assert.match(en, c.en);
      assert.match(zh, c.zh);
      if (c.account) for (const line of [en, zh]) assert.ok(line.includes(`测试号 (${APPID})`), `names the account: ${line}`);
      assert.match(transitionLine(resolved, 'en', CONTEXT), /^\[RESOLVED\] .*\(after \d+ (min|s)\)$/);
      assert.match(transitionLine(resolved, 'zh', CONTEXT), /^\[恢复\] .*（持续 \d+(分钟|秒)）$/);
    });
  }
});

describe('the rules', () => {
  it('pushes_lost fires on the count alone or on the share alone', () => {
    const lost = (corrections: number, followers: number): boolean =>
      evaluateRules([sample(T0, { wxsync_reconcile_last_corrections: per(APPID, corrections), wxsync_reconcile_last_followers: per(APPID, followers) })], THRESHOLDS)[0]?.active ?? false;
    assert.equal(lost(101, 10_000_000), true, 'above the count');
    assert.equal(lost(100, 10_000_000), false, 'at the count, a tiny share');
    assert.equal(lost(2, 1000), true, 'a share above 0.1%');
    assert.equal(lost(1, 1000), false, 'a share of exactly 0.1%');
    assert.equal(lost(0, 0), false);
  });

  it('gives nothing for metrics no role of this process exposes, and evaluates each account apart', () => {
    assert.deepEqual(evaluateRules([sample(T0, {})], THRESHOLDS), []);
    const evaluations = evaluateRules([sample(T0, { wxsync_sentinel_drift_followers: [...per('wxa', 0), ...per('wxb', -3)] })], THRESHOLDS);
    assert.deepEqual(evaluations.map((e) => [e.appid, e.active, e.figures['drift']]), [['wxa', false, 0], ['wxb', true, -3]]);
  });

  it('a spool that drains is not "not draining", however full', () => {
    const depths = [500, 400, 300, 300];
    const history = depths.map((d, i) => sample(T0 + i * EVAL_MS, { wxsync_callback_spool_depth: one(d) }));
    const active = history.map((_, i) => evaluateRules(history.slice(0, i + 1), THRESHOLDS).find((e) => e.kind === 'spool_not_draining')?.active);
    assert.deepEqual(active, [false, false, false, true], 'not falling since the last evaluation: the `for` duration starts');
  });

  it('a refused-push counter reset by a restart counts what it holds since', () => {
    const history = [
      sample(T0, { wxsync_callback_rejected_total: [{ labels: { reason: 'signature' }, value: 5000 }] }),
      sample(T0 + 60_000, { wxsync_callback_rejected_total: [{ labels: { reason: 'signature' }, value: 10 }] }),
    ];
    assert.deepEqual(evaluateRules(history, THRESHOLDS).map((e) => [e.kind, e.active, e.figures['perMinute']]), [['pushes_refused_spike', false, 10]]);
  });
});
