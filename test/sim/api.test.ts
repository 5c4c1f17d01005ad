import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { beijingDay, dayDate } from '../../lib/wechat/datacube.ts';
import { startTestSim, type TestSim } from './helpers.ts';

const SIZES = [0, 1, 9_999, 10_000, 10_001, 25_000] as const;
/** Data pages plus the terminal count-0 call (the empty account answers its first call with it). */
const EXPECTED_CALLS = [1, 2, 2, 2, 3, 4] as const;

describe('GET /cgi-bin/user/get', () => {
  let sim: TestSim;
  before(async () => {
    sim = await startTestSim({ followers: [...SIZES], userGetDailyQuota: 1000 });
  });
  after(() => sim.close());

  SIZES.forEach((size, i) => {
    it(`returns exactly the truth at ${size} followers, in ${EXPECTED_CALLS[i]} calls`, async () => {
      const token = await sim.token(i);
      const before = (await sim.stats(i)).calls['/cgi-bin/user/get']?.calls ?? 0;
      const crawl = await sim.crawl(token);
      assert.equal(crawl.calls, EXPECTED_CALLS[i]);
      assert.equal(crawl.total, size);
      assert.equal(crawl.openids.length, size);
      assert.equal(new Set(crawl.openids).size, size);
      assert.deepEqual([...crawl.openids].sort(), (await sim.followers(i)).sort());
      const stats = await sim.stats(i);
      assert.equal((stats.calls['/cgi-bin/user/get']?.calls ?? 0) - before, EXPECTED_CALLS[i]);
    });
  });

  it('answers an empty account without data, as WeChat does', async () => {
    const { data } = await sim.get('/cgi-bin/user/get', { access_token: await sim.token(0) });
    assert.deepEqual(data, { total: 0, count: 0, next_openid: '' });
  });

  it('treats an empty next_openid as the start, and ends with the terminal page', async () => {
    const token = await sim.token(1);
    const first = await sim.get('/cgi-bin/user/get', { access_token: token, next_openid: '' });
    const openid = (first.data['data'] as { openid: string[] }).openid[0];
    assert.deepEqual(first.data, { total: 1, count: 1, data: { openid: [openid] }, next_openid: openid });
    const second = await sim.get('/cgi-bin/user/get', { access_token: token, next_openid: openid ?? '' });
    assert.deepEqual(second.data, { total: 1, count: 0, next_openid: '' });
  });

  it('answers 40003 to a next_openid that is not one of the account', async () => {
    const token = await sim.token(2);
    const foreign = (await sim.followers(5))[0] ?? '';
    for (const next of [foreign, 'garbage', 'o'.repeat(28), `${foreign.slice(0, 27)}?`]) {
      const { data } = await sim.get('/cgi-bin/user/get', { access_token: token, next_openid: next });
      assert.equal(data['errcode'], 40003, next);
      assert.match(data['errmsg'] as string, /^invalid openid.* rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/);
    }
  });

  it('continues after a cursor whose user has left, and lists new followers mid-list', async () => {
    const token = await sim.token(5);
    const appid = sim.account(5).appid;
    const first = await sim.get('/cgi-bin/user/get', { access_token: token });
    const cursor = first.data['next_openid'] as string;
    const rest = await sim.get('/cgi-bin/user/get', { access_token: token, next_openid: cursor });
    const left = await sim.post(`/__sim/accounts/${appid}/churn`, { unsubscribeOpenids: [cursor] });
    assert.equal(left.status, 200, JSON.stringify(left.data));
    const again = await sim.get('/cgi-bin/user/get', { access_token: token, next_openid: cursor });
    assert.equal(again.data['total'], 24_999);
    assert.deepEqual(again.data['data'], rest.data['data']);

    const joined = await sim.post(`/__sim/accounts/${appid}/churn`, { subscribe: 40, resubscribeOpenids: [cursor], resubscribeRate: 0 });
    const events = joined.data['events'] as { openid: string; type: string; resubscribe: boolean }[];
    assert.deepEqual(events[0], { ...events[0], openid: cursor, type: 'subscribe', resubscribe: true });
    const crawl = await sim.crawl(token);
    assert.equal(crawl.total, 25_040);
    const places = events.map((event) => crawl.openids.indexOf(event.openid));
    assert.ok(places.every((p) => p >= 0));
    assert.ok(places.some((p) => p < 20_000), 'new followers are not all appended at the end');
  });
});

