/**
 * Per-account state files of the snapshot producer: the checkpoint of a running snapshot and the day's
 * user/get call count. Each write goes to a temporary file, is fsynced, renamed over the old one and the
 * directory fsynced, so a crash at any instant leaves either the old or the new state, never a torn one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';
import type { CallLedger, Checkpoint } from './plan.ts';

export class StateStore {
  constructor(readonly dir: string) {}

  checkpointPath(appid: string): string {
    return path.join(this.dir, `${appid}.checkpoint.json`);
  }

  async readCheckpoint(appid: string): Promise<Checkpoint | undefined> {
    const value = await this.readJson(this.checkpointPath(appid));
    if (value === undefined) return undefined;
    if (!isCheckpoint(value) || value.appid !== appid) {
      throw new WxsyncError(ErrorCode.ConfigInvalid, `${this.checkpointPath(appid)} is not a snapshot checkpoint of ${appid}; remove it to start over`);
    }
    return value;
  }

  writeCheckpoint(checkpoint: Checkpoint): Promise<void> {
    return this.writeJson(this.checkpointPath(checkpoint.appid), checkpoint);
  }

  async removeCheckpoint(appid: string): Promise<void> {
    await unlink(this.checkpointPath(appid)).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    });
  }

  async readLedger(appid: string): Promise<CallLedger | undefined> {
    const value = await this.readJson(path.join(this.dir, `${appid}.calls.json`));
    if (typeof value !== 'object' || value === null) return undefined;
    const { day, calls, lastTotal } = value as Record<string, unknown>;
    if (typeof day !== 'string' || typeof calls !== 'number') return undefined;
    return { day, calls, ...(typeof lastTotal === 'number' ? { lastTotal } : {}) };
  }

  writeLedger(appid: string, ledger: CallLedger): Promise<void> {
    return this.writeJson(path.join(this.dir, `${appid}.calls.json`), ledger);
  }

  private async readJson(file: string): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new WxsyncError(ErrorCode.ConfigInvalid, `${file} is not JSON; remove it to start over`);
    }
  }

  private async writeJson(file: string, value: unknown): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(JSON.stringify(value));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/**
 * Keeps a checkpoint file up to date in the background: the crawl goes on while it is written, one write at a
 * time, and a checkpoint overtaken by a newer one while waiting is never written. The file therefore trails
 * the newest checkpoint by at most the write in flight; a run killed meanwhile resumes a few pages early, and
 * those pages replace themselves in the store.
 */
export class CheckpointSaver {
  private next: Checkpoint | undefined;
  private writing: Promise<void> | undefined;
  private failure: { readonly error: unknown } | undefined;

  constructor(private readonly state: StateStore) {}

  save(checkpoint: Checkpoint): void {
    this.next = checkpoint;
    this.writing ??= this.write();
  }

  /** Rejects with the error of a failed write: nothing is written after one. */
  throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }

  /** Resolves once the last checkpoint given is written. */
  async settled(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
    this.throwIfFailed();
  }

  private async write(): Promise<void> {
    try {
      for (let checkpoint = this.next; checkpoint !== undefined && this.failure === undefined; checkpoint = this.next) {
        this.next = undefined;
        try {
          await this.state.writeCheckpoint(checkpoint);
        } catch (error) {
          this.failure = { error };
        }
      }
    } finally {
      this.writing = undefined;
    }
  }
}

function isCheckpoint(value: unknown): value is Checkpoint {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['appid'] === 'string' && typeof v['snapshotId'] === 'string' && typeof v['cursor'] === 'string'
    && ['startedAt', 'page', 'openids', 'total', 'updatedAt'].every((k) => Number.isSafeInteger(v[k]));
}
