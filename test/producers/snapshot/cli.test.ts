import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { main } from '../../../cli/snapshot.ts';
import { packageRoot } from '../../../lib/config.ts';
import { decodeSnapshotRecord, type SnapshotPage } from '../../../lib/contracts/snapshot.ts';
import { waitFor } from '../../support/env.ts';
import { snapshotHarness, type SnapshotHarness } from './support.ts';

const USER_GET = '/cgi-bin/user/get';

const BIN = path.join(packageRoot, 'bin', 'wxsync.js');

function cli(h: SnapshotHarness, args: readonly string[]) {
  return spawn(process.execPath, [BIN, 'snapshot', ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...h.t.env }, stdio: ['ignore', 'pipe', 'pipe'],
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

  it('two processes for the same account at once: only one runs', async () => {
    const appid = h.sim.account().appid;
    await h.sim.faults(0, { latencyMs: 100 });
    const results = await Promise.all([exit(cli(h, [appid])), exit(cli(h, [appid]))]);
    await h.sim.faults(0, { latencyMs: 0 });
    assert.deepEqual(results.map((r) => r.code).sort(), [0, 4]);
    assert.match(results.find((r) => r.code === 4)?.stderr ?? '', /already running/);
  });

  it('refuses a missing appid with its usage', async () => {
    await assert.rejects(main([]), /usage: wxsync snapshot <appid>/);
    await assert.rejects(main(['a', 'b']), /usage/);
  });
});
