import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import {
  Rate, clockTime, elapsed, formatYears, lastReconcileOf, metricTotal, nextAtSecond, plainLine, redraw, screen, snapshotSecond, yearsOf, type DemoState,
} from '../../demo/summary.ts';
import type { ListedSnapshot, SnapshotListing } from '../../producers/reconcile/compare.ts';
import type { ChurnPeriod, ChurnReport } from '../../reports/churn.ts';

const NOW = Date.UTC(2026, 10, 26, 15, 20, 5);

const STATE: DemoState = {
  nowMs: NOW,
  elapsedMs: 65_000,
  pushesPerSecond: 94.4,
  droppedPerSecond: 18.6,
  takenPerSecond: 75.2,
  phase: 'Ctrl-C stops it and prints the churn report',
  accounts: [
    { appid: 'wxbig', truth: 200_412, snapshotSecond: 0, compared: { store: 200_398, differences: 14 }, lastReconcile: { at: NOW - 3000, corrections: 37, first: false } },
    { appid: 'wxmid', truth: 50_000, snapshotSecond: 20, compared: { store: 0, differences: 50_000 }, snapshot: { pages: 3, expectedPages: 6 } },
    { appid: 'wxsmall', truth: 10_000, snapshotSecond: 40, compared: { store: 10_000, differences: 0 }, lastReconcile: { at: NOW - 9000, corrections: 10_000, first: true } },
    { appid: 'wxnew', truth: 1000, snapshotSecond: 50 },
  ],
};

