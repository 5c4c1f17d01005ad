import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, isWxsyncError } from '../../../lib/errors.ts';
import {
  MAX_DATACUBE_ROWS,
  USER_CUMULATE_API,
  USER_SUMMARY_API,
  beijingDay,
  datacubeChunks,
  dateDay,
  dayDate,
  fetchUserCumulate,
  fetchUserSummary,
  parseUserCumulate,
  parseUserSummary,
  type DatacubeSource,
} from '../../../lib/wechat/datacube.ts';
import { wechatError } from '../../../lib/wechat/errors.ts';
import type { JsonObject } from '../../../lib/wechat/http.ts';
import { failure } from '../../support/errors.ts';
import { SimHarness } from './sim-harness.ts';

const WEEK = { from: '2026-11-16', to: '2026-11-22' };
const summaryRow = (ref_date: string, user_source: unknown, new_user: unknown, cancel_user: unknown): JsonObject => ({ ref_date, user_source, new_user, cancel_user });

function usageInvalid(fn: () => unknown, name: string): void {
  assert.throws(fn, (error: unknown) => isWxsyncError(error, ErrorCode.UsageInvalid), name);
}

function badAnswer(fn: () => unknown, name: string): void {
  assert.throws(fn, (error: unknown) => isWxsyncError(error, ErrorCode.WechatBadAnswer) && !error.message.includes('\n'), name);
}

describe('China days', () => {
  it('turns at 16:00 UTC, midnight in Beijing', () => {
    assert.equal(dayDate(beijingDay(Date.UTC(2026, 10, 25, 15, 59, 59) / 1000)), '2026-11-25');
    assert.equal(dayDate(beijingDay(Date.UTC(2026, 10, 25, 16, 0, 0) / 1000)), '2026-11-26');
    assert.equal(beijingDay(0), 0);
    assert.equal(dayDate(0), '1970-01-01');
    assert.equal(dateDay('1970-01-02'), 1);
    assert.equal(dateDay('2026-11-26'), 20_783);
  });

  it('reads only real YYYY-MM-DD dates', () => {
    for (const date of ['2026-02-29', '2026-13-01', '2026-11-31', '2026-1-05', '20261120', ' 2026-11-20', '2026-11-20T00:00', '', '２０２６-11-20']) {
      assert.equal(dateDay(date), undefined, date);
    }
    assert.equal(dateDay('2024-02-29'), 19_782);
  });
});

describe('datacubeChunks', () => {
  it('splits an inclusive range into calls of at most 7 days', () => {
    assert.deepEqual(datacubeChunks('2026-11-01', '2026-11-20', '2026-11-26'), {
      chunks: [{ from: '2026-11-01', to: '2026-11-07' }, { from: '2026-11-08', to: '2026-11-14' }, { from: '2026-11-15', to: '2026-11-20' }],
    });
    assert.deepEqual(datacubeChunks('2026-11-01', '2026-11-07', '2026-11-26'), { chunks: [{ from: '2026-11-01', to: '2026-11-07' }] });
    assert.deepEqual(datacubeChunks('2026-11-01', '2026-11-08', '2026-11-26'), {
      chunks: [{ from: '2026-11-01', to: '2026-11-07' }, { from: '2026-11-08', to: '2026-11-08' }],
    });
    assert.deepEqual(datacubeChunks('2026-12-29', '2027-01-04', '2027-02-01'), { chunks: [{ from: '2026-12-29', to: '2027-01-04' }] });
    assert.deepEqual(datacubeChunks('2025-11-25', '2025-11-25', '2026-11-26'), { chunks: [{ from: '2025-11-25', to: '2025-11-25' }] });
  });

  it('never asks for today or later: the range is clipped to yesterday and the first day left out reported', () => {
    assert.deepEqual(datacubeChunks('2026-11-20', '2026-11-30', '2026-11-26'), {
      chunks: [{ from: '2026-11-20', to: '2026-11-25' }], skippedFrom: '2026-11-26',
    });
    assert.deepEqual(datacubeChunks('2026-11-25', '2026-11-26', '2026-11-26'), {
      chunks: [{ from: '2026-11-25', to: '2026-11-25' }], skippedFrom: '2026-11-26',
    });
    assert.deepEqual(datacubeChunks('2026-11-26', '2026-11-26', '2026-11-26'), { chunks: [], skippedFrom: '2026-11-26' });
    assert.deepEqual(datacubeChunks('2026-12-01', '2026-12-31', '2026-11-26'), { chunks: [], skippedFrom: '2026-12-01' });
  });

  it('refuses malformed dates, reversed ranges and days before WeChat keeps figures', () => {
    usageInvalid(() => datacubeChunks('2026-11-02', '2026-11-01', '2026-11-26'), 'reversed');
    usageInvalid(() => datacubeChunks('2026/11/01', '2026-11-02', '2026-11-26'), 'from');
    usageInvalid(() => datacubeChunks('2026-11-01', '2026-11-31', '2026-11-26'), 'to');
    usageInvalid(() => datacubeChunks('2026-11-01', '2026-11-02', 'today'), 'today');
    usageInvalid(() => datacubeChunks('2014-11-30', '2014-12-02', '2026-11-26'), 'before 2014-12-01');
    assert.deepEqual(datacubeChunks('2014-12-01', '2014-12-01', '2026-11-26').chunks, [{ from: '2014-12-01', to: '2014-12-01' }]);
  });
});

