/**
 * A per-account job (snapshot, reconcile) on each account's cron, with a process-wide limit on how many
 * run at once: a tick that finds its account still queued or running is skipped, and ticks beyond the
 * limit wait for a slot in arrival order. Cron expressions were validated by loadConfig.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Account } from './config.ts';
import { ErrorCode, WxsyncError } from './errors.ts';
import type { Logger } from './logger.ts';

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
  /** Names the job in logs and cron task names. */
  readonly job: string;
  readonly accounts: readonly Account[];
  readonly cronOf: (account: Account) => string | undefined;
  /** The process-wide limit, shared with runs asked for through the API. */
  readonly limiter: Limiter;
  readonly logger: Logger;
  readonly run: (appid: string) => Promise<unknown>;
}

export interface Scheduler {
  /** Runs the job now unless one of this account is already queued or running here. */
  trigger(appid: string): Promise<void>;
  /** Appids queued or running. */
  busy(): readonly string[];
  stop(): Promise<void>;
}

export function startScheduler(options: SchedulerOptions): Scheduler {
  const { limiter } = options;
  const inFlight = new Map<string, Promise<void>>();
  let stopping = false;

  const trigger = (appid: string): Promise<void> => {
    const existing = inFlight.get(appid);
    if (existing !== undefined || stopping) {
      options.logger.info({ appid, job: options.job }, 'tick skipped: this account\'s job is already queued or running');
      return existing ?? Promise.resolve();
    }
    const run = limiter.run(async () => {
      if (stopping) return;
      try {
        await options.run(appid);
      } catch (error) {
        options.logger.error({ appid, job: options.job, err: error }, 'scheduled job failed');
      }
    }).finally(() => { inFlight.delete(appid); });
    inFlight.set(appid, run);
    return run;
  };

  const tasks: ScheduledTask[] = options.accounts.flatMap((account) => {
    const expression = options.cronOf(account);
    if (expression === undefined) return [];
    return [cron.schedule(expression, () => trigger(account.appid), { name: `${options.job}:${account.appid}`, noOverlap: false })];
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
