import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { main } from '../../cli/snapshot.ts';
import { packageRoot } from '../../lib/config.ts';
import { decodeSnapshotRecord, type SnapshotPage } from '../../lib/contracts/snapshot.ts';
import { waitFor } from '../support/env.ts';
import { freePorts } from '../../lib/ports.ts';
import { snapshotHarness, type SnapshotHarness } from '../producers/snapshot/support.ts';

const USER_GET = '/cgi-bin/user/get';

const BIN = path.join(packageRoot, 'bin', 'wxsync.js');

function cli(h: SnapshotHarness, args: readonly string[], env: Record<string, string> = {}) {
  return spawn(process.execPath, [BIN, 'snapshot', ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...h.t.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function exit(child: ReturnType<typeof cli>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

describe('wxsync snapshot <appid>', { timeout: 180_000 }, () => {
  let h: SnapshotHarness;
  before(async () => { h = await snapshotHarness({ followers: [40_000] }, false); });
  after(async () => { await h.close(); });

  it('SIGKILL after the second of five pages, then a restart: the same snapshot finishes complete, earlier pages not fetched again', async () => {
    const appid = h.sim.account().appid;
    await h.sim.faults(0, { latencyMs: 400 });
    const checkpointFile = path.join(h.t.config.snapshot.dir, `${appid}.checkpoint.json`);
    const first = cli(h, [appid]);
    const firstExit = exit(first);
    const checkpoint = await waitFor('the second page to be checkpointed', 60_000, () => {
      if (!existsSync(checkpointFile)) return undefined;
      const cp = JSON.parse(readFileSync(checkpointFile, 'utf8')) as { page: number; snapshotId: string };
      return cp.page >= 2 ? cp : undefined;
    }, 20);
    first.kill('SIGKILL');
    assert.equal((await firstExit).code, null);
    assert.equal(checkpoint.page, 2);
    await h.sim.faults(0, { latencyMs: 0 });
    await h.sim.resetStats(0);

    const second = await exit(cli(h, [appid, '--json']));
    assert.equal(second.code, 0, second.stderr);
    const result = JSON.parse(second.stdout) as { status: string; snapshotId: string; pages: number; openids: number; resumedFrom: number; calls: number };
    assert.equal(result.status, 'complete');
    assert.equal(result.snapshotId, checkpoint.snapshotId, 'the same snapshot');
    assert.equal(result.resumedFrom, 2);
    assert.equal(result.pages, 5);
    assert.equal(result.calls, 3);
    assert.equal((await h.sim.calls(0, USER_GET)).calls, 3, 'pages 0 and 1 were not fetched again');

    const records = (await h.kafka.readAll(h.t.config.kafka.topics.snapshots, 30_000))
      .map((r) => decodeSnapshotRecord(r.value)).filter((r) => r.snapshotId === result.snapshotId);
    const pages = records.filter((r): r is SnapshotPage => r.kind === 'page');
    assert.deepEqual([...new Set(pages.map((p) => p.page))].sort(), [0, 1, 2, 3, 4]);
    assert.equal(pages.filter((p) => p.page < 2).length, 2, 'pages 0 and 1 were published once');
    const openids = new Set(pages.flatMap((p) => p.openids));
    assert.deepEqual([...openids].sort(), (await h.sim.followers()).sort(), 'the exact set');
    const ends = records.filter((r) => r.kind === 'end');
    assert.equal(ends.length, 1);
    assert.ok(ends[0]?.kind === 'end' && ends[0].complete);
  });

  it('two processes for the same account at once, with separate snapshot directories (as on two machines): only one runs', async () => {
    const appid = h.sim.account().appid;
    // Five pages at 1 s each: the runs overlap however unevenly the two processes start.
    await h.sim.faults(0, { latencyMs: 1000 });
    const elsewhere = { WXSYNC_SNAPSHOT_DIR: path.join(h.t.dataDir, 'other-machine') };
    const results = await Promise.all([exit(cli(h, [appid])), exit(cli(h, [appid], elsewhere))]);
    await h.sim.faults(0, { latencyMs: 0 });
    assert.deepEqual(results.map((r) => r.code).sort(), [0, 4]);
    assert.match(results.find((r) => r.code === 4)?.stderr ?? '', /already running/);
  });

  it('refuses a missing appid with its usage', async () => {
    await assert.rejects(main([]), /usage: wxsync snapshot <appid>/);
    await assert.rejects(main(['a', 'b']), /usage/);
  });
});

describe('wxsync snapshot <appid> beside a running wxsync run', { timeout: 180_000 }, () => {
  let h: SnapshotHarness;
  let run: ReturnType<typeof spawn> | undefined;
  let port = 0;
  before(async () => {
    h = await snapshotHarness({ followers: [12_000] }, false);
    [port = 0] = await freePorts(1);
    run = spawn(process.execPath, [BIN, 'run', '--roles', 'consumer,snapshot'], {
      env: { PATH: process.env['PATH'] ?? '', ...h.t.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'],
    });
    await waitFor('wxsync run to be ready', 60_000, async () => ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200) || undefined, 200);
  });
  after(async () => {
    if (run?.exitCode === null) {
      run.kill('SIGTERM');
      await once(run, 'exit');
    }
    await h.close();
  });

  it('runs the snapshot inside it, enriched from its store, with progress streamed back', async () => {
    const appid = h.sim.account().appid;
    const ran = await exit(cli(h, [appid, '--json'], { PORT: String(port) }));
    assert.equal(ran.code, 0, ran.stderr);
    const result = JSON.parse(ran.stdout) as { status: string; openids: number; profiles: number };
    assert.equal(result.status, 'complete');
    assert.equal(result.openids, 12_000);
    assert.equal(result.profiles, 12_000, 'every openid was new to the store: all enriched');
    assert.match(ran.stderr, /page \d+\/3, [\d,]+\/12,000 openids/, 'progress lines on a pipe');
  });

  it('answers an account the run does not know with one clear line', async () => {
    const ran = await exit(cli(h, ['wxnobody'], { PORT: String(port) }));
    assert.equal(ran.code, 2);
    assert.match(ran.stderr, /unknown account wxnobody/);
  });

  it('beside a run without the snapshot role, runs the snapshot itself (not enriched)', async () => {
    const [other = 0] = await freePorts(1);
    const server = http.createServer((_req, res) => { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('not found\n'); });
    await new Promise<void>((resolve) => { server.listen(other, '127.0.0.1', resolve); });
    try {
      const ran = await exit(cli(h, [h.sim.account().appid, '--json'], { PORT: String(other) }));
      assert.equal(ran.code, 0, ran.stderr);
      assert.deepEqual((({ status, profiles }) => ({ status, profiles }))(JSON.parse(ran.stdout) as { status: string; profiles: number }), { status: 'complete', profiles: 0 });
    } finally {
      server.close();
    }
  });
});
