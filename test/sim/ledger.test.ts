import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { beijingDay, dateDay } from '../../lib/wechat/datacube.ts';
import { userSourceOf } from '../../sim/datacube.ts';
import { Ledger, type LedgerDay, type LedgerEntry } from '../../sim/ledger.ts';
import { INITIAL_HISTORY, Population, SCENES, qrKey, type Scene } from '../../sim/population.ts';
import { Rng } from '../../sim/random.ts';

const NO_CHOICE = { resubscribeRate: 0, qrRate: 0 };
/** 2026-11-20 10:00 in Beijing. */
const T0 = Date.UTC(2026, 10, 20, 2, 0, 0) / 1000;
const DAY0 = dateDay('2026-11-20') ?? 0;

function entries(ledger: Ledger, appid: string, from?: number): LedgerEntry[] {
  return [...ledger.lines(appid, from)].join('').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as LedgerEntry);
}

/** A day as plain numbers: follows and unfollows by scene name (non-zero only), followers at the end. */
function plain(day: LedgerDay): { day: number; follows: Partial<Record<Scene, number>>; unfollows: Partial<Record<Scene, number>>; followers: number } {
  const byScene = (counts: Uint32Array): Partial<Record<Scene, number>> =>
    Object.fromEntries(SCENES.map((scene, i): [Scene, number] => [scene, counts[i] ?? 0]).filter(([, n]) => n !== 0));
  return { day: day.day, follows: byScene(day.subscribes), unfollows: byScene(day.unsubscribes), followers: day.followers };
}

