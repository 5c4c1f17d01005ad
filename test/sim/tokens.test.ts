import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenAuthority } from '../../sim/tokens.ts';

const T0 = 1_800_000_000;

describe('TokenAuthority', () => {
  it('issues a new classic token per call; the previous one lives 300 s more', () => {
    const tokens = new TokenAuthority(1);
    const a = tokens.issue('wxa', T0);
    assert.equal(a.expiresIn, 7200);
    const b = tokens.issue('wxa', T0 + 100);
    assert.deepEqual(tokens.verify(a.accessToken, T0 + 399), { errcode: 0, appid: 'wxa' });
    assert.deepEqual(tokens.verify(a.accessToken, T0 + 400), { errcode: 40001, appid: 'wxa' });
    assert.equal(tokens.verify(b.accessToken, T0 + 100 + 7199).errcode, 0);
    assert.equal(tokens.verify(b.accessToken, T0 + 100 + 7200).errcode, 42001);
    // Another account's calls never touch this account's tokens.
    tokens.issue('wxb', T0 + 200);
    assert.equal(tokens.verify(b.accessToken, T0 + 1000).errcode, 0);
  });

  it('tells an expired token (42001) from a superseded one (40001) and from garbage (40014/41001)', () => {
    const tokens = new TokenAuthority(1);
    const a = tokens.issue('wxa', T0);
    assert.equal(tokens.verify(a.accessToken, T0 + 8000).errcode, 42001);
    tokens.issue('wxa', T0 + 10);
    assert.equal(tokens.verify(a.accessToken, T0 + 8000).errcode, 40001);
    assert.equal(tokens.verify(null, T0).errcode, 41001);
    assert.equal(tokens.verify('', T0).errcode, 41001);
    assert.equal(tokens.verify('a b', T0).errcode, 40014);
    assert.equal(tokens.verify('x'.repeat(600), T0).errcode, 40014);
    assert.equal(tokens.verify('86_unknown', T0).errcode, 40001);
  });

  it('keeps the stable token until 5 minutes before expiry, with expires_in counting down', () => {
    const tokens = new TokenAuthority(1);
    const a = tokens.stable('wxa', T0, false);
    assert.ok(a);
    const same = tokens.stable('wxa', T0 + 6000, false);
    assert.deepEqual(same, { accessToken: a.accessToken, expiresIn: 1200 });
    const rotated = tokens.stable('wxa', T0 + 6900, false);
    assert.ok(rotated);
    assert.notEqual(rotated.accessToken, a.accessToken);
    assert.equal(tokens.verify(a.accessToken, T0 + 7199).errcode, 0);
    assert.equal(tokens.verify(a.accessToken, T0 + 7200).errcode, 42001);
  });

  it('limits forced refreshes to one per 30 s and 20 per day', () => {
    const tokens = new TokenAuthority(1);
    const first = tokens.stable('wxa', T0, true);
    assert.ok(first);
    assert.equal(tokens.stable('wxa', T0 + 29, true)?.accessToken, first.accessToken);
    let t = T0;
    for (let i = 1; i < 20; i += 1) {
      t += 30;
      assert.ok(tokens.stable('wxa', t, true));
    }
    assert.equal(tokens.stable('wxa', t + 30, true), undefined);
    assert.ok(tokens.stable('wxa', t + 30, false), 'normal mode still works');
  });

  it('expires every live token of an account on request', () => {
    const tokens = new TokenAuthority(1);
    const a = tokens.issue('wxa', T0);
    const s = tokens.stable('wxa', T0, false);
    const other = tokens.issue('wxb', T0);
    assert.equal(tokens.expireAll('wxa', T0 + 5), 2);
    assert.equal(tokens.verify(a.accessToken, T0 + 5).errcode, 42001);
    assert.equal(tokens.verify(s?.accessToken ?? '', T0 + 5).errcode, 42001);
    assert.equal(tokens.verify(other.accessToken, T0 + 5).errcode, 0);
    assert.notEqual(tokens.stable('wxa', T0 + 6, false)?.accessToken, s?.accessToken);
  });
});
