import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, WxsyncError, isWxsyncError } from '../../../lib/errors.ts';
import { USER_GET_API, parseUserGet, type UserGetAnswer } from '../../../lib/wechat/client.ts';
import { followerPages, type FollowerPage, type FollowerSource, type ResumePoint } from '../../../lib/wechat/pager.ts';
import { SimHarness } from './sim-harness.ts';

/** A source answering raw user/get JSON bodies in order, through the client's own answer parser. */
function scripted(bodies: readonly Record<string, unknown>[]): FollowerSource & { readonly cursors: string[] } {
  const cursors: string[] = [];
  return {
    cursors,
    userGet(nextOpenid: string): Promise<UserGetAnswer> {
      cursors.push(nextOpenid);
      const body = bodies[cursors.length - 1];
      if (body === undefined) return Promise.reject(new Error(`unexpected call ${cursors.length} (cursor ${nextOpenid})`));
      return Promise.resolve(parseUserGet(body));
    },
  };
}

async function collect(source: FollowerSource, from?: ResumePoint): Promise<FollowerPage[]> {
  const pages: FollowerPage[] = [];
  for await (const page of followerPages(source, from)) pages.push(page);
  return pages;
}

async function crawlError(source: FollowerSource, from?: ResumePoint): Promise<{ pages: FollowerPage[]; error: WxsyncError }> {
  const pages: FollowerPage[] = [];
  try {
    for await (const page of followerPages(source, from)) pages.push(page);
  } catch (error) {
    assert.ok(isWxsyncError(error), `expected a WxsyncError, got ${String(error)}`);
    return { pages, error };
  }
  assert.fail('the crawl should have failed');
}

describe('followerPages (scripted answers)', () => {
  it('stops on the count-0 answer without data, after the page holding the last follower', async () => {
    const source = scripted([
      { total: 2, count: 2, data: { openid: ['oA', 'oB'] }, next_openid: 'oB' },
      { total: 2, count: 0, next_openid: '' },
    ]);
    const pages = await collect(source);
    assert.deepEqual(source.cursors, ['', 'oB']);
    assert.deepEqual(pages, [
      { page: 0, cursor: '', nextOpenid: 'oB', total: 2, openids: ['oA', 'oB'], last: false },
      { page: 1, cursor: 'oB', nextOpenid: '', total: 2, openids: [], last: true },
    ]);
  });

  it('stops on each terminal condition of §2.1 alone, making no further call', async () => {
    const terminals: Record<string, Record<string, unknown>> = {
      'no data, next_openid kept': { total: 1, count: 0, next_openid: 'oA' },
      'no data, no next_openid': { total: 1, count: 0 },
      'data with an empty list': { total: 1, count: 0, data: { openid: [] }, next_openid: 'oA' },
      'data without openid': { total: 1, count: 0, data: {}, next_openid: 'oA' },
      'data: null': { total: 1, count: 0, data: null, next_openid: 'oA' },
      'only empty-string openids': { total: 1, count: 0, data: { openid: [''] }, next_openid: 'oA' },
    };
    for (const [name, terminal] of Object.entries(terminals)) {
      const source = scripted([{ total: 1, count: 1, data: { openid: ['oA'] }, next_openid: 'oA' }, terminal]);
      const pages = await collect(source);
      assert.equal(source.cursors.length, 2, name);
      assert.deepEqual(pages.map((p) => [p.openids.length, p.last]), [[1, false], [0, true]], name);
    }
  });

  it('takes an empty next_openid on a full page as the end: that page is yielded and no extra call is made', async () => {
    const source = scripted([
      { total: 3, count: 2, data: { openid: ['oA', 'oB'] }, next_openid: 'oB' },
      { total: 3, count: 1, data: { openid: ['oC'] }, next_openid: '' },
    ]);
    const pages = await collect(source);
    assert.equal(source.cursors.length, 2);
    assert.deepEqual(pages.at(-1), { page: 1, cursor: 'oB', nextOpenid: '', total: 3, openids: ['oC'], last: true });
  });

  it('handles an account without followers: one call, one empty last page', async () => {
    const source = scripted([{ total: 0, count: 0 }]);
    assert.deepEqual(await collect(source), [{ page: 0, cursor: '', nextOpenid: '', total: 0, openids: [], last: true }]);
  });

  it('skips empty-string openids (the old doc sample ["","OPENID1","OPENID2"] with count 2)', async () => {
    const source = scripted([
      { total: 2, count: 2, data: { openid: ['', 'OPENID1', 'OPENID2'] }, next_openid: 'OPENID2' },
      { total: 2, count: 0, next_openid: '' },
    ]);
    const pages = await collect(source);
    assert.deepEqual(pages[0]?.openids, ['OPENID1', 'OPENID2']);
  });

  it('streams: the next page is fetched only when the consumer asks for it', async () => {
    const source = scripted([
      { total: 4, count: 2, data: { openid: ['oA', 'oB'] }, next_openid: 'oB' },
      { total: 4, count: 2, data: { openid: ['oC', 'oD'] }, next_openid: 'oD' },
      { total: 4, count: 0, next_openid: '' },
    ]);
    const pages = followerPages(source);
    const first = await pages.next();
    assert.equal(first.done, false);
    assert.equal(source.cursors.length, 1);
    await pages.return(undefined);
    assert.equal(source.cursors.length, 1);
  });

  it('resumes from a cursor and page number', async () => {
    const source = scripted([
      { total: 4, count: 2, data: { openid: ['oC', 'oD'] }, next_openid: 'oD' },
      { total: 4, count: 0, next_openid: '' },
    ]);
    const pages = await collect(source, { cursor: 'oB', page: 1 });
    assert.deepEqual(source.cursors, ['oB', 'oD']);
    assert.deepEqual(pages.map((p) => [p.page, p.cursor]), [[1, 'oB'], [2, 'oD']]);
  });

  it('refuses an answer whose next_openid repeats the cursor (it would loop forever)', async () => {
    const source = scripted([
      { total: 4, count: 2, data: { openid: ['oA', 'oB'] }, next_openid: 'oB' },
      { total: 4, count: 1, data: { openid: ['oB'] }, next_openid: 'oB' },
    ]);
    const { pages, error } = await crawlError(source);
    assert.equal(pages.length, 1);
    assert.equal(error.code, ErrorCode.WechatBadAnswer);
    assert.deepEqual([error.details['cursor'], error.details['page']], ['oB', 1]);
  });

  it('puts the resume point into every typed error, and passes other errors through untouched', async () => {
    const bad = scripted([
      { total: 4, count: 2, data: { openid: ['oA', 'oB'] }, next_openid: 'oB' },
      { total: 4, count: 3, data: { openid: ['oC', 'oD'] }, next_openid: 'oD' },
    ]);
    const { error } = await crawlError(bad);
    assert.equal(error.code, ErrorCode.WechatBadAnswer);
    assert.deepEqual([error.details['cursor'], error.details['page'], error.details['api']], ['oB', 1, USER_GET_API]);

    const plain = new Error('bug');
    const failing: FollowerSource = { userGet: () => Promise.reject(plain) };
    await assert.rejects(collect(failing), (e) => e === plain);
  });
});

