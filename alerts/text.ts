/**
 * The words of alerts, in Chinese and English, pure: each line names the account (its name too when the accounts
 * file gives one) and the figure that fired it; a resolution says how it ended and how long it fired.
 */
import type { AlertKind } from './kinds.ts';
import type { Message } from './outbox.ts';
import type { Figures } from './rules.ts';
import type { Transition } from './state.ts';
import type { Language } from './webhook-config.ts';

export interface TextContext {
  /** appid → the name the accounts file gives it. */
  readonly names: ReadonlyMap<string, string>;
  /** The zone times are shown in (WXSYNC_REPORT_TZ). */
  readonly tz: string;
}

export interface RenderedMessage {
  readonly title: string;
  /** One line per transition (and one for those left out). */
  readonly lines: readonly string[];
  /** The title and the lines, as a plain-text message. */
  readonly text: string;
}

const num = (value: number | string | undefined): string => (typeof value === 'number' ? Math.round(value).toLocaleString('en-US') : value ?? '?');
const str = (figures: Figures, key: string): string | undefined => {
  const value = figures[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
};
const n = (figures: Figures, key: string): number => {
  const value = figures[key];
  return typeof value === 'number' ? value : 0;
};

export function duration(ms: number, language: Language): string {
  const minutes = Math.round(ms / 60_000);
  const [h, m, s] = language === 'zh' ? ['小时', '分钟', '秒'] : [' h', ' min', ' s'];
  if (ms < 60_000) return `${Math.round(ms / 1000)}${s}`;
  if (minutes < 60) return `${minutes}${m}`;
  return `${Math.floor(minutes / 60)}${h}${minutes % 60 === 0 ? '' : ` ${minutes % 60}${m}`}`;
}

function time(epochSeconds: number, tz: string): string {
  return `${new Intl.DateTimeFormat('sv-SE', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).format(epochSeconds * 1000)} (${tz})`;
}

/** The sentinel's action and outcome in Chinese where their form is known (sentinel_checks writes English). */
function zhNote(text: string): string {
  return text
    .replace(/^snapshot (\S+) started$/, '已自动启动快照 $1')
    .replace(/^snapshot (\S+) awaiting its reconcile$/, '快照 $1 等待对账')
    .replace(/^snapshot refused: (.*)$/, '快照被拒绝：$1')
    .replace(/^snapshot failed: (.*)$/, '快照失败：$1')
    .replace(/^no reconcile within (\d+) s$/, '$1 秒内未完成对账')
    .replace(/^reconcile (\S+): (.*)$/, '对账 $1：$2')
    .replace(/^reconciled: (\d+) corrections?/, '已对账：修正 $1 条')
    .replace(/; store = WeChat$/, '；库 = 微信')
    .replace(/; store ≠ WeChat \(drift (-?\d+)\)$/, '；库 ≠ 微信（漂移 $1）');
}

function account(appid: string, context: TextContext): string {
  const name = context.names.get(appid);
  return name === undefined ? appid : `${name} (${appid})`;
}

type Phrase = (a: string, f: Figures, context: TextContext) => string;
type Phrases = Readonly<Record<AlertKind, { readonly firing: Phrase; readonly resolved: Phrase }>>;

/** "WeChat 20,000, store 19,950: 50 lost" when the sentinel's row gave both totals, else the drift alone. */
function driftFigures(f: Figures, language: Language): string {
  const drift = n(f, 'drift');
  const size = num(Math.abs(drift));
  if (typeof f['wechatTotal'] !== 'number' || typeof f['storeCount'] !== 'number') {
    return language === 'zh' ? `库与微信相差 ${size} 个粉丝` : `the store is ${size} followers off WeChat's count`;
  }
  const inFlight = n(f, 'inFlight');
  if (language === 'zh') {
    return `微信 ${num(f['wechatTotal'])}，库中 ${num(f['storeCount'])}${inFlight === 0 ? '' : `（在途 ${num(inFlight)}）`}：${drift > 0 ? '少' : '多'} ${size}`;
  }
  return `WeChat ${num(f['wechatTotal'])}, store ${num(f['storeCount'])}${inFlight === 0 ? '' : ` (${num(inFlight)} in flight)`}: ${size} ${drift > 0 ? 'lost' : 'too many'}`;
}

const share = (part: number, whole: number): string => (whole > 0 ? `${(part / whole * 100).toFixed(2)}%` : '?');

const EN: Phrases = {
  drift: {
    firing: (a, f) => `Drift on ${a}: ${driftFigures(f, 'en')}${str(f, 'action') === undefined ? '' : `; ${str(f, 'action') ?? ''}`}`,
    resolved: (a, f) => `Drift on ${a} resolved: ${str(f, 'outcome') ?? 'the store equals WeChat\'s count again'}`,
  },
  pushes_lost: {
    firing: (a, f) => `Pushes lost on ${a}: the last reconcile corrected ${num(f['corrections'])} of ${num(f['followers'])} followers (${share(n(f, 'corrections'), n(f, 'followers'))})`,
    resolved: (a, f) => `Pushes lost on ${a} resolved: the last reconcile corrected ${num(f['corrections'])}`,
  },
  spool_not_draining: {
    firing: (_a, f) => `Callback spool not draining: ${num(f['depth'])} callbacks wait for Kafka`,
    resolved: (_a, f) => `Callback spool draining: ${num(f['depth'])} callbacks wait`,
  },
  consumer_stuck: {
    firing: (_a, f) => `Consumer stuck: records wait and nothing was stored for ${num(f['secondsSinceWrite'])} s`,
    resolved: () => 'Consumer storing again',
  },
  snapshot_failed: {
    firing: (a, f, c) => `Snapshot of ${a} failed or ended incomplete; last complete one: ${n(f, 'lastComplete') > 0 ? time(n(f, 'lastComplete'), c.tz) : 'none'}`,
    resolved: (a) => `Snapshot of ${a} complete again`,
  },
  snapshot_overdue: {
    firing: (a, f) => `Snapshot of ${a} overdue by ${duration(n(f, 'overdueSeconds') * 1000, 'en')}`,
    resolved: (a) => `Snapshot of ${a} no longer overdue`,
  },
  quota_low: {
    firing: (a, f) => `user/get quota of ${a} nearly spent: ${num(f['remaining'])} of ${num(f['limit'])} calls left today`,
    resolved: (a, f) => `user/get quota of ${a}: ${num(f['remaining'])} of ${num(f['limit'])} calls left`,
  },
  reconcile_refused: {
    firing: (a, f) => `Reconcile of ${a} refused${str(f, 'reason') === undefined ? '' : `: ${str(f, 'reason') ?? ''}`}; the store was left as it was`,
    resolved: (a) => `Reconcile of ${a} no longer refused`,
  },
  pushes_refused_spike: {
    firing: (_a, f) => `${num(f['perMinute'])} pushes refused a minute (${str(f, 'reasons') ?? '?'}): a wrong token or an attack`,
    resolved: (_a, f) => `Refused pushes back to ${num(f['perMinute'])} a minute`,
  },
  datacube_disagrees: {
    firing: (a, f) => `${a}: ${num(f['days'])} of the last 7 settled days differ from WeChat's datacube`,
    resolved: (a) => `${a}: the settled days agree with WeChat's datacube again`,
  },
};

const ZH: Phrases = {
  drift: {
    firing: (a, f) => `公众号 ${a} 粉丝数漂移：${driftFigures(f, 'zh')}${str(f, 'action') === undefined ? '' : `；${zhNote(str(f, 'action') ?? '')}`}`,
    resolved: (a, f) => `公众号 ${a} 漂移已恢复：${str(f, 'outcome') === undefined ? '库中粉丝数与微信一致' : zhNote(str(f, 'outcome') ?? '')}`,
  },
  pushes_lost: {
    firing: (a, f) => `公众号 ${a} 推送丢失：最近一次对账在 ${num(f['followers'])} 个粉丝中修正了 ${num(f['corrections'])} 个（${share(n(f, 'corrections'), n(f, 'followers'))}）`,
    resolved: (a, f) => `公众号 ${a} 推送丢失已恢复：最近一次对账修正 ${num(f['corrections'])} 个`,
  },
  spool_not_draining: {
    firing: (_a, f) => `回调本地缓存未消化：${num(f['depth'])} 条回调等待写入 Kafka`,
    resolved: (_a, f) => `回调本地缓存恢复消化：剩余 ${num(f['depth'])} 条`,
  },
  consumer_stuck: {
    firing: (_a, f) => `消费者卡住：有记录等待，已 ${num(f['secondsSinceWrite'])} 秒未写入存储`,
    resolved: () => '消费者恢复写入',
  },
  snapshot_failed: {
    firing: (a, f, c) => `公众号 ${a} 快照失败或不完整；最近一次完整快照：${n(f, 'lastComplete') > 0 ? time(n(f, 'lastComplete'), c.tz) : '无'}`,
    resolved: (a) => `公众号 ${a} 快照恢复完整`,
  },
  snapshot_overdue: {
    firing: (a, f) => `公众号 ${a} 快照逾期 ${duration(n(f, 'overdueSeconds') * 1000, 'zh')}`,
    resolved: (a) => `公众号 ${a} 快照不再逾期`,
  },
  quota_low: {
    firing: (a, f) => `公众号 ${a} 的 user/get 配额即将用尽：今日剩余 ${num(f['remaining'])} / ${num(f['limit'])} 次`,
    resolved: (a, f) => `公众号 ${a} 的 user/get 配额：剩余 ${num(f['remaining'])} / ${num(f['limit'])} 次`,
  },
  reconcile_refused: {
    firing: (a, f) => `公众号 ${a} 对账被拒绝${str(f, 'reason') === undefined ? '' : `：${str(f, 'reason') ?? ''}`}；库未改动`,
    resolved: (a) => `公众号 ${a} 对账不再被拒绝`,
  },
  pushes_refused_spike: {
    firing: (_a, f) => `每分钟 ${num(f['perMinute'])} 条推送被拒绝（${str(f, 'reasons') ?? '?'}）：Token 配置错误或遭到攻击`,
    resolved: (_a, f) => `被拒绝的推送回落到每分钟 ${num(f['perMinute'])} 条`,
  },
  datacube_disagrees: {
    firing: (a, f) => `公众号 ${a}：最近 7 个已结算日中有 ${num(f['days'])} 天与微信数据统计（datacube）不一致`,
    resolved: (a) => `公众号 ${a}：已结算日与微信数据统计重新一致`,
  },
};

/** One transition as a line. */
export function transitionLine(transition: Transition, language: Language, context: TextContext): string {
  const phrases = (language === 'zh' ? ZH : EN)[transition.kind];
  const a = account(transition.appid, context);
  if (transition.status === 'firing') return `${language === 'zh' ? '[告警]' : '[FIRING]'} ${phrases.firing(a, transition.figures, context)}`;
  const lasted = duration(transition.at - transition.firedAt, language);
  return language === 'zh'
    ? `[恢复] ${phrases.resolved(a, transition.figures, context)}（持续 ${lasted}）`
    : `[RESOLVED] ${phrases.resolved(a, transition.figures, context)} (after ${lasted})`;
}

export function renderMessage(message: Message, language: Language, context: TextContext): RenderedMessage {
  const firing = message.transitions.filter((t) => t.status === 'firing').length;
  const resolved = message.transitions.length - firing;
  const title = language === 'zh'
    ? `wxsync：${[firing > 0 ? `告警 ${firing} 条` : '', resolved > 0 ? `恢复 ${resolved} 条` : ''].filter(Boolean).join('，')}`
    : `wxsync: ${[firing > 0 ? `${firing} firing` : '', resolved > 0 ? `${resolved} resolved` : ''].filter(Boolean).join(', ')}`;
  const lines = message.transitions.map((t) => transitionLine(t, language, context));
  if (message.omitted > 0) lines.push(language === 'zh' ? `……另有 ${message.omitted} 条变化未列出` : `… and ${message.omitted} more changes not listed`);
  return { title, lines, text: [title, ...lines].join('\n') };
}
