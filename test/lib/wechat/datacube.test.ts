import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