describe('access tokens', () => {
  let sim: TestSim;
  before(async () => {
    sim = await startTestSim({ followers: [10, 10] });
  });
  after(() => sim.close());

  const userGet = async (token: string): Promise<unknown> => (await sim.get('/cgi-bin/user/get', { access_token: token })).data['errcode'];
  const advance = async (seconds: number): Promise<void> => {
    assert.equal((await sim.post('/__sim/clock', { advanceSeconds: seconds })).status, 200);
  };

  it('checks grant_type, appid and secret', async () => {
    const { appid, secret } = sim.account(0);
    const cases: [Record<string, string>, number][] = [
      [{ grant_type: 'password', appid, secret }, 40002],
      [{ appid, secret }, 40002],
      [{ grant_type: 'client_credential', secret }, 41002],
      [{ grant_type: 'client_credential', appid: 'wx0000000000000000', secret }, 40013],
      [{ grant_type: 'client_credential', appid }, 41004],
      [{ grant_type: 'client_credential', appid, secret: `${secret.slice(1)}0` }, 40125],
      [{ grant_type: 'client_credential', appid, secret: sim.account(1).secret }, 40125],
    ];
    for (const [params, errcode] of cases) {
      assert.equal((await sim.get('/cgi-bin/token', params)).data['errcode'], errcode, JSON.stringify(params));
    }
    const { data } = await sim.get('/cgi-bin/token', { grant_type: 'client_credential', appid, secret });
    assert.equal(data['expires_in'], 7200);
    assert.match(data['access_token'] as string, /^[A-Za-z0-9_-]{100,512}$/);
  });

  it('answers 41001, 40014, 40001 to missing, malformed and unknown tokens', async () => {
    assert.equal((await sim.get('/cgi-bin/user/get')).data['errcode'], 41001);
    assert.equal(await userGet('not a token!'), 40014);
    assert.equal(await userGet('86_abcdefghijklmnopqrstuvwxyz'), 40001);
  });

  it('keeps the previous token valid 5 minutes after a new one, then 40001; 42001 after 7200 s', async () => {
    const first = await sim.token(0);
    const second = await sim.token(0);
    assert.notEqual(first, second);
    assert.equal(await userGet(first), undefined);
    // Margins of a few seconds, because the simulated clock still runs with the wall clock.
    await advance(290);
    assert.equal(await userGet(first), undefined);
    await advance(11);
    assert.equal(await userGet(first), 40001);
    assert.equal(await userGet(second), undefined);
    await advance(7200 - 301);
    assert.equal(await userGet(second), 42001);
  });

  it('expires tokens on request', async () => {
    const token = await sim.token(1);
    const { data } = await sim.post(`/__sim/accounts/${sim.account(1).appid}/expire-tokens`, {});
    assert.ok((data['expired'] as number) >= 1);
    assert.equal(await userGet(token), 42001);
    assert.equal(await userGet(await sim.token(1)), undefined);
  });

  it('serves stable tokens per §1.2, isolated from /cgi-bin/token', async () => {
    const { appid, secret } = sim.account(0);
    const stable = async (force?: unknown): Promise<Record<string, unknown>> =>
      (await sim.post('/cgi-bin/stable_token', { grant_type: 'client_credential', appid, secret, ...(force === undefined ? {} : { force_refresh: force }) })).data;
    const a = await stable();
    const b = await stable();
    assert.equal(a['access_token'], b['access_token']);
    assert.equal(a['expires_in'], 7200);
    await sim.token(0);
    await sim.token(0);
    await advance(400);
    assert.equal(await userGet(a['access_token'] as string), undefined, 'classic token calls do not touch the stable token');

    await advance(7200 - 400 - 299);
    const rotated = await stable();
    assert.notEqual(rotated['access_token'], a['access_token']);
    assert.equal(rotated['expires_in'], 7200);
    assert.equal(await userGet(a['access_token'] as string), undefined, 'the old stable token lives out its time');
    await advance(300);
    assert.equal(await userGet(a['access_token'] as string), 42001);

    const forced = await stable(true);
    assert.notEqual(forced['access_token'], rotated['access_token']);
    assert.equal(await userGet(rotated['access_token'] as string), 40001, 'force_refresh kills the old token at once');
    const tooSoon = await stable(true);
    assert.equal(tooSoon['access_token'], forced['access_token'], 'forced calls within 30 s refresh nothing');
    assert.equal((await stable('yes'))['errcode'], 47001);
    assert.equal((await sim.post('/cgi-bin/stable_token', 'not json')).data['errcode'], 47001);
    assert.equal((await sim.post('/cgi-bin/stable_token', { grant_type: 'client_credential', appid, secret: 'x' })).data['errcode'], 40125);
    assert.equal((await sim.http.post<{ errcode: number }>('/cgi-bin/stable_token')).data.errcode, 44002);
  });

  it('answers 43001/43002 to the wrong method and 404/40066 to an unknown API', async () => {
    assert.equal((await sim.post('/cgi-bin/token', {})).data['errcode'], 43001);
    assert.equal((await sim.get('/cgi-bin/user/info/batchget')).data['errcode'], 43002);
    const unknown = await sim.get('/cgi-bin/menu/get');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.data['errcode'], 40066);
  });
});