describe('parseUserSummary', () => {
  it('sums the rows of a day over its sources, keeping unknown source codes', () => {
    const days = parseUserSummary({
      list: [
        summaryRow('2026-11-16', 0, 1, 0),
        summaryRow('2026-11-16', 30, 12, 3),
        summaryRow('2026-11-16', 35, 2, 1),
        summaryRow('2026-11-16', 30, 1, 1),
        summaryRow('2026-11-18', 0, 0, 0),
      ],
    }, WEEK);
    assert.deepEqual([...days.values()], [
      { day: '2026-11-16', ready: true, newUsers: 16, cancelUsers: 5, bySource: { 0: { new: 1, cancel: 0 }, 30: { new: 13, cancel: 4 }, 35: { new: 2, cancel: 1 } } },
      { day: '2026-11-18', ready: true, newUsers: 0, cancelUsers: 0, bySource: { 0: { new: 0, cancel: 0 } } },
    ]);
    assert.deepEqual(parseUserSummary({ list: [] }, WEEK).size, 0);
  });

  it('refuses every wrong shape with one line of WECHAT_BAD_ANSWER', () => {
    const cases: Record<string, JsonObject> = {
      'no list': {},
      'list as an object': { list: { 0: summaryRow('2026-11-16', 0, 0, 0) } },
      'a row that is null': { list: [null] },
      'a row that is an array': { list: [['2026-11-16', 0, 0, 0]] },
      'no ref_date': { list: [{ user_source: 0, new_user: 0, cancel_user: 0 }] },
      'ref_date as a number': { list: [summaryRow('2026-11-16', 0, 0, 0), { ...summaryRow('', 0, 0, 0), ref_date: 20_261_116 }] },
      'ref_date not a day': { list: [summaryRow('2026-11-31', 0, 0, 0)] },
      'ref_date with a time': { list: [summaryRow('2026-11-16 00:00:00', 0, 0, 0)] },
      'ref_date before the range': { list: [summaryRow('2026-11-15', 0, 0, 0)] },
      'ref_date after the range': { list: [summaryRow('2026-11-23', 0, 0, 0)] },
      'user_source missing': { list: [{ ref_date: '2026-11-16', new_user: 0, cancel_user: 0 }] },
      'user_source as a string': { list: [summaryRow('2026-11-16', '30', 0, 0)] },
      'negative user_source': { list: [summaryRow('2026-11-16', -1, 0, 0)] },
      'negative new_user': { list: [summaryRow('2026-11-16', 0, -1, 0)] },
      'fractional new_user': { list: [summaryRow('2026-11-16', 0, 1.5, 0)] },
      'new_user as a string': { list: [summaryRow('2026-11-16', 0, '1', 0)] },
      'huge cancel_user': { list: [summaryRow('2026-11-16', 0, 0, 1e12)] },
      'cancel_user missing': { list: [{ ref_date: '2026-11-16', user_source: 0, new_user: 0 }] },
      'NaN-like cancel_user': { list: [summaryRow('2026-11-16', 0, 0, null)] },
      'too many rows': { list: Array.from({ length: MAX_DATACUBE_ROWS + 1 }, (_, i) => summaryRow('2026-11-16', i, 0, 0)) },
    };
    for (const [name, json] of Object.entries(cases)) badAnswer(() => parseUserSummary(json, WEEK), name);
  });
});

