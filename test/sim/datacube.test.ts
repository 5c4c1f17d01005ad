import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dateDay } from '../../lib/wechat/datacube.ts';
import { cumulateRows, datacubeQuery, summaryRows, userSourceOf } from '../../sim/datacube.ts';
import type { LedgerDay } from '../../sim/ledger.ts';
import { SCENES, type Scene } from '../../sim/population.ts';

const at = (iso: string): number => Date.parse(iso) / 1000;
const day = (date: string): number => dateDay(date) ?? Number.NaN;
/** 2026-11-26 07:30 and 08:00 in Beijing. */
const EARLY = at('2026-11-25T23:30:00Z');
const EIGHT = at('2026-11-26T00:00:00Z');
const range = (begin_date: unknown, end_date: unknown): Record<string, unknown> => ({ begin_date, end_date });

function ledgerDay(date: string, follows: Partial<Record<Scene, number>>, unfollows: Partial<Record<Scene, number>>, followers: number): LedgerDay {
  return {
    day: day(date),
    subscribes: Uint32Array.from(SCENES, (scene) => follows[scene] ?? 0),
    unsubscribes: Uint32Array.from(SCENES, (scene) => unfollows[scene] ?? 0),
    followers,
  };
}

describe('userSourceOf', () => {
  it('maps every subscribe_scene to its datacube user_source, the unlisted ones to 0', () => {
    assert.deepEqual(Object.fromEntries(SCENES.map((scene) => [scene, userSourceOf(scene)])), {
      ADD_SCENE_SEARCH: 1,
      ADD_SCENE_ACCOUNT_MIGRATION: 0,
      ADD_SCENE_PROFILE_CARD: 17,
      ADD_SCENE_QR_CODE: 30,
      ADD_SCENE_PROFILE_LINK: 57,
      ADD_SCENE_PROFILE_ITEM: 0,
      ADD_SCENE_PAID: 0,
      ADD_SCENE_WECHAT_ADVERTISEMENT: 100,
      ADD_SCENE_REPRINT: 161,
      ADD_SCENE_LIVESTREAM: 201,
      ADD_SCENE_CHANNELS: 200,
      ADD_SCENE_OTHERS: 0,
    });
  });
});

describe('datacubeQuery', () => {
  it('answers up to yesterday, and yesterday only from 08:00 China time', () => {
    assert.deepEqual(datacubeQuery(range('2026-11-19', '2026-11-25'), EARLY), { first: day('2026-11-19'), last: day('2026-11-24') });
    assert.deepEqual(datacubeQuery(range('2026-11-19', '2026-11-25'), EIGHT - 1), { first: day('2026-11-19'), last: day('2026-11-24') });
    assert.deepEqual(datacubeQuery(range('2026-11-19', '2026-11-25'), EIGHT), { first: day('2026-11-19'), last: day('2026-11-25') });
    assert.deepEqual(datacubeQuery(range('2026-11-25', '2026-11-25'), EARLY), { first: day('2026-11-25'), last: day('2026-11-24') }, 'nothing to answer');
    assert.deepEqual(datacubeQuery(range('2026-11-24', '2026-11-24'), EARLY), { first: day('2026-11-24'), last: day('2026-11-24') });
    // 23:59:59 in Beijing is still the same day: yesterday is ready, today is refused.
    assert.deepEqual(datacubeQuery(range('2026-11-25', '2026-11-25'), at('2026-11-26T15:59:59Z')), { first: day('2026-11-25'), last: day('2026-11-25') });
  });

  it('never has days before 2014-12-01', () => {
    assert.deepEqual(datacubeQuery(range('2014-11-28', '2014-12-02'), EARLY), { first: day('2014-12-01'), last: day('2014-12-02') });
    assert.deepEqual(datacubeQuery(range('2014-11-20', '2014-11-21'), EARLY), { first: day('2014-12-01'), last: day('2014-11-21') });
  });

  it('refuses a span over 7 days, a reversed range and today or later with 61501', () => {
    for (const [begin, end] of [
      ['2026-11-17', '2026-11-24'], ['2026-11-24', '2026-11-23'], ['2026-11-26', '2026-11-26'], ['2026-11-25', '2026-11-26'],
      ['2026-12-01', '2026-12-02'], ['2025-01-01', '2026-11-20'],
    ]) {
      const answer = datacubeQuery(range(begin, end), EIGHT);
      assert.ok('errcode' in answer && answer.errcode === 61501, `${begin}..${end}: ${JSON.stringify(answer)}`);
    }
    assert.deepEqual(datacubeQuery(range('2026-11-18', '2026-11-24'), EIGHT), { first: day('2026-11-18'), last: day('2026-11-24') }, '7 days pass');
  });

  it('refuses malformed or missing dates with 61500', () => {
    for (const body of [
      {}, range('2026-11-20', undefined), range(undefined, '2026-11-20'), range('2026-11-2', '2026-11-20'), range('2026/11/20', '2026-11-20'),
      range(20_261_120, '2026-11-20'), range('2026-02-30', '2026-03-01'), range('2026-11-20', null), range('2026-11-20T00:00:00', '2026-11-20'),
    ]) {
      const answer = datacubeQuery(body, EIGHT);
      assert.ok('errcode' in answer && answer.errcode === 61500, `${JSON.stringify(body)}: ${JSON.stringify(answer)}`);
    }
  });
});

describe('summaryRows and cumulateRows', () => {
  it('give one row per day and user_source, unfollows under the source of the follow they end', () => {
    const days = [
      ledgerDay('2026-11-20',
        { ADD_SCENE_SEARCH: 2, ADD_SCENE_ACCOUNT_MIGRATION: 1, ADD_SCENE_PAID: 1, ADD_SCENE_OTHERS: 1, ADD_SCENE_QR_CODE: 5 },
        { ADD_SCENE_QR_CODE: 1, ADD_SCENE_CHANNELS: 1, ADD_SCENE_PROFILE_ITEM: 2 },
        1006),
      ledgerDay('2026-11-21', {}, {}, 1006),
      ledgerDay('2026-11-22', {}, { ADD_SCENE_REPRINT: 3 }, 1003),
    ];
    assert.deepEqual(summaryRows(days), [
      { ref_date: '2026-11-20', user_source: 0, new_user: 3, cancel_user: 2 },
      { ref_date: '2026-11-20', user_source: 1, new_user: 2, cancel_user: 0 },
      { ref_date: '2026-11-20', user_source: 30, new_user: 5, cancel_user: 1 },
      { ref_date: '2026-11-20', user_source: 200, new_user: 0, cancel_user: 1 },
      // A day without any change still has its row, so a missing day can only mean "not ready".
      { ref_date: '2026-11-21', user_source: 0, new_user: 0, cancel_user: 0 },
      { ref_date: '2026-11-22', user_source: 161, new_user: 0, cancel_user: 3 },
    ]);
    assert.deepEqual(cumulateRows(days), [
      { ref_date: '2026-11-20', cumulate_user: 1006 },
      { ref_date: '2026-11-21', cumulate_user: 1006 },
      { ref_date: '2026-11-22', cumulate_user: 1003 },
    ]);
    assert.deepEqual(summaryRows([]), []);
  });
});
