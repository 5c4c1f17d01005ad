import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isWxsyncError, ErrorCode } from '../../lib/errors.ts';
import { localDay, reportRange, zonedMidnightMs, dateOf } from '../../reports/range.ts';

// 2026-11-26 02:00 in Beijing is 2026-11-25 18:00 UTC: "today" is the 26th there, the 25th in UTC.
const NOW = Date.parse('2026-11-25T18:00:00Z');

test('--days N is the N local days ending today, by day by default', () => {
  const range = reportRange({ days: '3', tz: 'Asia/Shanghai' }, NOW);
  assert.deepEqual(range, {
    from: '2026-11-24', to: '2026-11-26', tz: 'Asia/Shanghai', by: 'day',
    startMs: Date.parse('2026-11-23T16:00:00Z'), endMs: Date.parse('2026-11-26T16:00:00Z'),
    buckets: [{ label: '2026-11-24' }, { label: '2026-11-25' }, { label: '2026-11-26' }],
  });
  assert.equal(reportRange({ days: '1', tz: 'UTC' }, NOW).from, '2026-11-25');
});

test('weeks are labelled by their Monday, months by their first day; hours are 24 a day', () => {
  assert.deepEqual(reportRange({ from: '2026-11-01', to: '2026-11-10', by: 'week', tz: 'Asia/Shanghai' }, NOW).buckets.map((b) => b.label), ['2026-10-26', '2026-11-02', '2026-11-09']);
  assert.deepEqual(reportRange({ from: '2026-09-30', to: '2026-11-01', by: 'month', tz: 'Asia/Shanghai' }, NOW).buckets.map((b) => b.label), ['2026-09-01', '2026-10-01', '2026-11-01']);
  const hours = reportRange({ from: '2026-11-01', to: '2026-11-02', by: 'hour', tz: 'Asia/Shanghai' }, NOW).buckets;
  assert.equal(hours.length, 48);
  assert.equal(hours[25]?.label, '2026-11-02 01:00');
});

test('local midnight and local day across zones', () => {
  const day = 20_000; // 2024-10-04
  assert.equal(dateOf(day), '2024-10-04');
  assert.equal(zonedMidnightMs(day, 'Asia/Shanghai'), Date.parse('2024-10-03T16:00:00Z'));
  assert.equal(zonedMidnightMs(day, 'America/New_York'), Date.parse('2024-10-04T04:00:00Z'));
  assert.equal(localDay(Date.parse('2024-10-03T16:00:00Z'), 'Asia/Shanghai'), day);
  assert.equal(localDay(Date.parse('2024-10-03T15:59:59Z'), 'Asia/Shanghai'), day - 1);
});

test('what cannot be meant is a usage error naming the problem', () => {
  const cases: [Parameters<typeof reportRange>[0], RegExp][] = [
    [{ from: '2026-11-05', to: '2026-11-01', tz: 'UTC' }, /--from 2026-11-05 is after --to 2026-11-01/],
    [{ from: '2026-02-30', tz: 'UTC' }, /--from must be a date/],
    [{ to: '2026-12-01', tz: 'UTC' }, /after today/],
    [{ from: '1999-12-31', tz: 'UTC' }, /before 2000-01-01/],
    [{ days: '0', tz: 'UTC' }, /--days must be a whole number from 1 to 3660/],
    [{ days: '1e3', tz: 'UTC' }, /--days must be/],
    [{ days: '99999', tz: 'UTC' }, /--days must be/],
    [{ days: '3', from: '2026-11-01', tz: 'UTC' }, /either --days or --from/],
    [{ days: '40', by: 'hour', tz: 'UTC' }, /--by hour covers at most 31 days/],
    [{ by: 'year', tz: 'UTC' }, /--by must be one of hour, day, week, month/],
    [{ tz: 'Mars/Base' }, /unknown time zone "Mars\/Base"/],
    [{ tz: 'Asia/Kolkata' }, /not a whole number of hours/],
    [{ from: '2000-01-01', to: '2026-11-25', tz: 'UTC' }, /more than 3660/],
  ];
  for (const [input, message] of cases) {
    assert.throws(() => reportRange(input, NOW), (error: unknown) => isWxsyncError(error, ErrorCode.UsageInvalid) && message.test(error.message), JSON.stringify(input));
  }
});
