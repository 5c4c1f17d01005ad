import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EdgeDedupe } from '../../../producers/callback/dedupe.ts';

describe('EdgeDedupe', () => {
  it('publishes an id once within the window, also while the first publish is in flight', async () => {
    let now = 0;
    const dedupe = new EdgeDedupe<string>(1000, 10, () => now);
    let calls = 0;
    let release: (v: string) => void = () => undefined;
    const first = dedupe.once('a', () => { calls += 1; return new Promise((resolve) => { release = resolve; }); });
    const retry = dedupe.once('a', () => { calls += 1; return Promise.resolve('again'); });
    release('published');
    assert.deepEqual(await first, { outcome: 'published', duplicate: false });
    assert.deepEqual(await retry, { outcome: 'published', duplicate: true });
    now = 2000;
    assert.deepEqual(await dedupe.once('a', () => { calls += 1; return Promise.resolve('late'); }), { outcome: 'late', duplicate: false });
    assert.equal(calls, 2);
  });

  it('lets a retry try again after a failed publish, and stays bounded', async () => {
    const dedupe = new EdgeDedupe<string>(60_000, 3);
    await assert.rejects(dedupe.once('x', () => Promise.reject(new Error('down'))));
    assert.deepEqual(await dedupe.once('x', () => Promise.resolve('ok')), { outcome: 'ok', duplicate: false });
    for (const id of ['b', 'c', 'd', 'e']) await dedupe.once(id, () => Promise.resolve(id));
    assert.ok(dedupe.size <= 3);
  });

  it('evicts settled ids by age and by size, oldest first, but never one still being published', async () => {
    let now = 0;
    const dedupe = new EdgeDedupe<string>(1000, 2, () => now);
    let release: (v: string) => void = () => undefined;
    const pending = dedupe.once('p', () => new Promise((resolve) => { release = resolve; }));
    for (const id of ['a', 'b', 'c']) await dedupe.once(id, () => Promise.resolve(id));
    const retry = dedupe.once('p', () => Promise.resolve('again'));
    release('first');
    assert.deepEqual(await pending, { outcome: 'first', duplicate: false });
    assert.deepEqual(await retry, { outcome: 'first', duplicate: true });
    assert.deepEqual(await dedupe.once('a', () => Promise.resolve('a2')), { outcome: 'a2', duplicate: false }, 'the oldest settled id was evicted');
    now = 5000;
    await dedupe.once('z', () => Promise.resolve('z'));
    assert.equal(dedupe.size, 1, 'expired ids are still remembered');
  });
});