describe('parseUserCumulate', () => {
  it('reads one follower count per day, ignoring a stray user_source', () => {
    const days = parseUserCumulate({
      list: [{ ref_date: '2026-11-16', cumulate_user: 1234 }, { ref_date: '2026-11-17', user_source: 0, cumulate_user: 1240 }, { ref_date: '2026-11-17', cumulate_user: 1240 }],
    }, WEEK);
    assert.deepEqual([...days.values()], [
      { day: '2026-11-16', ready: true, cumulate: 1234 },
      { day: '2026-11-17', ready: true, cumulate: 1240 },
    ]);
  });

  it('refuses two different counts for a day and every wrong shape', () => {
    const cases: Record<string, JsonObject> = {
      'two counts for a day': { list: [{ ref_date: '2026-11-16', cumulate_user: 1 }, { ref_date: '2026-11-16', cumulate_user: 2 }] },
      'no list': { errcode: 0 },
      'no cumulate_user': { list: [{ ref_date: '2026-11-16' }] },
      'negative cumulate_user': { list: [{ ref_date: '2026-11-16', cumulate_user: -5 }] },
      'cumulate_user as a string': { list: [{ ref_date: '2026-11-16', cumulate_user: '5' }] },
      'ref_date outside the range': { list: [{ ref_date: '2026-12-16', cumulate_user: 5 }] },
    };
    for (const [name, json] of Object.entries(cases)) badAnswer(() => parseUserCumulate(json, WEEK), name);
  });
});

/** A scripted datacube: answers by (api, begin_date), records the calls. */
class ScriptedSource implements DatacubeSource {
  readonly appid = 'wxscripted';
  readonly calls: string[] = [];
  constructor(private readonly answer: (api: string, begin: string, end: string) => JsonObject) {}

  datacube(api: string, beginDate: string, endDate: string): Promise<JsonObject> {
    this.calls.push(`${api} ${beginDate}..${endDate}`);
    return Promise.resolve().then(() => this.answer(api, beginDate, endDate));
  }
}

/** 2026-11-26 07:00 in Beijing: yesterday's figures are not ready yet. */
const EARLY = (): number => Date.UTC(2026, 10, 25, 23, 0, 0);

