import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { WxsyncError } from '../../../lib/errors.ts';
import { silentLogger } from '../../../lib/logger.ts';
import { createRegistry } from '../../../lib/metrics.ts';
import { Spool, createSpoolMetrics, frame, isSpoolFull, segmentScan, unframe, unframeLegacy } from '../../../producers/callback/spool.ts';

const dirs: string[] = [];
function dir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'wxsync-spool-'));
  dirs.push(d);
  return d;
}
const rec = (i: number) => ({ key: `wx:o${i}`, value: Buffer.from(JSON.stringify({ id: String(i) })) });

describe('Spool', () => {
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  it('frames records with a checksum and stops at the first bad frame', () => {
    const data = Buffer.concat([frame(rec(1)), frame({ key: null, value: Buffer.from('x') }), frame(rec(3))]);
    assert.deepEqual(unframe(data).records.map((r) => r.key), ['wx:o1', null, 'wx:o3']);
    const corrupt = Buffer.from(data);
    corrupt.writeUInt8((corrupt.at(-2) ?? 0) ^ 0xff, corrupt.length - 2);
    assert.equal(unframe(corrupt).records.length, 2);
    assert.equal(unframe(data.subarray(0, data.length - 3)).records.length, 2);
  });

  it('drains in append order, survives a reopen, and deletes what was acknowledged', async () => {
    const d = dir();
    let spool = await Spool.open(d, silentLogger());
    await spool.append([rec(1), rec(2)]);
    await spool.append([rec(3)]);
    const first = await spool.read(2);
    assert.deepEqual(first.records.map((r) => r.key), ['wx:o1', 'wx:o2']);
    await spool.ack(first);
    await spool.close();

    spool = await Spool.open(d, silentLogger());
    assert.equal(spool.depth, 1);
    const rest = await spool.read(10);
    assert.deepEqual(rest.records.map((r) => r.key), ['wx:o3']);
    await spool.ack(rest);
    assert.equal(spool.depth, 0);
    const segments = readdirSync(d).filter((n) => n.endsWith('.seg'));
    assert.equal(segments.length, 1, 'the drained segment was not deleted');
    assert.equal(statSync(path.join(d, segments[0] ?? '')).size, 0);
    await spool.append([rec(4)]);
    assert.deepEqual((await spool.read(10)).records.map((r) => r.key), ['wx:o4']);
    await spool.close();
  });

  it('cuts a torn tail left by a crash mid-append and keeps every complete record', async () => {
    const d = dir();
    const spool = await Spool.open(d, silentLogger());
    await spool.append([rec(1), rec(2)]);
    await spool.close();
    const segment = path.join(d, readdirSync(d).find((n) => n.endsWith('.seg')) ?? '');
    appendFileSync(segment, frame(rec(3)).subarray(0, 11));
    const reopened = await Spool.open(d, silentLogger());
    assert.equal(reopened.depth, 2);
    await reopened.append([rec(4)]);
    assert.deepEqual((await reopened.read(10)).records.map((r) => r.key), ['wx:o1', 'wx:o2', 'wx:o4']);
    await reopened.close();
  });
});

