import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../../lib/logger.ts';
import { Spool, frame, unframe } from '../../../producers/callback/spool.ts';

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
