import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fuzzVerdict } from '../../fuzz/verdict.ts';
import { runFuzz } from '../../fuzz/run.ts';
import { TEST_BROKERS } from '../support/env.ts';
import { freePorts } from '../../lib/ports.ts';

// The short version of `npm run fuzz` (10,000 requests from the command line): hostile and mutated requests
// against both listeners of a real `wxsync run`.
describe('fuzz: hostile requests against both listeners', { timeout: 180_000 }, () => {
  it('refuses all of them with a 4xx (or a closed connection): no 5xx, no crash, nothing published, RSS flat', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'wxsync-fuzz-test-'));
    try {
      const [port = 0] = await freePorts(1);
      const report = await runFuzz({ count: 1500, seed: 11, slow: 2, concurrency: 16, dataDir, port, brokers: TEST_BROKERS });
      assert.deepEqual(fuzzVerdict(report), [], JSON.stringify(report));
      assert.ok(Object.keys(report.byKind).length >= 12, `every kind of case ran: ${Object.keys(report.byKind).join(', ')}`);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
