import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../../lib/logger.ts';
import { WechatClient, type WechatClientOptions } from '../../../lib/wechat/client.ts';
import { WechatHttp } from '../../../lib/wechat/http.ts';
import { DEFAULT_SIM_OPTIONS, type SimOptions } from '../../../sim/options.ts';
import { startSim, type ReadyAccount, type RunningSim } from '../../../sim/server.ts';
import type { TestEnv } from '../../support/env.ts';

/** Retries fast enough for tests; the backoff shape itself is tested in http.test.ts. */
export const FAST_RETRY = { attempts: 4, initialMs: 2, maxMs: 10, rateLimitedInitialMs: 5, rateLimitedMaxMs: 20 } as const;

export interface ApiStats {
  readonly calls: number;
  readonly ok: number;
  readonly errors: Record<string, number>;
}

/** The WeChat simulator (sim/) started in-process on a free port, with its /__sim admin endpoints wrapped. */
export class SimHarness {
  readonly http: WechatHttp;
  private constructor(readonly sim: RunningSim) {
    this.http = new WechatHttp({ baseUrl: sim.apiBase, logger: silentLogger(), timeoutMs: 30_000 });
  }

  static async start(overrides: Partial<SimOptions> = {}): Promise<SimHarness> {
    const accounts = overrides.followers?.length ?? overrides.accounts ?? 1;
    const options: SimOptions = { ...DEFAULT_SIM_OPTIONS, port: 0, accounts, logLevel: 'silent', ...overrides };
    return new SimHarness(await startSim(options, silentLogger()));
  }

  get apiBase(): string {
    return this.sim.apiBase;
  }

  account(i = 0): ReadyAccount {
    const account = this.sim.ready.accounts[i];
    assert.ok(account, `the simulator has no account ${i}`);
    return account;
  }

  client(i = 0, options: Partial<Omit<WechatClientOptions, 'account' | 'http'>> = {}): WechatClient {
    return new WechatClient({ account: this.account(i), http: this.http, logger: silentLogger(), retry: FAST_RETRY, ...options });
  }

  async admin(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.apiBase}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 200, `${method} ${path}: ${JSON.stringify(json)}`);
    return json;
  }

  faults(i: number, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.admin('POST', `/__sim/accounts/${this.account(i).appid}/faults`, body);
  }

  /** The truth: GET /__sim/accounts/:appid/followers, one openid per line. */
  async followers(i = 0): Promise<string[]> {
    const res = await fetch(`${this.apiBase}/__sim/accounts/${this.account(i).appid}/followers`);
    assert.equal(res.status, 200);
    const text = await res.text();
    return text === '' ? [] : text.trimEnd().split('\n');
  }

  async calls(i: number, api: string): Promise<ApiStats> {
    const stats = await this.admin('GET', `/__sim/accounts/${this.account(i).appid}/stats`);
    const calls = stats['calls'] as Record<string, ApiStats | undefined>;
    return calls[api] ?? { calls: 0, ok: 0, errors: {} };
  }

  async resetStats(i = 0): Promise<void> {
    await this.admin('POST', `/__sim/accounts/${this.account(i).appid}/stats/reset`);
  }

  /**
   * Points a test's `wxsync` processes at this simulator: its first account in WXSYNC_ACCOUNTS, its API base.
   * The account's callback mode is the simulator's push mode: every simulated account has a key, which alone
   * would make wxsync expect safe mode.
   */
  configure(t: TestEnv): void {
    const accounts = path.join(t.dataDir, 'accounts.json');
    const { appid, secret, token, encodingAESKey } = this.account();
    writeFileSync(accounts, JSON.stringify([{ appid, secret, token, encodingAESKey, mode: this.sim.ready.mode }]));
    t.env['WXSYNC_ACCOUNTS'] = accounts;
    t.env['WECHAT_API_BASE'] = this.apiBase;
  }

  async close(): Promise<void> {
    this.http.close();
    await this.sim.close();
  }
}