describe('Spool framing and corruption', () => {
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  async function drainAll(spool: Spool): Promise<string[]> {
    const keys: string[] = [];
    for (let batch = await spool.read(3); batch.records.length > 0; batch = await spool.read(3)) {
      keys.push(...batch.records.map((r) => r.key ?? ''));
      await spool.ack(batch);
    }
    return keys;
  }

  async function spoolWith(n: number): Promise<{ d: string; segment: string; offsets: number[] }> {
    const d = dir();
    const spool = await Spool.open(d, silentLogger());
    for (let i = 0; i < n; i++) await spool.append([rec(i)]);
    await spool.close();
    const offsets: number[] = [];
    let at = 0;
    for (let i = 0; i < n; i++) { offsets.push(at); at += frame(rec(i)).length; }
    return { d, segment: path.join(d, readdirSync(d).find((f) => f.endsWith('.seg')) ?? ''), offsets };
  }

  for (const [what, at] of [['a bad crc', 20], ['a bad length', 5], ['a bad marker', 0]] as const) {
    it(`skips a record with ${what} mid-segment and drains every other one in order`, async () => {
      const n = 20;
      const k = 9;
      const { d, segment, offsets } = await spoolWith(n);
      const data = readFileSync(segment);
      const target = (offsets[k] ?? 0) + at;
      data.writeUInt8((data[target] ?? 0) ^ 0x5a, target);
      writeFileSync(segment, data);
      const registry = createRegistry();
      const metrics = createSpoolMetrics(registry, () => undefined);
      const spool = await Spool.open(d, silentLogger(), { metrics });
      assert.equal(spool.depth, n - 1);
      assert.deepEqual(await drainAll(spool), Array.from({ length: n }, (_, i) => `wx:o${i}`).filter((_, i) => i !== k));
      assert.equal(spool.depth, 0);
      await spool.close();
      assert.match(await registry.metrics(), /wxsync_callback_spool_corrupt_total 1\n/);
      const aside = readdirSync(path.join(d, 'corrupt'));
      assert.equal(aside.length, 1, 'the corrupt bytes are kept aside');
      assert.equal(statSync(path.join(d, 'corrupt', aside[0] ?? '')).size, frame(rec(k)).length);
    });
  }

  it('skips a corrupt record the drain has not reached after a partial drain and a reopen', async () => {
    const { d, segment, offsets } = await spoolWith(10);
    let spool = await Spool.open(d, silentLogger());
    const first = await spool.read(3);
    await spool.ack(first);
    await spool.close();
    const data = readFileSync(segment);
    data.writeUInt8((data[(offsets[6] ?? 0) + 20] ?? 0) ^ 1, (offsets[6] ?? 0) + 20);
    writeFileSync(segment, data);
    spool = await Spool.open(d, silentLogger());
    assert.equal(spool.depth, 6);
    await spool.append([rec(10)]);
    assert.deepEqual(await drainAll(spool), ['wx:o3', 'wx:o4', 'wx:o5', 'wx:o7', 'wx:o8', 'wx:o9', 'wx:o10']);
    await spool.close();
  });

  it('finds a resynchronising marker only where a whole record checks out', () => {
    const good = Buffer.concat([frame(rec(1)), frame(rec(2))]);
    // Garbage holding a marker whose record does not check out, between two good records.
    const junk = Buffer.concat([Buffer.from([0xf5, 0x57, 0x58, 0x02, 0, 0, 0, 9, 1, 2, 3, 4]), Buffer.alloc(7)]);
    const data = Buffer.concat([frame(rec(0)), junk, good]);
    const scan = segmentScan(data);
    assert.equal(scan.starts.length, 3);
    assert.deepEqual(scan.holes, [{ from: frame(rec(0)).length, to: frame(rec(0)).length + junk.length }]);
    assert.equal(scan.end, data.length);
    assert.equal(segmentScan(Buffer.concat([good, junk])).end, good.length, 'bad bytes with nothing valid after them are a torn tail');
  });

  it('drains a segment an earlier version wrote, and appends to a new one', async () => {
    const d = dir();
    const legacy = (r: { key: string; value: Buffer }): Buffer => {
      const key = Buffer.from(r.key);
      const payload = Buffer.concat([Buffer.from([0, key.length]), key, r.value]);
      const header = Buffer.alloc(8);
      header.writeUInt32BE(payload.length, 0);
      header.writeUInt32BE(crc32(payload), 4);
      return Buffer.concat([header, payload]);
    };
    writeFileSync(path.join(d, '000000000001.seg'), Buffer.concat([legacy(rec(1)), legacy(rec(2)), legacy(rec(3)).subarray(0, 9)]));
    assert.equal(unframeLegacy(readFileSync(path.join(d, '000000000001.seg'))).records.length, 2);
    const spool = await Spool.open(d, silentLogger());
    assert.equal(spool.depth, 2);
    await spool.append([rec(4)]);
    assert.deepEqual(readdirSync(d).filter((f) => f.endsWith('.seg')), ['000000000001.seg', '000000000002.seg']);
    assert.deepEqual(await drainAll(spool), ['wx:o1', 'wx:o2', 'wx:o4']);
    assert.deepEqual(readdirSync(d).filter((f) => f.endsWith('.seg')).length, 1, 'the drained legacy segment was deleted');
    await spool.close();
  });
});

