import { beijingDay } from '../lib/wechat/datacube.ts';
import { minuteOf } from './clock.ts';
import type { Rng } from './random.ts';

/**
 * Per-account quotas, injected faults and call counters. Every WeChat API call of an account passes
 * `admit` once it is authenticated; the first fault that applies decides the errcode.
 */

export const API_PATHS = [
  '/cgi-bin/token',
  '/cgi-bin/stable_token',
  '/cgi-bin/user/get',
  '/cgi-bin/user/info',
  '/cgi-bin/user/info/batchget',
  '/cgi-bin/openapi/quota/get',
  '/cgi-bin/clear_quota',
  '/datacube/getusersummary',
  '/datacube/getusercumulate',
] as const;
export type ApiPath = (typeof API_PATHS)[number];

export function isApiPath(path: string): path is ApiPath {
  return (API_PATHS as readonly string[]).includes(path);
}

/** Daily limits of a newly registered account (wechat-protocol.md §7.2); batchget's and datacube's are undocumented. */
export const DEFAULT_DAILY_LIMITS: Readonly<Record<ApiPath, number>> = {
  '/cgi-bin/token': 2000,
  '/cgi-bin/stable_token': 500_000,
  '/cgi-bin/user/get': 500,
  '/cgi-bin/user/info': 5_000_000,
  '/cgi-bin/user/info/batchget': 5_000_000,
  '/cgi-bin/openapi/quota/get': 100_000,
  '/cgi-bin/clear_quota': 10,
  '/datacube/getusersummary': 1000,
  '/datacube/getusercumulate': 1000,
};

export interface FaultSettings {
  /** Probability that a call answers -1 (system busy). */
  readonly busyRate: number;
  /** Delay before every API answer. */
  readonly latencyMs: number;
  /** Calls per minute per API before 45011; 0 = no limit. */
  readonly perMinuteLimit: number;
  /** Probability that a push is never delivered. */
  readonly dropRate: number;
  /** Probability that a push is delivered twice. */
  readonly dupRate: number;
}

/** "Let the next `after` calls of `api` through, then fail `count` calls with `errcode`." */
export interface FailRule {
  readonly api: ApiPath | '*';
  readonly errcode: number;
  after: number;
  count: number;
}

export interface QuotaView {
  readonly daily_limit: number;
  readonly used: number;
  readonly remain: number;
}

export interface ApiStats {
  calls: number;
  ok: number;
  /** errcode → calls answered with it. */
  errors: Record<string, number>;
}

export class AccountLimits {
  faults: FaultSettings;
  private readonly limits = new Map<ApiPath, number>();
  private readonly used = new Map<ApiPath, number>();
  private usedDay = -1;
  private readonly perMinute = new Map<ApiPath, number>();
  private minute = -1;
  private rules: FailRule[] = [];
  private stats = new Map<ApiPath, ApiStats>();

  constructor(faults: FaultSettings, dailyLimits: Readonly<Partial<Record<ApiPath, number>>> = {}) {
    this.faults = faults;
    for (const api of API_PATHS) this.limits.set(api, dailyLimits[api] ?? DEFAULT_DAILY_LIMITS[api]);
  }

  /** 0 to let the call through (and count it against the quotas), else the errcode to answer. */
  admit(api: ApiPath, now: number, rng: Rng): number {
    this.roll(now);
    const rule = this.rules.find((r) => r.api === api || r.api === '*');
    if (rule !== undefined) {
      if (rule.after > 0) {
        rule.after -= 1;
      } else {
        rule.count -= 1;
        if (rule.count <= 0) this.rules = this.rules.filter((r) => r !== rule);
        return rule.errcode;
      }
    }
    if (rng.chance(this.faults.busyRate)) return -1;
    const minuteCalls = this.perMinute.get(api) ?? 0;
    if (this.faults.perMinuteLimit > 0 && minuteCalls >= this.faults.perMinuteLimit) return 45011;
    const used = this.used.get(api) ?? 0;
    if (used >= this.limit(api)) return 45009;
    this.perMinute.set(api, minuteCalls + 1);
    this.used.set(api, used + 1);
    return 0;
  }

  record(api: ApiPath, errcode: number): void {
    let stats = this.stats.get(api);
    if (stats === undefined) {
      stats = { calls: 0, ok: 0, errors: {} };
      this.stats.set(api, stats);
    }
    stats.calls += 1;
    if (errcode === 0) stats.ok += 1;
    else stats.errors[String(errcode)] = (stats.errors[String(errcode)] ?? 0) + 1;
  }

  quota(api: ApiPath, now: number): QuotaView {
    this.roll(now);
    const limit = this.limit(api);
    const used = this.used.get(api) ?? 0;
    return { daily_limit: limit, used, remain: Math.max(0, limit - used) };
  }

  setDailyLimit(api: ApiPath, limit: number): void {
    this.limits.set(api, limit);
  }

  /** Leaves `remain` calls of today's quota by marking the rest used. */
  setRemaining(api: ApiPath, remain: number, now: number): void {
    this.roll(now);
    this.used.set(api, Math.max(0, this.limit(api) - remain));
  }

  /** What /cgi-bin/clear_quota does: today's counters start over. */
  clearQuota(): void {
    this.used.clear();
  }

  addRule(rule: FailRule): void {
    this.rules.push(rule);
  }

  clearRules(): void {
    this.rules = [];
  }

  pendingRules(): readonly FailRule[] {
    return this.rules.map((rule) => ({ ...rule }));
  }

  statsView(): Record<string, ApiStats> {
    const view: Record<string, ApiStats> = {};
    for (const [api, stats] of this.stats) view[api] = { calls: stats.calls, ok: stats.ok, errors: { ...stats.errors } };
    return view;
  }

  resetStats(): void {
    this.stats = new Map();
  }

  private limit(api: ApiPath): number {
    return this.limits.get(api) ?? DEFAULT_DAILY_LIMITS[api];
  }

  private roll(now: number): void {
    const day = beijingDay(now);
    if (day !== this.usedDay) {
      this.usedDay = day;
      this.used.clear();
    }
    const minute = minuteOf(now);
    if (minute !== this.minute) {
      this.minute = minute;
      this.perMinute.clear();
    }
  }
}
