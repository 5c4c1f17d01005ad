import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CheckpointSaver, StateStore } from '../../../producers/snapshot/checkpoint.ts';
import { waitFor } from '../../support/env.ts';
import { initialCheckpoint, type Checkpoint } from '../../../producers/snapshot/plan.ts';

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

/** A store whose checkpoint writes wait for the test, and can be made to fail. */
class HeldStore extends StateStore {
  readonly started: number[] = [];
  private release: (() => void) | undefined;
  failWith: Error | undefined;

  override async writeCheckpoint(checkpoint: Checkpoint): Promise<void> {
    this.started.push(checkpoint.page);
    await new Promise<void>((resolve) => { this.release = resolve; });
    if (this.failWith !== undefined) throw this.failWith;
    await super.writeCheckpoint(checkpoint);
  }

  finishWrite(): void {
    this.release?.();
  }
}

describe('CheckpointSaver', () => {
  const at = (page: number): Checkpoint => ({ ...initialCheckpoint('wxa', 's1', 1000), page, cursor: `o${page}` });
  const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  it('writes one checkpoint at a time and skips those overtaken while it waited', async () => {
    const store = new HeldStore(tempDir());
    const saver = new CheckpointSaver(store);
    saver.save(at(1));
    saver.save(at(2));
    saver.save(at(3));
    await tick();
    store.finishWrite();
    await waitFor('the second write', 1000, () => (store.started.length === 2 ? true : undefined), 1);
    store.finishWrite();
    await saver.settled();
    assert.deepEqual(store.started, [1, 3], '2 was overtaken by 3 before its turn');
    assert.equal((await store.readCheckpoint('wxa'))?.page, 3, 'the newest is on disk');
  });

  it('stops writing after a failure and reports it', async () => {
    const store = new HeldStore(tempDir());
    const saver = new CheckpointSaver(store);
    saver.save(at(1));
    store.failWith = new Error('disk full');
    await tick();
    saver.save(at(2));
    store.finishWrite();
    await assert.rejects(saver.settled(), /disk full/);
    assert.throws(() => { saver.throwIfFailed(); }, /disk full/);
    assert.deepEqual(store.started, [1]);
  });
});