describe('quotas and injected faults', () => {
  let sim: TestSim;
  let token: string;
  let appid: string;
  before(async () => {
    sim = await startTestSim({ followers: [30], userGetDailyQuota: 4 });
    token = await sim.token();
    appid = sim.account().appid;
  });
  after(() => sim.close());

  const userGet = async (): Promise<unknown> => (await sim.get('/cgi-bin/user/get', { access_token: token })).data['errcode'];
  const faults = async (body: unknown): Promise<{ status: number; data: Record<string, unknown> }> => sim.post(`/__sim/accounts/${appid}/faults`, body);

  it('enforces the user/get daily quota with 45009 and reports it in quota/get', async () => {
    for (let i = 0; i < 4; i += 1) assert.equal(await userGet(), undefined);
    assert.equal(await userGet(), 45009);
    const quota = await sim.post('/cgi-bin/openapi/quota/get', { cgi_path: '/cgi-bin/user/get' }, { access_token: token });
    assert.deepEqual(quota.data, { errcode: 0, errmsg: 'ok', quota: { daily_limit: 4, used: 4, remain: 0 } });
    assert.equal((await sim.post('/cgi-bin/openapi/quota/get', { cgi_path: '/cgi-bin/nope' }, { access_token: token })).data['errcode'], 76021);
    assert.equal((await sim.post('/cgi-bin/clear_quota', { appid }, { access_token: token })).data['errcode'], 0);
    assert.equal(await userGet(), undefined);
    await faults({ quotaRemaining: 1 });
    assert.equal(await userGet(), undefined);
    assert.equal(await userGet(), 45009);
    // Quotas reset at midnight Beijing time.
    await sim.post('/__sim/clock', { advanceSeconds: 86_400 });
    token = await sim.token();
    assert.equal(await userGet(), undefined);
    const stats = await sim.stats();
    assert.equal(stats.calls['/cgi-bin/user/get']?.errors['45009'], 2);
  });

  it('limits calls per minute with 45011', async () => {
    await faults({ perMinuteLimit: 2, userGetDailyQuota: 1000 });
    await sim.post('/__sim/clock', { advanceSeconds: 60 });
    const answers = [];
    for (let i = 0; i < 5; i += 1) answers.push(await userGet());
    // The third call of a minute is refused (a later one only if the wall clock crossed a minute meanwhile).
    assert.ok(answers.indexOf(45011) >= 2, JSON.stringify(answers));
    await sim.post('/__sim/clock', { advanceSeconds: 60 });
    assert.equal(await userGet(), undefined);
    await faults({ perMinuteLimit: 0 });
  });

  it('injects -1 at the configured rate', async () => {
    await faults({ busyRate: 1 });
    const busy = await sim.get('/cgi-bin/user/get', { access_token: token });
    assert.equal(busy.data['errcode'], -1);
    assert.match(busy.data['errmsg'] as string, /^system error rid: /);
    await faults({ busyRate: 0.5 });
    let failures = 0;
    for (let i = 0; i < 200; i += 1) if (await userGet() === -1) failures += 1;
    assert.ok(failures > 60 && failures < 140, `${failures} of 200 busy`);
    await faults({ busyRate: 0 });
    assert.equal(await userGet(), undefined);
  });

  it('fails the Nth next call with a chosen errcode', async () => {
    const set = await faults({ failNext: { api: '/cgi-bin/user/get', errcode: 45011, after: 2, count: 2 } });
    assert.deepEqual(set.data['failNext'], [{ api: '/cgi-bin/user/get', errcode: 45011, after: 2, count: 2 }]);
    const answers = [];
    for (let i = 0; i < 5; i += 1) answers.push(await userGet());
    assert.deepEqual(answers, [undefined, undefined, 45011, 45011, undefined]);
    await faults({ failNext: [{ errcode: 40001 }] });
    assert.equal((await sim.post('/cgi-bin/user/info/batchget', { user_list: [] }, { access_token: token })).data['errcode'], 40001);
    await faults({ failNext: { errcode: -1, count: 5 }, clearFailNext: true });
    assert.deepEqual((await sim.get(`/__sim/accounts/${appid}/faults`)).data['failNext'], [{ api: '*', errcode: -1, after: 0, count: 5 }]);
    await faults({ clearFailNext: true });
    assert.equal(await userGet(), undefined);
  });

  it('delays answers by the injected latency', async () => {
    await faults({ latencyMs: 150 });
    const started = Date.now();
    assert.equal(await userGet(), undefined);
    assert.ok(Date.now() - started >= 140);
    await faults({ latencyMs: 0 });
  });
});

