import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { decodeEncodingAESKey, decryptMessage, msgSignature, plainSignature, signatureMatches } from '../../lib/wechat/crypto.ts';
import { Receiver, startTestSim, type ReceivedPush, type TestSim } from './helpers.ts';

const parser = new XMLParser({ processEntities: false, parseTagValue: false, ignoreAttributes: true });

interface EventReport {
  openid: string;
  type: 'subscribe' | 'unsubscribe';
  createTime: number;
  resubscribe: boolean;
  eventKey?: string;
  ticket?: string;
  pushed: boolean;
  dropped: boolean;
  duplicated: boolean;
  deliveries: number;
  attempts: number;
}

/** Checks a push the way the callback receiver must, and returns its (decrypted) event fields. */
function verifyPush(push: ReceivedPush, account: { appid: string; token: string; encodingAESKey: string }, mode: string): Record<string, string> {
  const q = push.query;
  const [timestamp, nonce] = [q.get('timestamp') ?? '', q.get('nonce') ?? ''];
  assert.equal(push.path, `/wechat/${account.appid}`);
  assert.ok(signatureMatches(plainSignature(account.token, timestamp, nonce), q.get('signature') ?? ''), 'signature');
  const outer = (parser.parse(push.body) as { xml: Record<string, string> }).xml;
  if (mode === 'plain') {
    assert.equal(q.get('encrypt_type'), null);
    return outer;
  }
  assert.equal(q.get('encrypt_type'), 'aes');
  const encrypt = outer['Encrypt'] ?? '';
  assert.ok(signatureMatches(msgSignature(account.token, timestamp, nonce, encrypt), q.get('msg_signature') ?? ''), 'msg_signature');
  const inner = (parser.parse(decryptMessage(encrypt, [decodeEncodingAESKey(account.encodingAESKey)], account.appid)) as { xml: Record<string, string> }).xml;
  if (mode === 'compat') {
    assert.deepEqual(Object.fromEntries(Object.entries(outer).filter(([name]) => name !== 'Encrypt')), inner);
  } else {
    assert.deepEqual(Object.keys(outer), ['ToUserName', 'Encrypt']);
  }
  assert.equal(q.get('openid'), inner['FromUserName']);
  return inner;
}

