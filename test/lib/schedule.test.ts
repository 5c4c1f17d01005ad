import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../lib/logger.ts';
import { Limiter, startScheduler } from '../../lib/schedule.ts';

const account = (appid: string, snapshotCron?: string) => ({ appid, secret: 's', token: 'tok', ...(snapshotCron === undefined ? {} : { snapshotCron }) });

describe('snapshot scheduling', () => {
  it('runs at most `limit` at once', async () => {
    const limiter = new Limiter(2);
    let active = 0;
    let peak = 0;
    await Promise.all(Array.from({ length: 6 }, () => limiter.run(async () => {
      active += 1;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5));
      active -= 1;
    })));
    assert.equal(peak, 2);
    assert.equal(limiter.running, 0);
  });

  it('fires on the cron, skips a tick while the account is busy, and limits accounts globally', async () => {
    const runs: string[] = [];
    let active = 0;
    let peak = 0;
    const scheduler = startScheduler({
      job: 'snapshot',
      cronOf: (a) => a.snapshotCron,
      accounts: [account('wxa', '* * * * * *'), account('wxb', '* * * * * *'), account('wxc', '* * * * * *'), account('wxd')],
      limiter: new Limiter(2),
      logger: silentLogger(),
      run: async (appid) => {
        runs.push(appid);
        active += 1;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 1500));
        active -= 1;
      },
    });
    const manual = scheduler.trigger('wxd');
    assert.equal(scheduler.trigger('wxd'), manual, 'a second trigger joins the one in flight');
    await new Promise((r) => setTimeout(r, 2300));
    await scheduler.stop();
    assert.ok(peak <= 2, `peak ${peak}`);
    assert.ok(runs.includes('wxd'));
    assert.ok(runs.some((a) => a !== 'wxd'), `cron ran: ${runs.join(',')}`);
    assert.equal(new Set(runs).size, runs.length, 'no account ran twice while busy');
  });
});
