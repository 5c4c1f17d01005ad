import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccountLimits } from '../../sim/limits.ts';
import { Rng } from '../../sim/random.ts';

const NO_FAULTS = { busyRate: 0, latencyMs: 0, perMinuteLimit: 0, dropRate: 0, dupRate: 0 };
/** 00:00:30 Beijing time, 30 s into a quota day and into a minute. */
const T0 = 1_800_028_830;

describe('AccountLimits', () => {
  it('counts the daily quota per API and resets it at midnight Beijing time', () => {
    const limits = new AccountLimits(NO_FAULTS, { '/cgi-bin/user/get': 2 });
    const rng = new Rng(1);
    assert.equal(limits.admit('/cgi-bin/user/get', T0, rng), 0);
    assert.equal(limits.admit('/cgi-bin/user/get', T0, rng), 0);
    assert.equal(limits.admit('/cgi-bin/user/get', T0, rng), 45009);
    assert.equal(limits.admit('/cgi-bin/user/info', T0, rng), 0, 'other APIs have their own quota');
    assert.deepEqual(limits.quota('/cgi-bin/user/get', T0), { daily_limit: 2, used: 2, remain: 0 });
    assert.equal(limits.admit('/cgi-bin/user/get', T0 + 86_400 - 31, rng), 45009, 'still the same day at 23:59:59');
    assert.equal(limits.admit('/cgi-bin/user/get', T0 + 86_400 - 30, rng), 0);
  });

  it('limits each API per minute', () => {
    const limits = new AccountLimits({ ...NO_FAULTS, perMinuteLimit: 1 });
    const rng = new Rng(1);
    assert.equal(limits.admit('/cgi-bin/user/get', T0, rng), 0);
    assert.equal(limits.admit('/cgi-bin/user/get', T0 + 29, rng), 45011);
    assert.equal(limits.admit('/cgi-bin/user/info', T0 + 29, rng), 0);
    assert.equal(limits.admit('/cgi-bin/user/get', T0 + 30, rng), 0);
  });

  it('applies fail rules after letting `after` calls through, `count` times', () => {
    const limits = new AccountLimits(NO_FAULTS);
    const rng = new Rng(1);
    limits.addRule({ api: '/cgi-bin/user/get', errcode: -1, after: 1, count: 2 });
    const answers = [1, 2, 3, 4].map(() => limits.admit('/cgi-bin/user/get', T0, rng));
    assert.deepEqual(answers, [0, -1, -1, 0]);
    assert.deepEqual(limits.pendingRules(), []);
  });

  it('sets the remaining quota and records call outcomes', () => {
    const limits = new AccountLimits(NO_FAULTS);
    limits.setRemaining('/cgi-bin/user/get', 1, T0);
    assert.deepEqual(limits.quota('/cgi-bin/user/get', T0), { daily_limit: 500, used: 499, remain: 1 });
    limits.record('/cgi-bin/user/get', 0);
    limits.record('/cgi-bin/user/get', 45009);
    limits.record('/cgi-bin/user/get', 45009);
    assert.deepEqual(limits.statsView(), { '/cgi-bin/user/get': { calls: 3, ok: 1, errors: { 45009: 2 } } });
    limits.resetStats();
    assert.deepEqual(limits.statsView(), {});
  });
});