describe('Ledger', () => {
  it('records each change in order with its source, whether it was a return, and its push outcome', () => {
    const population = new Population({ seed: 1, account: 1, followers: 100 });
    const ledger = new Ledger(population);
    const rng = new Rng(1);
    const spring = population.subscribe(rng, T0, { ...NO_CHOICE, qrScene: 'spring' });
    ledger.record(spring, 'pending');
    const initial = population.user(7);
    const left = population.unsubscribe(rng, T0 + 5, 7);
    assert.ok(left);
    ledger.record(left, 'not-pushed');
    ledger.record(population.subscribe(rng, T0 + 10, { ...NO_CHOICE, scene: 'ADD_SCENE_SEARCH' }, 7), 'pending');
    const leftAgain = population.unsubscribe(rng, T0 + 86_400, 7);
    assert.ok(leftAgain);
    ledger.record(leftAgain, 'pending');
    ledger.settle(0, 'delivered');
    ledger.settle(2, 'dropped');
    ledger.settle(3, 'failed');

    assert.equal(ledger.size, 4);
    const openid7 = population.openidOf(7);
    assert.deepEqual(entries(ledger, 'wxapp'), [
      { seq: 0, appid: 'wxapp', openid: spring.openid, type: 'subscribe', at: T0, scene: 'ADD_SCENE_QR_CODE', userSource: 30, qrScene: 'spring', returning: false, push: 'delivered' },
      {
        seq: 1, appid: 'wxapp', openid: openid7, type: 'unsubscribe', at: T0 + 5, scene: initial.scene, userSource: userSourceOf(initial.scene),
        qrScene: initial.qr === undefined ? null : qrKey(initial.qr), returning: false, push: 'not-pushed',
      },
      { seq: 2, appid: 'wxapp', openid: openid7, type: 'subscribe', at: T0 + 10, scene: 'ADD_SCENE_SEARCH', userSource: 1, qrScene: null, returning: true, push: 'dropped' },
      { seq: 3, appid: 'wxapp', openid: openid7, type: 'unsubscribe', at: T0 + 86_400, scene: 'ADD_SCENE_SEARCH', userSource: 1, qrScene: null, returning: true, push: 'failed' },
    ]);
    assert.deepEqual(entries(ledger, 'wxapp', 2).map((entry) => entry.seq), [2, 3]);
    assert.deepEqual(entries(ledger, 'wxapp', 9), []);
    assert.deepEqual([...ledger.lines('wxapp', 0, 3)].map((chunk) => chunk.split('\n').length - 1), [3, 1]);
    assert.throws(() => ledger.entry(4, 'wxapp'), RangeError);

    assert.deepEqual(ledger.days(DAY0 - 1, DAY0 + 2).map(plain), [
      { day: DAY0 - 1, follows: {}, unfollows: {}, followers: 100 },
      { day: DAY0, follows: { ADD_SCENE_SEARCH: 1, ADD_SCENE_QR_CODE: 1 }, unfollows: { [initial.scene]: 1 }, followers: 101 },
      { day: DAY0 + 1, follows: {}, unfollows: { ADD_SCENE_SEARCH: 1 }, followers: 100 },
      { day: DAY0 + 2, follows: {}, unfollows: {}, followers: 100 },
    ]);
    assert.deepEqual(ledger.days(DAY0 + 1, DAY0 + 1).map(plain), [{ day: DAY0 + 1, follows: {}, unfollows: { ADD_SCENE_SEARCH: 1 }, followers: 100 }]);
    assert.deepEqual(ledger.days(DAY0 + 1, DAY0), []);
  });

  it('counts a change at the turn of a China day in the day it happened', () => {
    const population = new Population({ seed: 1, account: 1, followers: 5 });
    const ledger = new Ledger(population);
    const midnight = Date.UTC(2026, 10, 20, 16, 0, 0) / 1000;
    ledger.record(population.subscribe(new Rng(1), midnight - 1, NO_CHOICE), 'not-pushed');
    ledger.record(population.subscribe(new Rng(2), midnight, NO_CHOICE), 'not-pushed');
    assert.deepEqual(ledger.days(DAY0, DAY0 + 1).map((day) => day.followers), [6, 7]);
  });

  it('carries the initial population\'s history: followers grow from 0 to the initial count before 2024', () => {
    const population = new Population({ seed: 2, account: 1, followers: 2000 });
    const ledger = new Ledger(population);
    const first = beijingDay(INITIAL_HISTORY.from) - 1;
    const last = beijingDay(INITIAL_HISTORY.to) + 1;
    const days = ledger.days(first, last);
    assert.equal(days.length, last - first + 1);
    assert.equal(days[0]?.followers, 0);
    assert.equal(days.at(-1)?.followers, 2000);
    let followers = 0;
    let follows = 0;
    let unfollows = 0;
    for (const day of days) {
      const added = day.subscribes.reduce((a, b) => a + b, 0);
      const removed = day.unsubscribes.reduce((a, b) => a + b, 0);
      followers += added - removed;
      follows += added;
      unfollows += removed;
      assert.equal(day.followers, followers, `day ${day.day}`);
    }
    assert.deepEqual([follows, unfollows], [2100, 100]);
    // A slice of the history agrees with the whole.
    const middle = days[1500];
    assert.ok(middle);
    assert.deepEqual(ledger.days(middle.day, middle.day).map(plain), [plain(middle)]);
    const user = population.user(42);
    const followDay = ledger.days(beijingDay(user.subscribeTime), beijingDay(user.subscribeTime))[0];
    assert.ok((followDay?.subscribes[SCENES.indexOf(user.scene)] ?? 0) >= 1);
  });

  it('grows past its first columns without losing entries', () => {
    const population = new Population({ seed: 3, account: 1, followers: 10 });
    const ledger = new Ledger(population);
    const rng = new Rng(4);
    for (let i = 0; i < 5000; i += 1) ledger.record(population.subscribe(rng, T0 + i, { ...NO_CHOICE, qrScene: `q${i % 3}` }), 'not-pushed');
    assert.equal(ledger.size, 5000);
    assert.deepEqual([ledger.entry(0, 'a').qrScene, ledger.entry(4999, 'a').qrScene, ledger.entry(4999, 'a').at], ['q0', 'q1', T0 + 4999]);
    assert.equal(ledger.days(DAY0, DAY0)[0]?.followers, 5010);
  });
});