describe('user info', () => {
  let sim: TestSim;
  let token: string;
  let openids: string[];
  before(async () => {
    sim = await startTestSim({ followers: [300, 20] });
    token = await sim.token();
    openids = await sim.followers();
  });
  after(() => sim.close());

  const batchget = async (body: unknown): Promise<Record<string, unknown>> =>
    (await sim.post('/cgi-bin/user/info/batchget', body, { access_token: token })).data;
  const list = (ids: readonly string[]): unknown => ({ user_list: ids.map((openid) => ({ openid, lang: 'zh_CN' })) });

  it('returns up to 100 users in request order with today\'s fields', async () => {
    const ids = openids.slice(0, 100);
    const data = await batchget(list(ids));
    const users = data['user_info_list'] as Record<string, unknown>[];
    assert.equal(users.length, 100);
    assert.deepEqual(users.map((user) => user['openid']), ids);
    for (const user of users) {
      const keys = ['subscribe', 'openid', 'language', 'subscribe_time', 'unionid', 'remark', 'groupid', 'tagid_list', 'subscribe_scene', 'qr_scene', 'qr_scene_str'];
      assert.deepEqual(Object.keys(user), keys);
      assert.equal(user['subscribe'], 1);
      assert.ok(Number.isInteger(user['subscribe_time']));
      assert.ok(Array.isArray(user['tagid_list']));
      assert.equal(typeof user['qr_scene'], 'number');
      for (const gone of ['nickname', 'sex', 'city', 'province', 'country', 'headimgurl']) assert.ok(!(gone in user));
    }
    assert.ok(users.some((user) => user['subscribe_scene'] === 'ADD_SCENE_QR_CODE'));
  });

  it('answers subscribe: 0 for former followers, with the same openid', async () => {
    const churned = await sim.post(`/__sim/accounts/${sim.account().appid}/churn`, { unsubscribe: 2 });
    const gone = (churned.data['events'] as { openid: string }[]).map((event) => event.openid);
    const data = await batchget(list([...gone, openids[0] ?? '']));
    const users = data['user_info_list'] as Record<string, unknown>[];
    const unionid = (users[0] ?? {})['unionid'];
    assert.match(String(unionid), /^o[A-Za-z0-9_-]{27}$/);
    assert.deepEqual(users[0], { subscribe: 0, openid: gone[0], unionid });
    assert.equal(users[1]?.['subscribe'], 0);
    const single = await sim.get('/cgi-bin/user/info', { access_token: token, openid: gone[0] ?? '', lang: 'zh_CN' });
    assert.deepEqual(single.data, users[0]);
  });

  it('leaves out unionid for an account not bound to the Open Platform', async () => {
    const other = await sim.token(1);
    const openid = (await sim.followers(1))[0] ?? '';
    const { data } = await sim.get('/cgi-bin/user/info', { access_token: other, openid });
    assert.equal(data['openid'], openid);
    assert.ok(!('unionid' in data));
  });

  it('refuses bad batches with the right errcodes', async () => {
    assert.equal((await batchget(list(openids.slice(0, 101))))['errcode'], 40032);
    assert.equal((await batchget(list([])))['errcode'], 40032);
    assert.equal((await batchget({}))['errcode'], 47001);
    assert.equal((await batchget({ user_list: 'x' }))['errcode'], 47001);
    assert.equal((await batchget({ user_list: [42] }))['errcode'], 47001);
    assert.equal((await batchget({ user_list: [{ lang: 'en' }] }))['errcode'], 40003);
    assert.equal((await batchget(list([openids[0] ?? '', (await sim.followers(1))[0] ?? ''])))['errcode'], 40003);
    assert.equal((await batchget('{"user_list": ['))['errcode'], 47001);
    assert.equal((await sim.get('/cgi-bin/user/info', { access_token: token })).data['errcode'], 41009);
    assert.equal((await sim.get('/cgi-bin/user/info', { access_token: token, openid: 'nobody' })).data['errcode'], 40003);
    const stats = await sim.stats();
    assert.equal(stats.calls['/cgi-bin/user/info/batchget']?.errors['40032'], 2);
  });
});

