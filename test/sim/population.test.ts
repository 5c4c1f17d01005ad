import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { INITIAL_HISTORY, PAGE_SIZE, Population, SCENES, qrKey, type Scene } from '../../sim/population.ts';
import { Rng } from '../../sim/random.ts';

const OPENID = /^o[A-Za-z0-9_-]{27}$/;
const NO_CHOICE = { resubscribeRate: 0, qrRate: 0 };

function allInOrder(population: Population): string[] {
  return Buffer.concat([...population.exportChunks(997)]).toString('latin1').split('\n').filter((line) => line !== '');
}

describe('Population', () => {
  it('is deterministic for a seed and account, and differs across both', () => {
    const a = new Population({ seed: 7, account: 1, followers: 500 });
    const b = new Population({ seed: 7, account: 1, followers: 500 });
    const otherSeed = new Population({ seed: 8, account: 1, followers: 500 });
    const otherAccount = new Population({ seed: 7, account: 2, followers: 500 });
    assert.deepEqual(allInOrder(a), allInOrder(b));
    assert.deepEqual(a.user(42), b.user(42));
    assert.notDeepEqual(allInOrder(a), allInOrder(otherSeed));
    assert.notEqual(a.openidPrefix, otherAccount.openidPrefix);
    const other = new Set(allInOrder(otherAccount));
    assert.ok(allInOrder(a).every((openid) => !other.has(openid)));
  });

  it('encodes openids in WeChat style and decodes them back to their user', () => {
    const population = new Population({ seed: 1, account: 1, followers: 200_000 });
    const seen = new Set<string>();
    for (let index = 0; index < population.userCount; index += 997) {
      const openid = population.openidOf(index);
      assert.match(openid, OPENID);
      assert.ok(openid.startsWith(population.openidPrefix));
      assert.equal(population.indexOf(openid), index);
      seen.add(openid);
    }
    assert.equal(seen.size, Math.ceil(population.userCount / 997));
  });

  it('refuses forged, foreign and never-issued openids', () => {
    const population = new Population({ seed: 1, account: 1, followers: 1000 });
    const foreign = new Population({ seed: 1, account: 2, followers: 1000 });
    const openid = population.openidOf(17);
    for (let at = 1; at < openid.length; at += 1) {
      const swapped = openid.slice(0, at) + (openid[at] === 'A' ? 'B' : 'A') + openid.slice(at + 1);
      assert.equal(population.indexOf(swapped), undefined, `changed character ${at}`);
    }
    assert.equal(population.indexOf(foreign.openidOf(17)), undefined);
    assert.equal(population.indexOf(''), undefined);
    assert.equal(population.indexOf(`${openid}x`), undefined);
    assert.equal(population.indexOf('o'.repeat(28)), undefined);
    assert.equal(population.indexOf(openid.replace(/.$/, '\u00e9')), undefined);
    // An openid the account would give its next new follower is not valid before that follow.
    assert.equal(population.indexOf(population.openidOf(population.userCount)), undefined);
  });

  it('pages through exactly the followers, in a stable order that is not follow order', () => {
    const population = new Population({ seed: 3, account: 1, followers: 25_000 });
    const page = new Uint32Array(PAGE_SIZE);
    const seen: string[] = [];
    let after = -1;
    for (;;) {
      const count = population.collect(after, page);
      if (count === 0) break;
      for (let k = 0; k < count; k += 1) {
        const buffer = Buffer.alloc(28);
        population.writeOpenid(page[k] ?? 0, buffer, 0);
        seen.push(buffer.toString('latin1'));
      }
      after = page[count - 1] ?? 0;
    }
    assert.equal(seen.length, 25_000);
    assert.equal(new Set(seen).size, 25_000);
    const expected = new Set(Array.from({ length: 25_000 }, (_, index) => population.openidOf(index)));
    assert.ok(seen.every((openid) => expected.has(openid)));
    assert.deepEqual(allInOrder(population), seen);
    const firstIndices = seen.slice(0, 20).map((openid) => population.indexOf(openid));
    assert.notDeepEqual(firstIndices, [...firstIndices].sort((x, y) => (x ?? 0) - (y ?? 0)));
    // Former followers exist (for resubscribes and subscribe:0 answers) but are not listed.
    assert.equal(population.userCount, 25_000 + 1250);
    assert.equal(population.isFollowing(25_100), false);
  });

  it('churns: new followers land in the middle of the order; unfollows leave it', () => {
    const population = new Population({ seed: 5, account: 1, followers: 2000 });
    const rng = new Rng(9);
    const before = allInOrder(population);
    const joined = Array.from({ length: 50 }, () => population.subscribe(rng, 1_800_000_000, NO_CHOICE));
    const after = allInOrder(population);
    assert.equal(population.followerCount, 2050);
    assert.equal(after.length, 2050);
    const positions = joined.map((event) => after.indexOf(event.openid));
    assert.ok(positions.every((p) => p >= 0));
    assert.ok(positions.some((p) => p < 1000), 'some new followers appear early in the list');
    assert.deepEqual(after.filter((openid) => before.includes(openid)), before);

    const left = population.unsubscribe(rng, 1_800_000_001);
    assert.ok(left);
    assert.equal(left.type, 'unsubscribe');
    assert.equal(population.followerCount, 2049);
    assert.ok(!allInOrder(population).includes(left.openid));
    assert.equal(population.user(left.index).following, false);
    assert.equal(population.indexOf(left.openid), left.index, 'a former follower stays known');
  });

  it('gives a resubscribing user the same openid and a new subscribe time', () => {
    const population = new Population({ seed: 5, account: 1, followers: 10, formerFollowers: 0 });
    const rng = new Rng(1);
    const left = population.unsubscribe(rng, 1_800_000_000);
    assert.ok(left);
    const back = population.subscribe(rng, 1_800_000_100, { resubscribeRate: 1, qrRate: 0 });
    assert.equal(back.resubscribe, true);
    assert.equal(back.openid, left.openid);
    assert.equal(back.index, left.index);
    assert.equal(population.user(back.index).subscribeTime, 1_800_000_100);
    assert.equal(population.followerCount, 10);
    assert.equal(population.userCount, 10);
    // Nobody left to bring back: the next follow is a new user.
    const fresh = population.subscribe(rng, 1_800_000_200, { resubscribeRate: 1, qrRate: 0 });
    assert.equal(fresh.resubscribe, false);
    assert.equal(fresh.index, 10);
  });

  it('keeps one user\'s events at least a second apart, so (openid, CreateTime, Event) names one event', () => {
    const population = new Population({ seed: 3, account: 1, followers: 1, formerFollowers: 0 });
    const rng = new Rng(5);
    const now = 1_800_000_000;
    const left = population.unsubscribe(rng, now);
    const back = population.subscribe(rng, now, { resubscribeRate: 1, qrRate: 0 });
    const leftAgain = population.unsubscribe(rng, now);
    const backAgain = population.subscribe(rng, now, { resubscribeRate: 1, qrRate: 0 });
    assert.deepEqual([left, back, leftAgain, backAgain].map((e) => [e?.openid, e?.createTime]), [
      [left?.openid, now], [left?.openid, now + 1], [left?.openid, now + 2], [left?.openid, now + 3],
    ]);
    assert.equal(population.user(back.index).subscribeTime, now + 3);
  });

  it('describes QR follows the same way in the event and in the user info', () => {
    const population = new Population({ seed: 2, account: 1, followers: 10 });
    const rng = new Rng(4);
    for (let i = 0; i < 30; i += 1) {
      const event = population.subscribe(rng, 1_800_000_000 + i, { resubscribeRate: 0, qrRate: 1 });
      const user = population.user(event.index);
      assert.equal(user.scene, 'ADD_SCENE_QR_CODE');
      assert.ok(user.qr);
      assert.equal(event.eventKey, `qrscene_${user.qr.qrSceneStr === '' ? String(user.qr.qrScene) : user.qr.qrSceneStr}`);
      assert.equal(event.ticket, user.qr.ticket);
      assert.match(event.ticket, /^[A-Za-z0-9+/]+=*$/);
    }
    const plain = population.subscribe(rng, 1_800_000_100, NO_CHOICE);
    assert.equal(plain.eventKey, undefined);
    assert.notEqual(population.user(plain.index).scene, 'ADD_SCENE_QR_CODE');
  });

  it('keeps order and membership exact across many new users (pending merges)', () => {
    const population = new Population({ seed: 11, account: 1, followers: 3000 });
    const rng = new Rng(2);
    const joined = new Set<string>();
    for (let i = 0; i < 9000; i += 1) joined.add(population.subscribe(rng, 1_800_000_000, NO_CHOICE).openid);
    for (let i = 0; i < 500; i += 1) joined.delete(population.unsubscribe(rng, 1_800_000_001)?.openid ?? '');
    const listed = allInOrder(population);
    assert.equal(listed.length, population.followerCount);
    assert.equal(new Set(listed).size, listed.length);
    const positions = listed.map((openid) => population.positionOf(population.indexOf(openid) ?? -1));
    assert.ok(positions.every((p, i) => i === 0 || p > (positions[i - 1] ?? 0)), 'strictly increasing positions');
    const listedSet = new Set(listed);
    assert.ok([...joined].every((openid) => listedSet.has(openid)));
  });

  it('serves user records with plausible attributes', () => {
    const population = new Population({ seed: 1, account: 1, followers: 2000, unionid: true });
    const scenes = new Set<string>();
    for (let index = 0; index < 2000; index += 1) {
      const user = population.user(index);
      scenes.add(user.scene);
      assert.ok(user.subscribeTime > 1_400_000_000 && user.subscribeTime < 1_704_067_200);
      assert.match(user.unionid ?? '', OPENID);
      assert.ok(['zh_CN', 'en', 'zh_TW'].includes(user.language));
    }
    assert.ok(scenes.size >= 8, `a mix of scenes, got ${[...scenes].join(',')}`);
    assert.ok([...scenes].every((scene) => (SCENES as readonly string[]).includes(scene)));
    assert.equal(new Population({ seed: 1, account: 2, followers: 5 }).user(0).unionid, undefined);
  });

  it('draws unnamed follows exactly as before scenes could be named, so seeded runs repeat', () => {
    const population = new Population({ seed: 5, account: 1, followers: 2000 });
    const rng = new Rng(9);
    const lines: string[] = [];
    for (let i = 0; i < 200; i += 1) {
      const event = i % 3 === 2 ? population.unsubscribe(rng, 1_800_000_000 + i) : population.subscribe(rng, 1_800_000_000 + i, { resubscribeRate: 0.2, qrRate: 0.4 });
      lines.push(`${event?.type} ${event?.openid} ${event?.createTime} ${event?.scene} ${event?.eventKey} ${event?.ticket} ${event?.resubscribe}`);
    }
    // The fingerprint of these 200 events as the simulator drew them before this change.
    assert.equal(createHash('sha256').update(lines.join('\n')).digest('hex'), '2759c795e25193e3760107c0a21fb52176e28d3c9c9333b001ae61fa8fcf1848');
  });

  it('sends every follow of a request through a named scene or QR code, one ticket per QR code', () => {
    const population = new Population({ seed: 4, account: 1, followers: 10, formerFollowers: 0 });
    const rng = new Rng(9);
    const spring = { ...NO_CHOICE, qrScene: '春季活动-2026' };
    const [a, b] = [population.subscribe(rng, 1_800_000_000, spring), population.subscribe(rng, 1_800_000_000, spring)];
    for (const event of [a, b]) {
      assert.equal(event.scene, 'ADD_SCENE_QR_CODE');
      assert.equal(event.eventKey, 'qrscene_春季活动-2026');
      assert.deepEqual(event.source, { scene: 'ADD_SCENE_QR_CODE', qrScene: '春季活动-2026', returning: false });
      assert.deepEqual(population.user(event.index).qr, { qrScene: 0, qrSceneStr: '春季活动-2026', ticket: event.ticket });
    }
    assert.equal(a.ticket, b.ticket);
    assert.match(a.ticket ?? '', /^[A-Za-z0-9+/]+=*$/);
    assert.notEqual(population.subscribe(rng, 1_800_000_000, { ...NO_CHOICE, qrScene: 'autumn' }).ticket, a.ticket);

    const channels = population.subscribe(rng, 1_800_000_000, { ...NO_CHOICE, qrRate: 1, scene: 'ADD_SCENE_CHANNELS' });
    assert.deepEqual([channels.scene, channels.eventKey, channels.ticket], ['ADD_SCENE_CHANNELS', undefined, undefined]);
    assert.deepEqual(channels.source, { scene: 'ADD_SCENE_CHANNELS', qrScene: undefined, returning: false });
    assert.equal(population.user(channels.index).scene, 'ADD_SCENE_CHANNELS');
    const someQr = population.subscribe(rng, 1_800_000_000, { ...NO_CHOICE, scene: 'ADD_SCENE_QR_CODE' });
    const qr = population.user(someQr.index).qr;
    assert.ok(qr);
    assert.equal(someQr.eventKey, `qrscene_${qrKey(qr)}`);
    assert.throws(() => population.subscribe(rng, 1_800_000_000, { ...NO_CHOICE, scene: 'ADD_SCENE_SEARCH', qrScene: 'x' }), RangeError);
  });

  it('tells where the follow an unfollow ends came from, and whether it was a return', () => {
    const population = new Population({ seed: 4, account: 1, followers: 10, formerFollowers: 0 });
    const rng = new Rng(3);
    const initial = population.user(2);
    const left = population.unsubscribe(rng, 1_800_000_000, 2);
    assert.deepEqual(left?.source, { scene: initial.scene, qrScene: initial.qr === undefined ? undefined : qrKey(initial.qr), returning: false });
    const back = population.subscribe(rng, 1_800_000_010, { ...NO_CHOICE, qrScene: 'poster' }, 2);
    assert.deepEqual(back.source, { scene: 'ADD_SCENE_QR_CODE', qrScene: 'poster', returning: true });
    assert.deepEqual(population.unsubscribe(rng, 1_800_000_020, 2)?.source, back.source);
    const again = population.subscribe(rng, 1_800_000_030, { ...NO_CHOICE, scene: 'ADD_SCENE_SEARCH' }, 2);
    assert.equal(population.user(2).qr, undefined, 'the named QR code belonged to the earlier follow');
    assert.deepEqual(population.unsubscribe(rng, 1_800_000_040, 2)?.source, { scene: 'ADD_SCENE_SEARCH', qrScene: undefined, returning: true });
    assert.equal(again.resubscribe, true);
    const fresh = population.subscribe(rng, 1_800_000_050, NO_CHOICE);
    assert.equal(fresh.source.returning, false);
    assert.equal(population.unsubscribe(rng, 1_800_000_060, fresh.index)?.source.returning, false);
  });

  it('derives the initial population\'s history: each user followed once, former followers left again, all before 2024', () => {
    const population = new Population({ seed: 6, account: 2, followers: 3000 });
    const follows = new Map<Scene, number>();
    let unfollows = 0;
    population.forEachInitialChange((type, at, scene) => {
      assert.ok(at >= INITIAL_HISTORY.from && at <= INITIAL_HISTORY.to, `${at} lies outside the initial history`);
      if (type === 'subscribe') follows.set(scene, (follows.get(scene) ?? 0) + 1);
      else unfollows += 1;
    });
    assert.equal(unfollows, 150);
    const expected = new Map<Scene, number>();
    for (let index = 0; index < population.userCount; index += 1) {
      const scene = population.user(index).scene;
      expected.set(scene, (expected.get(scene) ?? 0) + 1);
    }
    assert.deepEqual(follows, expected);
    // Churn changes the users, not their history.
    population.unsubscribe(new Rng(1), 1_800_000_000, 0);
    let after = 0;
    population.forEachInitialChange(() => { after += 1; });
    assert.equal(after, 3150 + 150);
  });

  it('handles an empty account', () => {
    const population = new Population({ seed: 1, account: 1, followers: 0 });
    assert.equal(population.followerCount, 0);
    assert.deepEqual(allInOrder(population), []);
    assert.equal(population.unsubscribe(new Rng(1), 1), undefined);
    const event = population.subscribe(new Rng(1), 1_800_000_000, { resubscribeRate: 1, qrRate: 0 });
    assert.deepEqual(allInOrder(population), [event.openid]);
  });
});
