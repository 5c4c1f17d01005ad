/**
 * At most one snapshot per account at a time across processes: a lock file created with O_EXCL whose
 * mtime the holder refreshes (heartbeat); a file not refreshed for `ttlMs` belongs to a dead holder and
 * may be taken over. This holds for every process sharing the snapshot directory (one machine, or a
 * shared volume); it is also where the checkpoint lives, so the lease and the resumable state go together.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';

export interface Lease {
  readonly appid: string;
  /** Stops the heartbeat and removes the lock file if it is still ours. */
  release(): Promise<void>;
}

export interface LeaseOptions {
  readonly ttlMs: number;
  readonly now?: () => number;
}

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}

async function createExclusive(file: string, content: string): Promise<boolean> {
  try {
    const handle = await open(file, 'wx');
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return true;
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    throw error;
  }
}

function deadHereAndNow(holder: string): boolean {
  const [host, pid] = holder.split(':');
  if (host !== hostname() || pid === undefined || !/^\d+$/.test(pid)) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return isErrno(error, 'ESRCH');
  }
}

/** A holder is gone when it stopped heart-beating, or at once when it was a process of this machine that no longer exists (a SIGKILLed run restarted). */
async function isStale(file: string, ttlMs: number, now: number): Promise<boolean> {
  try {
    if (now - (await stat(file)).mtimeMs > ttlMs) return true;
    return deadHereAndNow(await readFile(file, 'utf8'));
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return true;
    throw error;
  }
}

async function removeIfPresent(file: string): Promise<void> {
  await unlink(file).catch((error: unknown) => { if (!isErrno(error, 'ENOENT')) throw error; });
}

/** The lease of `appid`, or undefined while a live holder has it. */
export async function acquireLease(dir: string, appid: string, options: LeaseOptions): Promise<Lease | undefined> {
  const now = options.now ?? Date.now;
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${appid}.lock`);
  const token = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
  let acquired = await createExclusive(file, token);
  if (!acquired && await isStale(file, options.ttlMs, now())) {
    // Two processes may both find the lock stale: the take-over itself is serialised by a second
    // exclusive file, and staleness is checked again under it so a fresh holder is never evicted.
    const takeover = `${file}.takeover`;
    if (await isStale(takeover, options.ttlMs, now())) await removeIfPresent(takeover);
    if (await createExclusive(takeover, token)) {
      try {
        if (await isStale(file, options.ttlMs, now())) {
          await removeIfPresent(file);
          acquired = await createExclusive(file, token);
        }
      } finally {
        await removeIfPresent(takeover);
      }
    }
  }
  if (!acquired) return undefined;

  const beat = async (): Promise<void> => {
    const at = new Date(now());
    await utimes(file, at, at);
  };
  const timer = setInterval(() => { beat().catch(() => undefined); }, Math.max(1000, Math.floor(options.ttlMs / 3)));
  timer.unref();
  let released = false;
  return {
    appid,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      const holder = await readFile(file, 'utf8').catch(() => '');
      if (holder === token) await removeIfPresent(file);
    },
  };
}