describe('POST /__sim/accounts/:appid/churn', () => {
  let receiver: Receiver;
  before(async () => {
    receiver = await Receiver.start();
  });
  beforeEach(() => {
    receiver.pushes.length = 0;
    receiver.responder = () => ({ status: 200, body: 'success' });
  });
  after(() => receiver.close());

  for (const mode of ['plain', 'compat', 'safe'] as const) {
    it(`pushes signed${mode === 'plain' ? '' : ' and encrypted'} callbacks in ${mode} mode and changes the truth`, async () => {
      const sim = await startTestSim({ followers: [500, 10], callbackUrl: receiver.base, mode });
      try {
        const account = sim.account(0);
        const before = new Set(await sim.followers());
        const { status, data } = await sim.post(`/__sim/accounts/${account.appid}/churn`, { subscribe: 30, unsubscribe: 20, qrRate: 0.5 });
        assert.equal(status, 200);
        const events = data['events'] as EventReport[];
        assert.equal(events.length, 50);
        assert.equal(data['subscribed'], 30);
        assert.equal(data['unsubscribed'], 20);
        assert.equal(data['followers'], 510);
        assert.equal(receiver.pushes.length, 50, 'all pushes are done when churn answers');

        const expected = new Set(before);
        for (const event of events) {
          if (event.type === 'subscribe') expected.add(event.openid);
          else expected.delete(event.openid);
          assert.equal(event.deliveries, 1);
          assert.equal(event.pushed, true);
        }
        assert.deepEqual(new Set(await sim.followers()), expected);

        const received = receiver.pushes.map((push) => verifyPush(push, account, mode));
        const key = (f: { openid: string; type: string; createTime: number | string; eventKey?: string | undefined }): string =>
          `${f.openid}/${f.type}/${f.createTime}/${f.eventKey ?? ''}`;
        assert.deepEqual(
          received.map((f) => key({ openid: f['FromUserName'] ?? '', type: f['Event'] ?? '', createTime: f['CreateTime'] ?? '', eventKey: f['EventKey'] })).sort(),
          events.map(key).sort(),
        );
        for (const fields of received) {
          assert.equal(fields['ToUserName'], account.originalId);
          assert.equal(fields['MsgType'], 'event');
          if (fields['EventKey'] !== undefined) {
            assert.match(fields['EventKey'], /^qrscene_./);
            assert.ok((fields['Ticket'] ?? '').length > 20);
          }
        }
        assert.ok(received.some((fields) => fields['EventKey'] !== undefined));
        const stats = await sim.stats(0);
        assert.equal(stats.pushes['delivered'], 50);
        assert.equal(stats.pushes['events'], 50);
      } finally {
        await sim.close();
      }
    });
  }

  it('drops and duplicates pushes at the configured rates, and says which', async () => {
    const sim = await startTestSim({ followers: [2000], callbackUrl: receiver.base, dropRate: 0.3, dupRate: 0.2 });
    try {
      const appid = sim.account().appid;
      const { data } = await sim.post(`/__sim/accounts/${appid}/churn`, { subscribe: 150, unsubscribe: 150 });
      const events = data['events'] as EventReport[];
      const dropped = events.filter((event) => event.dropped);
      const duplicated = events.filter((event) => event.duplicated);
      assert.equal(data['dropped'], dropped.length);
      assert.equal(data['duplicated'], duplicated.length);
      assert.ok(dropped.length > 60 && dropped.length < 120, `${dropped.length} of 300 dropped`);
      assert.ok(duplicated.length > 25 && duplicated.length < 75, `${duplicated.length} of 300 duplicated`);
      assert.equal(receiver.pushes.length, 300 - dropped.length + duplicated.length);
      const seen = new Map<string, number>();
      for (const push of receiver.pushes) {
        const id = `${push.query.get('openid') ?? ''}/${/<Event><!\[CDATA\[(\w+)/.exec(push.body)?.[1] ?? ''}`;
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      for (const event of events) {
        const count = seen.get(`${event.openid}/${event.type}`) ?? 0;
        assert.ok(event.dropped ? count === 0 || events.filter((e) => e.openid === event.openid).length > 1 : count >= event.deliveries);
      }

      receiver.pushes.length = 0;
      const all = await sim.post(`/__sim/accounts/${appid}/churn`, { subscribe: 10, dropRate: 1 });
      assert.equal(all.data['dropped'], 10);
      assert.equal(receiver.pushes.length, 0);
      const twice = await sim.post(`/__sim/accounts/${appid}/churn`, { subscribe: 10, dropRate: 0, dupRate: 1 });
      assert.equal(twice.data['duplicated'], 10);
      assert.equal(receiver.pushes.length, 20);
    } finally {
      await sim.close();
    }
  });

  it('sends a request\'s follows through a named QR code or scene, and keeps a ledger of every change with its push outcome', async () => {
    const sim = await startTestSim({ followers: [200], callbackUrl: receiver.base });
    try {
      const account = sim.account();
      const churn = `/__sim/accounts/${account.appid}/churn`;
      const spring = (await sim.post(churn, { subscribe: 4, qrScene: 'spring', resubscribeRate: 0 })).data['events'] as EventReport[];
      const pushed = receiver.pushes.map((push) => verifyPush(push, account, 'plain'));
      assert.deepEqual(pushed.map((fields) => fields['EventKey']), ['qrscene_spring', 'qrscene_spring', 'qrscene_spring', 'qrscene_spring']);
      assert.equal(new Set(pushed.map((fields) => fields['Ticket'])).size, 1, 'one QR code, one ticket');
      const springUser = (await sim.get(`/__sim/accounts/${account.appid}/users/${spring[0]?.openid ?? ''}`)).data;
      assert.deepEqual([springUser['subscribe_scene'], springUser['qr_scene'], springUser['qr_scene_str']], ['ADD_SCENE_QR_CODE', 0, 'spring']);

      receiver.pushes.length = 0;
      const ads = (await sim.post(churn, { subscribe: 2, scene: 'ADD_SCENE_WECHAT_ADVERTISEMENT', qrRate: 1, resubscribeRate: 0, dropRate: 1 })).data['events'] as EventReport[];
      assert.equal(receiver.pushes.length, 0);
      assert.ok(ads.every((event) => event.eventKey === undefined));
      assert.equal((await sim.get(`/__sim/accounts/${account.appid}/users/${ads[0]?.openid ?? ''}`)).data['subscribe_scene'], 'ADD_SCENE_WECHAT_ADVERTISEMENT');
      await sim.post(churn, { unsubscribeOpenids: [spring[0]?.openid], dupRate: 1 });
      receiver.responder = () => ({ status: 500, body: '' });
      await sim.post(churn, { subscribe: 1, scene: 'ADD_SCENE_SEARCH', resubscribeRate: 0 });
      await sim.post('/__sim/callback', { url: null });
      const quiet = (await sim.post(churn, { unsubscribe: 1 })).data['events'] as EventReport[];

      const res = await sim.http.get<string>(`/__sim/accounts/${account.appid}/ledger`, { responseType: 'text' });
      assert.equal(res.headers['content-type'], 'application/x-ndjson; charset=utf-8');
      assert.equal(res.headers['x-sim-ledger-size'], '9');
      const ledger = res.data.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      const brief = (entry: Record<string, unknown>): unknown[] => [entry['seq'], entry['openid'], entry['type'], entry['scene'], entry['userSource'], entry['qrScene'], entry['returning'], entry['push']];
      const leaving = quiet[0]?.openid ?? '';
      const left = ledger[8] ?? {};
      assert.deepEqual(ledger.map(brief), [
        ...spring.map((event, i) => [i, event.openid, 'subscribe', 'ADD_SCENE_QR_CODE', 30, 'spring', false, 'delivered']),
        ...ads.map((event, i) => [4 + i, event.openid, 'subscribe', 'ADD_SCENE_WECHAT_ADVERTISEMENT', 100, null, false, 'dropped']),
        [6, spring[0]?.openid, 'unsubscribe', 'ADD_SCENE_QR_CODE', 30, 'spring', false, 'delivered'],
        [7, ledger[7]?.['openid'], 'subscribe', 'ADD_SCENE_SEARCH', 1, null, false, 'failed'],
        [8, leaving, 'unsubscribe', left['scene'], left['userSource'], left['qrScene'], false, 'not-pushed'],
      ]);
      assert.ok(ledger.every((entry) => entry['appid'] === account.appid && typeof entry['at'] === 'number'));
      assert.equal(ledger[0]?.['at'], spring[0]?.createTime);
      const from = await sim.http.get<string>(`/__sim/accounts/${account.appid}/ledger?from=7`, { responseType: 'text' });
      assert.deepEqual(from.data.trimEnd().split('\n').map((line) => (JSON.parse(line) as { seq: number }).seq), [7, 8]);
      assert.equal((await sim.get(`/__sim/accounts/${account.appid}`)).data['changes'], 9);
    } finally {
      await sim.close();
    }
  });

  it('reports pushes the endpoint failed, after 3 attempts each', async () => {
    const sim = await startTestSim({ followers: [50], callbackUrl: receiver.base });
    try {
      receiver.responder = () => ({ status: 500, body: 'oops' });
      const { data } = await sim.post(`/__sim/accounts/${sim.account().appid}/churn`, { subscribe: 2, unsubscribe: 1 });
      assert.equal(data['failed'], 3);
      assert.ok((data['events'] as EventReport[]).every((event) => event.attempts === 3 && event.deliveries === 0));
      assert.equal(receiver.pushes.length, 9);
      assert.equal(data['followers'], 51, 'the truth changes even when pushes fail');
    } finally {
      await sim.close();
    }
  });

  it('changes the truth without pushes when no callback URL is set, until one is', async () => {
    const sim = await startTestSim({ followers: [50] });
    try {
      const appid = sim.account().appid;
      const quiet = await sim.post(`/__sim/accounts/${appid}/churn`, { subscribe: 3 });
      assert.ok((quiet.data['events'] as EventReport[]).every((event) => !event.pushed));
      assert.equal((await sim.followers()).length, 53);
      const set = await sim.post('/__sim/callback', { url: receiver.base, mode: 'safe' });
      assert.deepEqual(set.data, { url: receiver.base, mode: 'safe' });
      await sim.post(`/__sim/accounts/${appid}/churn`, { unsubscribe: 3 });
      assert.equal(receiver.pushes.length, 3);
      verifyPush(receiver.pushes[0] as ReceivedPush, sim.account(), 'safe');
      assert.equal((await sim.post('/__sim/callback', { url: null })).data['url'], null);
    } finally {
      await sim.close();
    }
  });
});

describe('admin endpoints', () => {
  let sim: TestSim;
  let appid: string;
  before(async () => {
    sim = await startTestSim({ followers: [25_000, 0] });
    appid = sim.account().appid;
  });
  after(() => sim.close());

  it('streams the followers export, equal to a crawl and to the model', async () => {
    const res = await sim.http.get<string>(`/__sim/accounts/${appid}/followers`, { responseType: 'text' });
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(res.headers['x-sim-followers'], '25000');
    const lines = res.data.split('\n');
    assert.equal(lines.pop(), '', 'every line ends with a newline');
    assert.equal(lines.length, 25_000);
    const crawl = await sim.crawl(await sim.token());
    assert.deepEqual(lines, crawl.openids, 'same openids, same order');
    const model = sim.sim.state.byAppid.get(appid)?.population;
    assert.ok(model);
    assert.ok(lines.every((openid) => model.isFollowing(model.indexOf(openid) ?? -1)));
    assert.deepEqual(await sim.followers(1), []);
  });

  it('lists accounts and shows one user', async () => {
    const { data } = await sim.get('/__sim/accounts');
    const accounts = data['accounts'] as Record<string, unknown>[];
    assert.equal(accounts.length, 2);
    assert.deepEqual(Object.keys(accounts[0] ?? {}), ['appid', 'secret', 'token', 'encodingAESKey', 'originalId', 'followers', 'users', 'changes', 'verified', 'openidPrefix', 'callbackUrl']);
    const openid = (await sim.followers())[3] ?? '';
    const user = await sim.get(`/__sim/accounts/${appid}/users/${openid}`);
    assert.equal(user.data['openid'], openid);
    assert.equal(user.data['subscribe'], 1);
    assert.equal((await sim.get(`/__sim/accounts/${appid}/users/nobody`)).status, 404);
  });

  it('advances the clock only forward', async () => {
    const before = (await sim.get('/__sim/clock')).data;
    const after = (await sim.post('/__sim/clock', { advanceSeconds: 3600 })).data;
    assert.ok((after['now'] as number) - (before['now'] as number) >= 3600);
    assert.equal(after['offsetSeconds'], (before['offsetSeconds'] as number) + 3600);
    assert.equal((await sim.post('/__sim/clock', { advanceSeconds: -1 })).status, 400);
    assert.equal((await sim.post('/__sim/clock', { advanceSeconds: '10' })).status, 400);
  });

  it('counts calls per API and resets the counters', async () => {
    const token = await sim.token();
    await sim.get('/cgi-bin/user/get', { access_token: token });
    await sim.get('/cgi-bin/user/get', { access_token: 'bogus' });
    const stats = await sim.stats();
    assert.ok((stats.calls['/cgi-bin/user/get']?.ok ?? 0) >= 1);
    const global = (await sim.get('/__sim/stats')).data;
    assert.equal((global['unattributed'] as Record<string, { errors: Record<string, number> }>)['/cgi-bin/user/get']?.errors['40001'], 1);
    const reset = await sim.post(`/__sim/accounts/${appid}/stats/reset`, {});
    assert.deepEqual(reset.data['calls'], {});
  });

  it('validates fault settings as a whole and leaves them unchanged on error', async () => {
    const url = `/__sim/accounts/${appid}/faults`;
    const before = (await sim.get(url)).data;
    for (const body of [
      { busyrate: 1 }, { busyRate: 2 }, { busyRate: '0.5' }, { latencyMs: 1.5 }, { perMinuteLimit: -1 },
      { quotaRemaining: -3 }, { dailyLimits: { '/cgi-bin/nope': 1 } }, { failNext: { errcode: 0 } },
      { failNext: { errcode: 1, api: 'user/get' } }, { failNext: [{ errcode: 1, when: 2 }] }, { clearQuota: 'yes' },
      { busyRate: 0.5, failNext: 'soon' }, { verified: 'no' }, { verified: 0 },
    ]) {
      const res = await sim.post(url, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.data['errcode'], 400);
      assert.equal(typeof res.data['errmsg'], 'string');
    }
    assert.deepEqual((await sim.get(url)).data, before);
  });

  it('refuses hostile input with clear 4xx JSON and keeps serving', async () => {
    const churnUrl = `/__sim/accounts/${appid}/churn`;
    const cases: [string, string, unknown, number][] = [
      ['POST', churnUrl, '{"subscribe": 1', 400],
      ['POST', churnUrl, '[1,2]', 400],
      ['POST', churnUrl, { subscribe: -1 }, 400],
      ['POST', churnUrl, { subscribe: 1.5 }, 400],
      ['POST', churnUrl, { subscribe: '3' }, 400],
      ['POST', churnUrl, { subscribe: 1e12 }, 400],
      ['POST', churnUrl, { subscribe: 60_000, unsubscribe: 60_000 }, 400],
      ['POST', churnUrl, { unsubscribe: 25_001 }, 409],
      ['POST', churnUrl, { unsubscribeOpenids: ['nobody'] }, 409],
      ['POST', churnUrl, { unsubscribeOpenids: 'x' }, 400],
      ['POST', churnUrl, { surprise: 1 }, 400],
      ['POST', churnUrl, { subscribe: 1, scene: 'ADD_SCENE_NOPE' }, 400],
      ['POST', churnUrl, { subscribe: 1, scene: 3 }, 400],
      ['POST', churnUrl, { subscribe: 1, qrScene: '' }, 400],
      ['POST', churnUrl, { subscribe: 1, qrScene: 'x'.repeat(65) }, 400],
      ['POST', churnUrl, { subscribe: 1, qrScene: 'a\nb' }, 400],
      ['POST', churnUrl, { subscribe: 1, qrScene: 'a]]>b' }, 400],
      ['POST', churnUrl, { subscribe: 1, qrScene: 7 }, 400],
      ['POST', churnUrl, { subscribe: 1, qrScene: 'spring', scene: 'ADD_SCENE_SEARCH' }, 400],
      ['GET', `/__sim/accounts/${appid}/ledger?from=-1`, undefined, 400],
      ['GET', `/__sim/accounts/${appid}/ledger?from=x`, undefined, 400],
      ['POST', `/__sim/accounts/${appid}/ledger`, {}, 405],
      ['GET', churnUrl, undefined, 405],
      ['POST', '/__sim/accounts/wx0000000000000000/churn', { subscribe: 1 }, 404],
      ['GET', '/__sim/accounts/%E0%A4%A/followers', undefined, 400],
      ['GET', '/__sim/nothing', undefined, 404],
      ['POST', churnUrl, { subscribe: 1, pad: 'x'.repeat(200_000) }, 413],
      ['GET', '/elsewhere', undefined, 404],
    ];
    for (const [method, url, body, status] of cases) {
      const res = await sim.http.request<Record<string, unknown>>({
        method, url, data: body, headers: { 'content-type': 'application/json' },
      }).catch((): { status: number; data: Record<string, unknown> } => ({ status: -1, data: {} }));
      if (status === 413 && res.status === -1) continue;
      assert.equal(res.status, status, `${method} ${url} ${body === undefined ? '' : JSON.stringify(body).slice(0, 60)} → ${JSON.stringify(res.data)}`);
      assert.equal(res.data['errcode'], status);
      assert.match(String(res.data['errmsg']), /\w/);
    }
    assert.equal((await sim.get('/__sim/health')).data['ok'], true);
    assert.equal((await sim.followers()).length, 25_000, 'no rejected request changed the truth');
  });
});
