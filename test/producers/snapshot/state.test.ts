import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { StateStore } from '../../../producers/snapshot/checkpoint.ts';
import { acquireLease } from '../../../producers/snapshot/lease.ts';
import { initialCheckpoint } from '../../../producers/snapshot/plan.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-snap-'));
  dirs.push(dir);
  return dir;
}
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('snapshot checkpoint store', () => {
  it('writes atomically, reads back, and removes', async () => {
    const store = new StateStore(path.join(tempDir(), 'snapshots'));
    assert.equal(await store.readCheckpoint('wxa'), undefined);
    const cp = { ...initialCheckpoint('wxa', 's1', 1000), page: 3, cursor: 'o3' };
    await store.writeCheckpoint(cp);
    assert.deepEqual(await store.readCheckpoint('wxa'), cp);
    assert.deepEqual(readdirSync(store.dir), ['wxa.checkpoint.json'], 'no temporary file is left');
    await store.writeLedger('wxa', { day: '2026-06-01', calls: 4, lastTotal: 9 });
    assert.deepEqual(await store.readLedger('wxa'), { day: '2026-06-01', calls: 4, lastTotal: 9 });
    await store.removeCheckpoint('wxa');
    await store.removeCheckpoint('wxa');
    assert.equal(await store.readCheckpoint('wxa'), undefined);
  });

  it('refuses a corrupt checkpoint instead of guessing', async () => {
    const store = new StateStore(tempDir());
    writeFileSync(store.checkpointPath('wxa'), '{"appid":"wxa"');
    await assert.rejects(store.readCheckpoint('wxa'), /not JSON/);
    writeFileSync(store.checkpointPath('wxa'), JSON.stringify({ ...initialCheckpoint('wxb', 's', 1) }));
    await assert.rejects(store.readCheckpoint('wxa'), /not a snapshot checkpoint of wxa/);
  });
});

describe('snapshot lease', () => {
  it('lets one holder in at a time and frees on release', async () => {
    const dir = tempDir();
    const leases = await Promise.all([1, 2, 3].map(() => acquireLease(dir, 'wxa', { ttlMs: 60_000 })));
    const held = leases.filter((l) => l !== undefined);
    assert.equal(held.length, 1);
    assert.notEqual(await acquireLease(dir, 'wxb', { ttlMs: 60_000 }), undefined, 'other accounts are independent');
    await held[0]?.release();
    const again = await acquireLease(dir, 'wxa', { ttlMs: 60_000 });
    assert.notEqual(again, undefined);
    await again?.release();
  });

  it('takes over a lease whose holder stopped heart-beating', async () => {
    const dir = tempDir();
    const first = await acquireLease(dir, 'wxa', { ttlMs: 60_000 });
    assert.ok(first);
    const old = new Date(Date.now() - 120_000);
    utimesSync(path.join(dir, 'wxa.lock'), old, old);
    const takers = await Promise.all([1, 2].map(() => acquireLease(dir, 'wxa', { ttlMs: 60_000 })));
    assert.equal(takers.filter((l) => l !== undefined).length, 1);
    await first.release();
    assert.equal(await acquireLease(dir, 'wxa', { ttlMs: 60_000 }), undefined, "the old holder's release leaves the new lease in place");
    for (const t of takers) await t?.release();
  });
});
