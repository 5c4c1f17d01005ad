/**
 * Snapshots on each account's `snapshotCron`, with a process-wide limit on how many run at once: a tick
 * that finds its account still queued or running is skipped (the lease already keeps other processes out),
 * and ticks beyond the limit wait for a slot in arrival order.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Account } from '../../lib/config.ts';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';

/** A counting semaphore: at most `limit` holders, waiters served first come first served. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new WxsyncError(ErrorCode.UsageInvalid, `limit must be a positive integer, got ${limit}`);
  }

  get running(): number {
    return this.active;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => { this.waiting.push(resolve); });
    else this.active += 1;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `active` never dips and lets a newcomer jump the queue.
      if (next === undefined) this.active -= 1;
      else next();
    }
  }
}

export interface SchedulerOptions {
  readonly accounts: readonly Account[];
  readonly concurrency: number;
  readonly logger: Logger;
  readonly snapshot: (appid: string) => Promise<unknown>;
}

export interface Scheduler {
  /** Runs a snapshot now unless one of this account is already queued or running here. */
  trigger(appid: string): Promise<void>;
  /** Appids queued or running. */
  busy(): readonly string[];
  stop(): Promise<void>;
}

export function checkCron(account: Account): void {
  if (account.snapshotCron !== undefined && !cron.validate(account.snapshotCron)) {
    throw new WxsyncError(ErrorCode.ConfigInvalid, `snapshotCron of ${account.appid} is not a valid cron expression: ${JSON.stringify(account.snapshotCron)}`);
  }
}

export function startScheduler(options: SchedulerOptions): Scheduler {
  for (const account of options.accounts) checkCron(account);
  const limiter = new Limiter(options.concurrency);
  const inFlight = new Map<string, Promise<void>>();
  let stopping = false;

  const trigger = (appid: string): Promise<void> => {
    const existing = inFlight.get(appid);
    if (existing !== undefined || stopping) {
      options.logger.info({ appid }, 'snapshot tick skipped: one is already queued or running');
      return existing ?? Promise.resolve();
    }
    const run = limiter.run(async () => {
      if (stopping) return;
      try {
        await options.snapshot(appid);
      } catch (error) {
        options.logger.error({ appid, err: error }, 'snapshot failed');
      }
    }).finally(() => { inFlight.delete(appid); });
    inFlight.set(appid, run);
    return run;
  };

  const tasks: ScheduledTask[] = options.accounts.flatMap((account) => {
    const expression = account.snapshotCron;
    if (expression === undefined) return [];
    return [cron.schedule(expression, () => trigger(account.appid), { name: `snapshot:${account.appid}`, noOverlap: false })];
  });

  return {
    trigger,
    busy: () => [...inFlight.keys()],
    async stop() {
      stopping = true;
      for (const task of tasks) await task.destroy();
      await Promise.all(inFlight.values());
    },
  };
}
