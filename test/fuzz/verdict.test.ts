import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FuzzReport } from '../../fuzz/run.ts';
import { fuzzVerdict } from '../../fuzz/verdict.ts';

const CLEAN: FuzzReport = {
  requests: 10, byStatus: { '4xx': 9, closed: 1 }, byKind: {}, serverErrors: [], published: 0, crashed: false, rssStartMb: 100, rssEndMb: 120, seconds: 1,
};

describe('fuzz verdict', () => {
  it('passes a run where everything was refused and nothing leaked, and names each failure', () => {
    assert.deepEqual(fuzzVerdict(CLEAN), []);
    assert.deepEqual(fuzzVerdict({ ...CLEAN, crashed: true, published: 2, byStatus: { '4xx': 8, '5xx': 1, closed: 1 }, serverErrors: ['500 for x'], rssEndMb: 300 }), [
      'wxsync run crashed', '500 for x', '2 records were published', '1 of 10 requests were not refused ({"4xx":8,"5xx":1,"closed":1})', 'RSS grew from 100.0 to 300.0 MB',
    ]);
  });
});