describe('followerPages against the simulator', () => {
  const SIZES = [0, 1, 9_999, 10_000, 10_001, 25_000] as const;
  let sim: SimHarness;

  before(async () => {
    sim = await SimHarness.start({ followers: [...SIZES, 25_000, 25_000, 25_000, 25_000, 3] });
  });
  after(async () => {
    await sim.close();
  });

  for (const [i, size] of SIZES.entries()) {
    it(`lists exactly the ${size} followers, with ${Math.ceil(size / 10_000) + 1} user/get calls including the end-of-list one`, async () => {
      const truth = await sim.followers(i);
      assert.equal(truth.length, size);
      const client = sim.client(i);
      const seen: string[] = [];
      let pages = 0;
      let lastPage: FollowerPage | undefined;
      for await (const page of followerPages(client)) {
        assert.equal(page.page, pages);
        assert.ok(page.openids.length <= 10_000);
        seen.push(...page.openids);
        pages += 1;
        lastPage = page;
      }
      assert.equal(seen.length, size, 'no openid twice');
      assert.deepEqual(new Set(seen), new Set(truth));
      assert.equal(lastPage?.last, true);
      assert.equal(lastPage.total, size);
      const calls = await sim.calls(i, USER_GET_API);
      assert.equal(calls.calls, Math.ceil(size / 10_000) + 1);
      assert.equal(pages, calls.calls, 'one page per call');
      assert.deepEqual(calls.errors, {});
    });
  }

  it('refreshes a token that expires mid-crawl (42001) and goes on', async () => {
    const i = 6;
    const client = sim.client(i);
    const seen: string[] = [];
    for await (const page of followerPages(client)) {
      seen.push(...page.openids);
      if (page.page === 0) await sim.admin('POST', `/__sim/accounts/${sim.account(i).appid}/expire-tokens`);
    }
    assert.deepEqual(new Set(seen), new Set(await sim.followers(i)));
    assert.equal(seen.length, 25_000);
    const userGet = await sim.calls(i, USER_GET_API);
    assert.deepEqual(userGet.errors, { 42001: 1 });
    assert.equal(userGet.ok, 4);
    assert.equal((await sim.calls(i, '/cgi-bin/stable_token')).calls, 2);
  });

  it('stops on 45009 with the resume cursor, and resuming after the quota resets completes the set', async () => {
    const i = 7;
    await sim.faults(i, { quotaRemaining: 2 });
    const client = sim.client(i);
    const { pages, error } = await crawlError(client);
    assert.equal(error.code, ErrorCode.WechatQuotaExhausted);
    assert.equal(error.retriable, false);
    assert.equal(error.details['errcode'], 45009);
    assert.equal(pages.length, 2);
    assert.deepEqual({ cursor: error.details['cursor'], page: error.details['page'] }, { cursor: pages[1]?.nextOpenid, page: 2 });

    await sim.faults(i, { clearQuota: true });
    const resumed = await collect(client, { cursor: error.details['cursor'] as string, page: error.details['page'] as number });
    assert.deepEqual(resumed.map((p) => p.page), [2, 3]);
    const seen = [...pages, ...resumed].flatMap((p) => p.openids);
    assert.equal(seen.length, 25_000);
    assert.deepEqual(new Set(seen), new Set(await sim.followers(i)));
    const userGet = await sim.calls(i, USER_GET_API);
    assert.deepEqual(userGet.errors, { 45009: 1 });
    assert.equal(userGet.ok, 4);
  });

  it('retries -1 (system busy) and 45011 (minute limit) and completes the crawl', async () => {
    const i = 8;
    await sim.faults(i, {
      failNext: [
        { api: USER_GET_API, errcode: -1, after: 1, count: 2 },
        { api: USER_GET_API, errcode: 45011, after: 0, count: 1 },
      ],
    });
    const seen = (await collect(sim.client(i))).flatMap((p) => p.openids);
    assert.deepEqual(new Set(seen), new Set(await sim.followers(i)));
    const userGet = await sim.calls(i, USER_GET_API);
    assert.deepEqual(userGet.errors, { '-1': 2, 45011: 1 });
    assert.equal(userGet.ok, 4);
  });

  it('stops on 40164, 48001, 40013 and 50002 midway with the typed error and the resume point', async () => {
    const i = 9;
    const expected: [number, ErrorCode][] = [
      [40164, ErrorCode.WechatForbidden],
      [48001, ErrorCode.WechatForbidden],
      [40013, ErrorCode.WechatRequestInvalid],
      [50002, ErrorCode.WechatForbidden],
    ];
    const client = sim.client(i);
    for (const [errcode, code] of expected) {
      await sim.faults(i, { failNext: { api: USER_GET_API, errcode, after: 2 } });
      const { pages, error } = await crawlError(client);
      assert.equal(error.code, code, String(errcode));
      assert.equal(error.retriable, false);
      assert.deepEqual([error.details['errcode'], error.details['page'], error.details['cursor']], [errcode, 2, pages[1]?.nextOpenid]);
    }
  });

  it('a third-party SDK (co-wechat-api, prefix pointed at the simulator) lists the same followers', async () => {
    interface CoWechatApi {
      prefix: string;
      getFollowers(nextOpenid?: string): Promise<{ total: number; count: number; data?: { openid: string[] }; next_openid: string }>;
    }
    const load = createRequire(import.meta.url);
    const Api = load('co-wechat-api') as new (appid: string, secret: string) => CoWechatApi;
    const i = 10;
    const { appid, secret } = sim.account(i);
    const sdk = new Api(appid, secret);
    // The SDK has no base-URL option; every call is built from this instance property.
    sdk.prefix = `${sim.apiBase}/cgi-bin/`;
    const theirs: string[] = [];
    let next = '';
    for (;;) {
      const answer = await sdk.getFollowers(next);
      if (answer.data === undefined || answer.count === 0) break;
      theirs.push(...answer.data.openid);
      next = answer.next_openid;
      if (next === '') break;
    }
    const ours = (await collect(sim.client(i))).flatMap((p) => p.openids);
    assert.equal(theirs.length, 3);
    assert.deepEqual(ours, theirs, 'same openids in the same order');
    assert.deepEqual(new Set(ours), new Set(await sim.followers(i)));
  });
});
