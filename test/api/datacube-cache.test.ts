import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DATACUBE_CACHE_ENTRIES, datacubeCache, settled } from '../../api/datacube-cache.ts';

// 2026-03-10 12:00 in China: yesterday is 03-09, the day before 03-08.
const NOW = Date.parse('2026-03-10T12:00:00+08:00');

test('an answer is settled when every day of it is before yesterday (China)', () => {
  assert.equal(settled('2026-03-08', NOW), true);
  assert.equal(settled('2026-03-09', NOW), false, 'yesterday may be "not ready" until 08:00, and is asked again');
  assert.equal(settled('2026-03-10', NOW), false);
  // 00:30 on 03-10 in China is still 03-09 in UTC: China days decide.
  assert.equal(settled('2026-03-08', Date.parse('2026-03-10T00:30:00+08:00')), true);
  assert.equal(settled('2026-03-09', Date.parse('2026-03-11T00:30:00+08:00')), true);
  assert.equal(settled('not a date', NOW), false);
});

test('settled answers are asked of WeChat once per account, API and range; others every time', async () => {
  const calls: string[] = [];
  const inner = (appid: string) => ({
    appid,
    datacube: (api: string, begin: string, end: string) => {
      calls.push(`${appid} ${api} ${begin} ${end}`);
      return Promise.resolve({ list: [{ ref_date: begin, n: calls.length }] });
    },
  });
  const cache = datacubeCache(() => NOW);
  const a = cache.source(inner('wxa'));
  const first = await a.datacube('/datacube/getusersummary', '2026-03-01', '2026-03-07');
  assert.deepEqual(await cache.source(inner('wxa')).datacube('/datacube/getusersummary', '2026-03-01', '2026-03-07'), first, 'a new source of the same account shares the cache');
  await a.datacube('/datacube/getusercumulate', '2026-03-01', '2026-03-07');
  await cache.source(inner('wxb')).datacube('/datacube/getusersummary', '2026-03-01', '2026-03-07');
  await a.datacube('/datacube/getusersummary', '2026-03-08', '2026-03-09');
  await a.datacube('/datacube/getusersummary', '2026-03-08', '2026-03-09');
  assert.deepEqual(calls, [
    'wxa /datacube/getusersummary 2026-03-01 2026-03-07',
    'wxa /datacube/getusercumulate 2026-03-01 2026-03-07',
    'wxb /datacube/getusersummary 2026-03-01 2026-03-07',
    'wxa /datacube/getusersummary 2026-03-08 2026-03-09',
    'wxa /datacube/getusersummary 2026-03-08 2026-03-09',
  ]);
  assert.equal(a.appid, 'wxa');
});

test('a refusal is not kept, and the cache holds a bounded number of answers', async () => {
  let calls = 0;
  const cache = datacubeCache(() => NOW);
  const failing = cache.source({ appid: 'wxa', datacube: () => { calls += 1; return Promise.reject(new Error('48001')); } });
  await assert.rejects(failing.datacube('/d', '2026-03-01', '2026-03-07'));
  await assert.rejects(failing.datacube('/d', '2026-03-01', '2026-03-07'));
  assert.equal(calls, 2);
  const counting = cache.source({ appid: 'wxa', datacube: () => { calls += 1; return Promise.resolve({}); } });
  for (let i = 0; i <= DATACUBE_CACHE_ENTRIES; i += 1) await counting.datacube(`/d${i}`, '2026-03-01', '2026-03-07');
  calls = 0;
  await counting.datacube(`/d${DATACUBE_CACHE_ENTRIES}`, '2026-03-01', '2026-03-07');
  await counting.datacube('/d0', '2026-03-01', '2026-03-07');
  assert.equal(calls, 1, 'the newest kept, the oldest gone');
});