describe('Spool lock', () => {
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  it('refuses a second spool on the same directory in this process, naming the holder, until the first closes', async () => {
    const d = dir();
    const first = await Spool.open(d, silentLogger());
    await assert.rejects(Spool.open(d, silentLogger()), (error: unknown) => {
      assert.ok(error instanceof WxsyncError);
      assert.equal(error.code, 'SPOOL_FAILED');
      assert.match(error.message, new RegExp(`^spool directory .* is in use by ${hostname()}:${process.pid} since \\d{4}-\\d\\d-\\d\\dT[^ ]+ \\(remove .*lock only if that process is gone\\)$`));
      assert.ok(!error.message.includes('\n'));
      return true;
    });
    await first.close();
    const second = await Spool.open(d, silentLogger());
    await second.close();
    assert.ok(!existsSync(path.join(d, 'lock')), 'close releases the lock');
  });

  it('refuses while a child process holds the directory, and takes the lock over once it is killed', async () => {
    const d = dir();
    const holder = fileURLToPath(new URL('spool-holder.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', holder, d], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    try {
      const [line] = await once(createInterface({ input: child.stdout }), 'line') as [string];
      assert.equal(line, 'locked');
      await assert.rejects(Spool.open(d, silentLogger()), new RegExp(`in use by ${hostname()}:${child.pid} since `));
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const spool = await Spool.open(d, silentLogger());
    assert.match(readFileSync(path.join(d, 'lock'), 'utf8'), new RegExp(`"pid":${process.pid}`));
    await spool.close();
  });

  it('refuses a lock held on another host: its process cannot be checked from here', async () => {
    const d = dir();
    writeFileSync(path.join(d, 'lock'), JSON.stringify({ host: 'elsewhere', pid: 1, since: '2024-01-01T00:00:00.000Z' }));
    await assert.rejects(Spool.open(d, silentLogger()), /in use by elsewhere:1 since 2024-01-01T00:00:00.000Z/);
  });
});

describe('Spool size cap', () => {
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  it('refuses an append past the cap (retriably, counted), and accepts again once drained', async () => {
    const registry = createRegistry();
    const opened: { spool?: Spool } = {};
    const metrics = createSpoolMetrics(registry, () => opened.spool);
    const size = frame(rec(0)).length;
    const spool = await Spool.open(dir(), silentLogger(), { maxBytes: size * 5, metrics });
    opened.spool = spool;
    for (let i = 0; i < 5; i++) await spool.append([rec(i)]);
    for (const attempt of [5, 6]) {
      await assert.rejects(spool.append([rec(attempt)]), (error: unknown) => {
        assert.ok(isSpoolFull(error));
        assert.ok(error instanceof WxsyncError && error.retriable);
        return true;
      });
    }
    assert.equal(spool.depth, 5, 'nothing refused was kept');
    const text = await registry.metrics();
    assert.match(text, /wxsync_callback_spool_full_total 2\n/);
    assert.match(text, new RegExp(`wxsync_callback_spool_bytes ${size * 5}\\n`));
    const batch = await spool.read(100);
    await spool.ack(batch);
    assert.equal(spool.bytes, 0, 'a drained spool takes no space');
    await spool.append([rec(7)]);
    assert.deepEqual((await spool.read(10)).records.map((r) => r.key), ['wx:o7']);
    await spool.close();
  });
});
