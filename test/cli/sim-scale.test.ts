import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../../lib/config.ts';
import { silentLogger } from '../../lib/logger.ts';
import { USER_GET_API, WechatClients } from '../../lib/wechat/client.ts';
import { followerPages } from '../../lib/wechat/pager.ts';
import type { ReadyLine } from '../../sim/server.ts';

/**
 * The simulator issue's scale acceptance, against the real CLI: `wxsync sim --accounts 2 --followers 1000000`
 * is ready within 30 s, and our pager lists each account's million followers exactly as the truth export does.
 */

const FOLLOWERS = 1_000_000;
const READY_BUDGET_MS = 30_000;
/** How long to wait for the ready line at all: past the budget, so a slow start fails the assertion, not a timeout. */
const READY_WAIT_MS = 90_000;

type Sim = ChildProcessByStdio<null, Readable, Readable>;

async function readyLine(child: Sim, stderr: () => string): Promise<ReadyLine> {
  const lines = createInterface({ input: child.stdout });
  const signal = AbortSignal.timeout(READY_WAIT_MS);
  const exited = once(child, 'exit', { signal }).then(([code]) => {
    throw new Error(`wxsync sim exited (${String(code)}) before its ready line: ${stderr()}`);
  });
  try {
    const [line] = (await Promise.race([once(lines, 'line', { signal }), exited])) as [string];
    return JSON.parse(line) as ReadyLine;
  } finally {
    lines.close();
    exited.catch(() => undefined);
  }
}

/** The truth export, one openid per line, streamed into a Set (no 30 MB string is ever built). */
async function exportedFollowers(apiBase: string, appid: string): Promise<Set<string>> {
  const res = await fetch(`${apiBase}/__sim/accounts/${appid}/followers`, { signal: AbortSignal.timeout(60_000) });
  assert.equal(res.status, 200);
  const openids = new Set<string>();
  const decoder = new TextDecoder();
  let rest = '';
  // fetch's body is typed without its async iterator under @types/node 20.
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const lines = (rest + decoder.decode(chunk, { stream: true })).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) openids.add(line);
  }
  rest += decoder.decode();
  if (rest !== '') openids.add(rest);
  return openids;
}

describe('wxsync sim --accounts 2 --followers 1000000', () => {
  let child: Sim;
  let ready: ReadyLine;
  let readyMs: number;
  let clients: WechatClients | undefined;

  before(async () => {
    const started = performance.now();
    child = spawn(process.execPath, [
      path.join(packageRoot, 'bin', 'wxsync.js'), 'sim', '--port', '0', '--accounts', '2', '--followers', String(FOLLOWERS),
      '--user-get-daily-quota', '100000', '--log-level', 'warn',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000); });
    ready = await readyLine(child, () => stderr);
    readyMs = performance.now() - started;
  });

  after(async () => {
    clients?.close();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  });

  it('prints its ready line within 30 s', (t) => {
    t.diagnostic(`ready line after ${(readyMs / 1000).toFixed(2)} s (budget ${READY_BUDGET_MS / 1000} s)`);
    assert.equal(ready.ready, true);
    assert.deepEqual(ready.accounts.map((account) => account.followers), [FOLLOWERS, FOLLOWERS]);
    assert.ok(readyMs < READY_BUDGET_MS, `ready after ${Math.round(readyMs)} ms`);
  });

  it('the pager lists every follower of both accounts exactly as the truth export, in 101 user/get calls each', async (t) => {
    clients = new WechatClients({ apiBase: ready.apiBase, accounts: ready.accounts, logger: silentLogger(), http: { timeoutMs: 30_000 } });
    const own = clients;
    const started = performance.now();
    await Promise.all(ready.accounts.map(async ({ appid }) => {
      const seen = new Set<string>();
      let listed = 0;
      let pages = 0;
      let last = false;
      for await (const page of followerPages(own.get(appid))) {
        assert.equal(page.page, pages);
        assert.equal(page.total, FOLLOWERS);
        for (const openid of page.openids) seen.add(openid);
        listed += page.openids.length;
        pages += 1;
        last = page.last;
      }
      assert.ok(last);
      assert.equal(listed, FOLLOWERS, `${appid}: openids listed`);
      assert.equal(seen.size, FOLLOWERS, `${appid}: no openid twice`);

      const truth = await exportedFollowers(ready.apiBase, appid);
      assert.equal(truth.size, FOLLOWERS, `${appid}: truth export size`);
      let missing = 0;
      for (const openid of truth) if (!seen.has(openid)) missing += 1;
      assert.equal(missing, 0, `${appid}: followers in the export the pager did not list`);

      const res = await fetch(`${ready.apiBase}/__sim/accounts/${appid}/stats`, { signal: AbortSignal.timeout(10_000) });
      const stats = (await res.json()) as { calls: Record<string, { calls: number; ok: number; errors: Record<string, number> } | undefined> };
      const userGet = stats.calls[USER_GET_API];
      assert.deepEqual(userGet, { calls: 101, ok: 101, errors: {} }, `${appid}: 100 data pages and the terminal call`);
      assert.equal(pages, 101);
    }));
    t.diagnostic(`2 × ${FOLLOWERS} openids paged and checked against the export in ${((performance.now() - started) / 1000).toFixed(2)} s`);
  });
});
