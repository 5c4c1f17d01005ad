import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import axios, { type AxiosInstance } from 'axios';
import { silentLogger } from '../../lib/logger.ts';
import { DEFAULT_SIM_OPTIONS, type SimOptions } from '../../sim/options.ts';
import { startSim, type ReadyAccount, type RunningSim } from '../../sim/server.ts';

export interface SimStats {
  readonly calls: Record<string, { calls: number; ok: number; errors: Record<string, number> } | undefined>;
  readonly pushes: Record<string, number>;
  readonly followers: number;
}

/** A simulator started in-process on a free port, with plain-HTTP helpers that play the API client. */
export class TestSim {
  readonly http: AxiosInstance;

  constructor(readonly sim: RunningSim) {
    this.http = axios.create({ baseURL: sim.apiBase, validateStatus: () => true, timeout: 30_000 });
  }

  account(i = 0): ReadyAccount {
    const account = this.sim.ready.accounts[i];
    assert.ok(account, `no account ${i}`);
    return account;
  }

  async get(path: string, params: Record<string, string> = {}): Promise<{ status: number; data: Record<string, unknown> }> {
    const res = await this.http.get<Record<string, unknown>>(path, { params });
    return { status: res.status, data: res.data };
  }

  async post(path: string, body: unknown, params: Record<string, string> = {}): Promise<{ status: number; data: Record<string, unknown> }> {
    const res = await this.http.post<Record<string, unknown>>(path, body, { params });
    return { status: res.status, data: res.data };
  }

  async token(i = 0): Promise<string> {
    const { appid, secret } = this.account(i);
    const { data } = await this.get('/cgi-bin/token', { grant_type: 'client_credential', appid, secret });
    assert.equal(typeof data['access_token'], 'string', JSON.stringify(data));
    return data['access_token'] as string;
  }

  /** A full /user/get crawl as the protocol note prescribes, checking every page's shape on the way. */
  async crawl(accessToken: string): Promise<{ openids: string[]; calls: number; total: number }> {
    const openids: string[] = [];
    let calls = 0;
    let next: string | undefined;
    for (;;) {
      const { data } = await this.get('/cgi-bin/user/get', next === undefined ? { access_token: accessToken } : { access_token: accessToken, next_openid: next });
      calls += 1;
      assert.equal(data['errcode'], undefined, JSON.stringify(data));
      const total = data['total'] as number;
      if (data['data'] === undefined) {
        assert.deepEqual(data, { total, count: 0, next_openid: '' });
        return { openids, calls, total };
      }
      const page = (data['data'] as { openid: string[] }).openid;
      assert.equal(data['count'], page.length);
      assert.ok(page.length > 0 && page.length <= 10_000);
      assert.equal(data['next_openid'], page.at(-1));
      openids.push(...page);
      next = page.at(-1);
    }
  }

  /** Moves the simulated clock forward to `seconds` (Unix time), which must not lie in its past. */
  async clockTo(seconds: number): Promise<void> {
    const { data } = await this.get('/__sim/clock');
    const advanceSeconds = seconds - (data['nowMs'] as number) / 1000;
    assert.ok(advanceSeconds >= 0, `the simulated clock is already past ${seconds}`);
    assert.equal((await this.post('/__sim/clock', { advanceSeconds })).status, 200);
  }

  async stats(i = 0): Promise<SimStats> {
    return (await this.http.get<SimStats>(`/__sim/accounts/${this.account(i).appid}/stats`)).data;
  }

  async followers(i = 0): Promise<string[]> {
    const res = await this.http.get<string>(`/__sim/accounts/${this.account(i).appid}/followers`, { responseType: 'text' });
    assert.equal(res.status, 200);
    return res.data === '' ? [] : res.data.trimEnd().split('\n');
  }

  close(): Promise<void> {
    return this.sim.close();
  }
}

export async function startTestSim(overrides: Partial<SimOptions> = {}): Promise<TestSim> {
  const accounts = overrides.accounts ?? overrides.followers?.length ?? 1;
  const options: SimOptions = {
    ...DEFAULT_SIM_OPTIONS,
    port: 0,
    accounts,
    followers: new Array<number>(accounts).fill(1000),
    pushTimeoutMs: 2000,
    ...overrides,
  };
  return new TestSim(await startSim(options, silentLogger()));
}

export interface ReceivedPush {
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: string;
}

export type Responder = (push: ReceivedPush) => { status: number; body: string; delayMs?: number };

/** A callback endpoint that records every push and answers as the responder says (default: 200 "success"). */
export class Receiver {
  readonly pushes: ReceivedPush[] = [];
  responder: Responder = () => ({ status: 200, body: 'success' });

  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://receiver.invalid');
      const push = { path: url.pathname, query: url.searchParams, body: Buffer.concat(chunks).toString('utf8') };
      this.pushes.push(push);
      const answer = this.responder(push);
      setTimeout(() => {
        if (!res.destroyed) res.writeHead(answer.status, { 'content-type': 'text/plain' }).end(answer.body);
      }, answer.delayMs ?? 0);
    });
  });

  /** Where the simulator's --callback-url should point. */
  base = '';

  static async start(): Promise<Receiver> {
    const receiver = new Receiver();
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.server.address() as AddressInfo;
    receiver.base = `http://127.0.0.1:${port}/wechat`;
    return receiver;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => { resolve(); });
      this.server.closeAllConnections();
    });
  }
}