describe('fetchUserSummary and fetchUserCumulate', () => {
  it('fetch 7 days a call up to yesterday, and report a day without rows as not ready', async () => {
    const source = new ScriptedSource((api, begin, end) => {
      const days: string[] = [];
      for (let day = dateDay(begin) ?? 0; day <= (dateDay(end) ?? 0); day += 1) days.push(dayDate(day));
      // Yesterday (2026-11-25) has no rows yet.
      const ready = days.filter((day) => day !== '2026-11-25');
      if (api === USER_CUMULATE_API) return { list: ready.map((day, i) => ({ ref_date: day, cumulate_user: 100 + i })) };
      return { list: ready.map((day) => summaryRow(day, 30, 2, 1)) };
    });
    const summary = await fetchUserSummary(source, '2026-11-15', '2026-11-30', { now: EARLY });
    assert.deepEqual(source.calls, [`${USER_SUMMARY_API} 2026-11-15..2026-11-21`, `${USER_SUMMARY_API} 2026-11-22..2026-11-25`]);
    assert.equal(summary.skippedFrom, '2026-11-26');
    assert.deepEqual(summary.days.map((day) => [day.day, day.ready]), [
      ['2026-11-15', true], ['2026-11-16', true], ['2026-11-17', true], ['2026-11-18', true], ['2026-11-19', true],
      ['2026-11-20', true], ['2026-11-21', true], ['2026-11-22', true], ['2026-11-23', true], ['2026-11-24', true], ['2026-11-25', false],
    ]);
    assert.deepEqual(summary.days[0], { day: '2026-11-15', ready: true, newUsers: 2, cancelUsers: 1, bySource: { 30: { new: 2, cancel: 1 } } });

    const cumulate = await fetchUserCumulate(source, '2026-11-22', '2026-11-25', { now: EARLY });
    assert.deepEqual(cumulate, {
      days: [
        { day: '2026-11-22', ready: true, cumulate: 100 },
        { day: '2026-11-23', ready: true, cumulate: 101 },
        { day: '2026-11-24', ready: true, cumulate: 102 },
        { day: '2026-11-25', ready: false },
      ],
    });
  });

  it('makes no call for a range that is all today or later', async () => {
    const source = new ScriptedSource(() => ({ list: [] }));
    assert.deepEqual(await fetchUserCumulate(source, '2026-11-26', '2026-11-27', { now: EARLY }), { days: [], skippedFrom: '2026-11-26' });
    assert.deepEqual(source.calls, []);
  });

  it('turns 48001 into WECHAT_ACCOUNT_UNVERIFIED and passes other errors through', async () => {
    const unverified = new ScriptedSource((api) => {
      throw wechatError(api, 48001, 'api unauthorized rid: 1');
    });
    const error = await failure(fetchUserSummary(unverified, '2026-11-01', '2026-11-02', { now: EARLY }));
    assert.equal(error.code, ErrorCode.WechatAccountUnverified);
    assert.equal(error.retriable, false);
    assert.match(error.message, /^wxscripted is not a verified account, so WeChat offers it no datacube figures \(\/datacube\/getusersummary answered 48001\)$/);
    assert.equal(error.details['errcode'], 48001);

    const range = new ScriptedSource((api) => {
      throw wechatError(api, 61501, 'date range error');
    });
    assert.equal((await failure(fetchUserCumulate(range, '2026-11-01', '2026-11-02', { now: EARLY }))).code, ErrorCode.WechatRequestInvalid);
    const hostile = new ScriptedSource(() => ({ list: [summaryRow('2026-11-01', 0, -3, 0)] }));
    assert.equal((await failure(fetchUserSummary(hostile, '2026-11-01', '2026-11-02', { now: EARLY }))).code, ErrorCode.WechatBadAnswer);
  });
});

