import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { silentLogger } from '../../../lib/logger.ts';
import { Spool } from '../../../producers/callback/spool.ts';

/**
 * A crash can lose a new directory entry whose directory was not fsynced, even when the file itself was:
 * records the spool's file operations (through node:fs/promises, patched for this file only) to check that
 * each new segment name and each renamed position file is followed by an fsync of the directory.
 */
describe('Spool directory fsync', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-spool-fsync-'));
  const log: string[] = [];

  before(() => {
    const open = fsp.open.bind(fsp);
    const rename = fsp.rename.bind(fsp);
    mock.method(fsp, 'open', async (file: string, flags?: string, mode?: number): Promise<FileHandle> => {
      const handle = await open(file, flags, mode);
      if (file === dir) {
        const sync = handle.sync.bind(handle);
        handle.sync = async () => { await sync(); log.push('sync dir'); };
      } else if (file.endsWith('.seg') && flags === 'a+') {
        log.push(`create ${path.basename(file)}`);
      }
      return handle;
    });
    const rm = fsp.rm.bind(fsp);
    mock.method(fsp, 'rm', async (file: string, options?: { force?: boolean }): Promise<void> => {
      await rm(file, options);
      log.push(`remove ${path.basename(file)}`);
    });
    mock.method(fsp, 'rename', async (from: string, to: string): Promise<void> => {
      await rename(from, to);
      log.push(`rename ${path.basename(to)}`);
    });
    syncBuiltinESMExports();
  });

  after(() => {
    mock.restoreAll();
    syncBuiltinESMExports();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Every create or rename in `entries` is followed at once by a directory fsync (a later one could come too late). */
  function assertSynced(entries: readonly string[]): void {
    entries.forEach((entry, i) => {
      if (entry.startsWith('create ') || entry.startsWith('rename ')) assert.equal(entries[i + 1], 'sync dir', `${entry} was not followed by a directory fsync: ${entries.join(', ')}`);
    });
  }

  it('fsyncs the directory after creating a segment and after renaming the position file', async () => {
    const spool = await Spool.open(dir, silentLogger());
    await spool.append([{ key: 'k', value: Buffer.from('{}') }]);
    assert.ok(log.includes('create 000000000001.seg'));
    assertSynced(log);
    const batch = await spool.read(10);
    log.length = 0;
    await spool.ack(batch);
    // The ack rolled to a new segment (everything was drained) and saved the position.
    assert.ok(log.includes('create 000000000002.seg') && log.includes('rename position'), log.join(', '));
    assertSynced(log);
    await spool.close();
  });
});