describe('the live summary', () => {
  it('is one screen: the traffic, then a row an account with WeChat, the store, whether they are equal and the last reconcile', () => {
    const lines = screen(STATE);
    assert.equal(lines[0], 'wxsync demo · 1m05s · Ctrl-C stops it and prints the churn report');
    assert.equal(lines[1], 'WeChat pushes 94/s, 19/s of them dropped on purpose; wxsync took 75/s');
    assert.equal(lines[2], '');
    const rows = lines.slice(3);
    assert.match(rows[0] ?? '', /^account +WeChat +store +store = truth +last reconcile$/);
    assert.match(rows[2] ?? '', new RegExp(`^wxbig +200,412 +200,398 +differs by 14 \\(next reconcile after ${clockTime(Date.UTC(2026, 10, 26, 15, 21, 0))}\\) +${clockTime(NOW - 3000)}: 37 lost pushes recovered$`));
    assert.match(rows[3] ?? '', /^wxmid +50,000 +0 +differs by 50,000 \(importing\) +snapshot \[##########\.{10}\] 3\/6 pages$/);
    assert.match(rows[4] ?? '', new RegExp(`^wxsmall +10,000 +10,000 +equal +${clockTime(NOW - 9000)}: imported 10,000 followers$`));
    assert.match(rows[5] ?? '', /^wxnew +1,000 +– +not compared yet +waiting for its import$/);
    // Numbers are right-aligned.
    assert.equal((rows[2] ?? '').indexOf('200,412') + 7, (rows[4] ?? '').indexOf('10,000') + 6);
  });

  it('says a snapshot whose last page is in is being reconciled', () => {
    const lines = screen({ ...STATE, accounts: [{ appid: 'wxa', truth: 1, snapshotSecond: 0, snapshot: { pages: 2, expectedPages: 2 } }] });
    assert.match(lines[5] ?? '', /snapshot done, reconciling$/);
  });

  it('is a plain line for a log or a pipe, with no escape codes', () => {
    const line = plainLine(STATE);
    assert.equal(line, 'demo 1m05s: WeChat pushes 94/s, 19/s of them dropped on purpose; wxsync took 75/s; wxbig 200,412 followers, store differs by 14; '
      + 'wxmid 50,000 followers, store differs by 50,000; wxsmall 10,000 followers, store equal; wxnew 1,000 followers');
    assert.equal(stripVTControlCharacters(line), line);
  });

  it('is redrawn in place: up to the previous screen\'s first line, each line cleared and cut to the width, then the rest cleared', () => {
    assert.equal(redraw(0, ['ab', 'cdef'], 80), '\x1b[2Kab\n\x1b[2Kcdef\n\x1b[J');
    assert.equal(redraw(2, ['abcdef'], 4), '\x1b[2F\x1b[2Kabc\n\x1b[J');
  });
});

describe('the summary\'s figures', () => {
  it('spreads the accounts\' snapshots over the minute and finds the next one', () => {
    assert.deepEqual([0, 1, 2].map((k) => snapshotSecond(k, 3)), [0, 20, 40]);
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((k) => snapshotSecond(k, 7)), [0, 8, 17, 25, 34, 42, 51]);
    assert.equal(nextAtSecond(NOW, 20), Date.UTC(2026, 10, 26, 15, 20, 20));
    assert.equal(nextAtSecond(NOW, 5), Date.UTC(2026, 10, 26, 15, 21, 5));
    assert.equal(nextAtSecond(NOW, 0), Date.UTC(2026, 10, 26, 15, 21, 0));
  });

  it('measures a rate over the last seconds', () => {
    const rate = new Rate(5000);
    assert.equal(rate.add(0, 0), 0);
    assert.equal(rate.add(1000, 100), 100);
    assert.equal(rate.add(2000, 300), 150);
    for (let t = 3000; t <= 10_000; t += 1000) rate.add(t, 300 + ((t - 2000) / 1000) * 10);
    assert.equal(rate.add(11_000, 390), 10);
  });

  it('says durations and times briefly', () => {
    assert.deepEqual([0, 59_999, 60_000, 3_599_000, 3_600_000, 7_260_000].map(elapsed), ['0s', '59s', '1m00s', '59m59s', '1h00m', '2h01m']);
    assert.match(clockTime(NOW), /^\d\d:\d\d:05$/);
  });

  it('finds the newest reconcile that ran, and whether it was the account\'s first', () => {
    const snapshot = (id: string, reconcile: ListedSnapshot['reconcile']): ListedSnapshot => ({
      snapshotId: id, startedAt: null, endedAt: null, total: 0, openids: 0, state: 'complete', reason: '', data: 'kept', droppedAt: null, reconcile, comparison: null,
    });
    const done = (corrections: number, finishedAt: string) => ({ status: 'done', reason: '', corrections, finishedAt, runs: 1 });
    const listing = (snapshots: ListedSnapshot[]): SnapshotListing => ({ appid: 'wxa', keep: 7, snapshots });
    assert.equal(lastReconcileOf(listing([])), undefined);
    assert.deepEqual(lastReconcileOf(listing([snapshot('s1', done(10_000, '2026-11-26T15:00:00.000Z')), snapshot('s2', null)])),
      { at: Date.parse('2026-11-26T15:00:00.000Z'), corrections: 10_000, first: true });
    assert.deepEqual(lastReconcileOf(listing([
      snapshot('s2', done(37, '2026-11-26T15:02:00.000Z')), snapshot('s1', done(10_000, '2026-11-26T15:00:00.000Z')),
      snapshot('s3', { ...done(0, '2026-11-26T15:03:00.000Z'), status: 'refused' }),
    ])), { at: Date.parse('2026-11-26T15:02:00.000Z'), corrections: 37, first: false });
  });

  it('adds a counter up over its labels', () => {
    const metrics = [
      '# HELP wxsync_callback_accepted_total Pushes accepted',
      '# TYPE wxsync_callback_accepted_total counter',
      'wxsync_callback_accepted_total{event="subscribe"} 120',
      'wxsync_callback_accepted_total{event="unsubscribe"} 30',
      'wxsync_callback_accepted_total_other 5',
    ].join('\n');
    assert.equal(metricTotal(metrics, 'wxsync_callback_accepted_total'), 150);
    assert.equal(metricTotal('', 'wxsync_callback_accepted_total'), 0);
  });

  it('sums a monthly report by year, years without a change left out', () => {
    const month = (period: string, follows: number, unfollows: number, followersEnd: number): ChurnPeriod => ({
      period, follows, firstFollows: follows, returningFollows: 0, unfollows, net: follows - unfollows, followersStart: followersEnd - follows + unfollows, followersEnd,
      unfollowRate: null, recoveredFollows: 0, recoveredUnfollows: 0, recoveredShare: null,
    });
    const periods = [month('2016-11', 5, 0, 5), month('2016-12', 3, 1, 7), month('2017-01', 0, 0, 7), month('2026-11', 10, 4, 13)];
    const rows = yearsOf({ periods } as unknown as ChurnReport);
    assert.deepEqual(rows, [{ year: '2016', follows: 8, unfollows: 1, followersEnd: 7 }, { year: '2026', follows: 10, unfollows: 4, followersEnd: 13 }]);
    assert.equal(formatYears(rows), [
      'year  follows  unfollows  followers at its end',
      '----  -------  ---------  --------------------',
      '2016        8          1                     7',
      '2026       10          4                    13',
    ].join('\n'));
  });
});