describe('POST /datacube/getusersummary and /datacube/getusercumulate', () => {
  let sim: TestSim;
  /** The China day of the churn: the simulated clock's tomorrow, so the test owns the whole day. */
  let day: number;
  const startOf = (d: number): number => d * 86_400 - 8 * 3600;
  const datacube = async (api: 'getusersummary' | 'getusercumulate', begin: number | string, end: number | string, i = 0): Promise<Record<string, unknown>> => {
    const body = { begin_date: typeof begin === 'number' ? dayDate(begin) : begin, end_date: typeof end === 'number' ? dayDate(end) : end };
    return (await sim.post(`/datacube/${api}`, body, { access_token: await sim.token(i) })).data;
  };

  before(async () => {
    sim = await startTestSim({ followers: [100, 50] });
    day = beijingDay((await sim.get('/__sim/clock')).data['now'] as number) + 1;
    await sim.clockTo(startOf(day) + 10 * 3600);
    const churn = `/__sim/accounts/${sim.account(0).appid}/churn`;
    const spring = await sim.post(churn, { subscribe: 3, qrScene: 'spring', resubscribeRate: 0 });
    assert.equal(spring.status, 200, JSON.stringify(spring.data));
    assert.equal((await sim.post(churn, { subscribe: 2, scene: 'ADD_SCENE_CHANNELS', resubscribeRate: 0 })).status, 200);
    const first = (spring.data['events'] as { openid: string }[])[0]?.openid;
    assert.equal((await sim.post(churn, { unsubscribeOpenids: [first] })).status, 200);
    await sim.clockTo(startOf(day + 1) + 7 * 3600);
  });
  after(() => sim.close());

  it('leaves yesterday out before 08:00 China time: an empty list when it is all that was asked', async () => {
    assert.deepEqual(await datacube('getusersummary', day, day), { list: [] });
    assert.deepEqual(await datacube('getusercumulate', day, day), { list: [] });
    assert.deepEqual(await datacube('getusercumulate', day - 1, day), { list: [{ ref_date: dayDate(day - 1), cumulate_user: 100 }] });
  });

  it('answers yesterday from 08:00: follows by source, unfollows by the source of the follow they end, followers at the end of each day', async () => {
    await sim.clockTo(startOf(day + 1) + 8 * 3600);
    assert.deepEqual(await datacube('getusersummary', day - 1, day), {
      list: [
        { ref_date: dayDate(day - 1), user_source: 0, new_user: 0, cancel_user: 0 },
        { ref_date: dayDate(day), user_source: 30, new_user: 3, cancel_user: 1 },
        { ref_date: dayDate(day), user_source: 200, new_user: 2, cancel_user: 0 },
      ],
    });
    assert.deepEqual(await datacube('getusercumulate', day - 6, day), {
      list: [100, 100, 100, 100, 100, 100, 104].map((cumulate_user, i) => ({ ref_date: dayDate(day - 6 + i), cumulate_user })),
    });
    assert.deepEqual(await datacube('getusersummary', day, day, 1), { list: [{ ref_date: dayDate(day), user_source: 0, new_user: 0, cancel_user: 0 }] });
  });

  it('refuses as WeChat does: 61501 for over 7 days, reversed or today and later, 61500 for malformed dates', async () => {
    const cases: [number | string, number | string, number][] = [
      [day - 7, day, 61501], [day, day - 1, 61501], [day + 1, day + 1, 61501], [day, day + 1, 61501], [day + 5, day + 6, 61501],
      ['2026-1-01', day, 61500], [day, 'yesterday', 61500], ['2026-02-30', day, 61500],
    ];
    for (const [begin, end, errcode] of cases) {
      const answer = await datacube('getusersummary', begin, end);
      assert.equal(answer['errcode'], errcode, `${String(begin)}..${String(end)}: ${JSON.stringify(answer)}`);
      assert.match(answer['errmsg'] as string, /^date (range|format) error: .* rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/);
    }
    const token = await sim.token();
    assert.equal((await sim.post('/datacube/getusercumulate', '', { access_token: token })).data['errcode'], 44002);
    assert.equal((await sim.post('/datacube/getusercumulate', '{"begin_date":', { access_token: token })).data['errcode'], 47001);
    assert.equal((await sim.get('/datacube/getusercumulate', { access_token: token })).data['errcode'], 43002);
    assert.equal((await sim.post('/datacube/getusercumulate', { begin_date: dayDate(day), end_date: dayDate(day) })).data['errcode'], 41001);
    assert.equal((await sim.post('/datacube/getusersummary', { begin_date: dayDate(day), end_date: dayDate(day) }, { access_token: 'not a token!' })).data['errcode'], 40014);
    assert.equal((await sim.post('/datacube/nothing', {}, { access_token: token })).status, 404);
  });

  it('answers 48001 to an account that is not verified, until it is', async () => {
    const faults = `/__sim/accounts/${sim.account(1).appid}/faults`;
    assert.equal((await sim.post(faults, { verified: false })).data['verified'], false);
    for (const api of ['getusersummary', 'getusercumulate'] as const) {
      const answer = await datacube(api, day, day, 1);
      assert.equal(answer['errcode'], 48001);
      assert.match(answer['errmsg'] as string, /^api unauthorized rid: /);
    }
    assert.equal((await sim.get(faults)).data['verified'], false);
    assert.equal((await sim.post(faults, { verified: true })).data['verified'], true);
    assert.deepEqual(await datacube('getusercumulate', day, day, 1), { list: [{ ref_date: dayDate(day), cumulate_user: 50 }] });
  });

  it('counts calls against a daily quota per API', async () => {
    const appid = sim.account(1).appid;
    await sim.post(`/__sim/accounts/${appid}/faults`, { quotaRemaining: { '/datacube/getusercumulate': 1 } });
    assert.deepEqual(await datacube('getusercumulate', day, day, 1), { list: [{ ref_date: dayDate(day), cumulate_user: 50 }] });
    assert.equal((await datacube('getusercumulate', day, day, 1))['errcode'], 45009);
    assert.deepEqual(await datacube('getusersummary', day, day, 1), { list: [{ ref_date: dayDate(day), user_source: 0, new_user: 0, cancel_user: 0 }] });
    const quota = await sim.post('/cgi-bin/openapi/quota/get', { cgi_path: '/datacube/getusercumulate' }, { access_token: await sim.token(1) });
    assert.deepEqual(quota.data['quota'], { daily_limit: 1000, used: 1000, remain: 0 });
    const stats = await sim.stats(1);
    assert.ok((stats.calls['/datacube/getusercumulate']?.errors['45009'] ?? 0) >= 1);
  });
});