describe('datacube against the simulator', () => {
  let harness: SimHarness;
  /** wxsync's clock is the simulator's, so both agree on which day is today as the test moves time. */
  let now: () => number;
  let day: number;
  const startOf = (d: number): number => d * 86_400 - 8 * 3600;
  const clockTo = async (seconds: number): Promise<void> => {
    await harness.admin('POST', '/__sim/clock', { advanceSeconds: seconds - now() / 1000 });
  };
  const churn = (body: Record<string, unknown>): Promise<Record<string, unknown>> => harness.admin('POST', `/__sim/accounts/${harness.account(0).appid}/churn`, body);

  before(async () => {
    harness = await SimHarness.start({ followers: [300, 20] });
    const clock = harness.sim.state.clock;
    now = () => clock.nowMs();
    day = beijingDay(clock.nowSeconds()) + 1;
  });
  after(() => harness.close());

  it('fetches new, cancelled and cumulated followers equal to what the churn made, per day and source', async () => {
    await clockTo(startOf(day) + 10 * 3600);
    const made = [await churn({ subscribe: 40, unsubscribe: 15 }), await churn({ subscribe: 5, qrScene: 'spring', resubscribeRate: 0 })];
    await clockTo(startOf(day + 1) + 23 * 3600);
    made.push(await churn({ subscribe: 3, unsubscribe: 7 }));
    await clockTo(startOf(day + 2) + 9 * 3600);

    // What the churn said it did, and where the ledger says each change came from.
    const expected = new Map<string, { newUsers: number; cancelUsers: number; bySource: Record<number, { new: number; cancel: number }> }>();
    const res = await fetch(`${harness.apiBase}/__sim/accounts/${harness.account(0).appid}/ledger`);
    const ledger = (await res.text()).trimEnd().split('\n').map((line) => JSON.parse(line) as { openid: string; type: string; at: number; userSource: number });
    const events = made.flatMap((summary) => summary['events'] as { openid: string; type: string; createTime: number }[]);
    assert.deepEqual(ledger.map((entry) => [entry.openid, entry.type, entry.at]), events.map((event) => [event.openid, event.type, event.createTime]));
    for (const entry of ledger) {
      const date = dayDate(beijingDay(entry.at));
      const figures = expected.get(date) ?? { newUsers: 0, cancelUsers: 0, bySource: {} };
      const source = figures.bySource[entry.userSource] ?? { new: 0, cancel: 0 };
      if (entry.type === 'subscribe') {
        figures.newUsers += 1;
        source.new += 1;
      } else {
        figures.cancelUsers += 1;
        source.cancel += 1;
      }
      figures.bySource[entry.userSource] = source;
      expected.set(date, figures);
    }
    assert.deepEqual([...expected.keys()], [dayDate(day), dayDate(day + 1)]);
    assert.equal(expected.get(dayDate(day))?.newUsers, 45);
    assert.ok((expected.get(dayDate(day))?.bySource[30]?.new ?? 0) >= 5);

    const client = harness.client(0, { now });
    const summary = await fetchUserSummary(client, dayDate(day - 1), dayDate(day + 3), { now });
    assert.deepEqual(summary, {
      days: [
        { day: dayDate(day - 1), ready: true, newUsers: 0, cancelUsers: 0, bySource: { 0: { new: 0, cancel: 0 } } },
        { day: dayDate(day), ready: true, ...expected.get(dayDate(day)) },
        { day: dayDate(day + 1), ready: true, ...expected.get(dayDate(day + 1)) },
      ],
      skippedFrom: dayDate(day + 2),
    });
    const cumulate = await fetchUserCumulate(client, dayDate(day - 1), dayDate(day + 1), { now });
    assert.deepEqual(cumulate, {
      days: [
        { day: dayDate(day - 1), ready: true, cumulate: 300 },
        { day: dayDate(day), ready: true, cumulate: 330 },
        { day: dayDate(day + 1), ready: true, cumulate: 326 },
      ],
    });
    assert.equal((await harness.followers(0)).length, 326);
  });

  it('reports yesterday not ready before 08:00 China time, and ready after', async () => {
    await clockTo(startOf(day + 3) + 7 * 3600);
    const client = harness.client(0, { now });
    assert.deepEqual(await fetchUserCumulate(client, dayDate(day + 1), dayDate(day + 2), { now }), {
      days: [{ day: dayDate(day + 1), ready: true, cumulate: 326 }, { day: dayDate(day + 2), ready: false }],
    });
    await clockTo(startOf(day + 3) + 8 * 3600 + 1);
    assert.deepEqual((await fetchUserSummary(client, dayDate(day + 2), dayDate(day + 2), { now })).days, [
      { day: dayDate(day + 2), ready: true, newUsers: 0, cancelUsers: 0, bySource: { 0: { new: 0, cancel: 0 } } },
    ]);
  });

  it('refreshes an expired token, and says WeChat offers an unverified account no datacube', async () => {
    const client = harness.client(1, { now });
    const yesterday = dayDate(beijingDay(now() / 1000) - 1);
    assert.deepEqual((await fetchUserCumulate(client, yesterday, yesterday, { now })).days, [{ day: yesterday, ready: true, cumulate: 20 }]);
    await harness.admin('POST', `/__sim/accounts/${harness.account(1).appid}/expire-tokens`);
    assert.deepEqual((await fetchUserCumulate(client, yesterday, yesterday, { now })).days, [{ day: yesterday, ready: true, cumulate: 20 }]);
    await harness.faults(1, { verified: false });
    const error = await failure(fetchUserSummary(client, yesterday, yesterday, { now }));
    assert.equal(error.code, ErrorCode.WechatAccountUnverified);
    assert.match(error.message, new RegExp(`^${harness.account(1).appid} is not a verified account`));
    assert.equal((await harness.calls(1, USER_SUMMARY_API)).errors['48001'], 1);
  });
});
