/**
 * `npm run fuzz [-- --count 10000 --seed 1 --slow 20]`: hostile and mutated requests against both listeners of
 * a real `wxsync run`; prints what came back and exits 1 unless every request was refused with a 4xx (or a
 * closed connection), nothing answered 5xx, nothing crashed, nothing was published and RSS stayed flat.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../lib/config.ts';
import { freePorts } from '../lib/ports.ts';
import { fuzzVerdict } from './verdict.ts';
import { runFuzz } from './run.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '10000' }, seed: { type: 'string', default: '1' }, slow: { type: 'string', default: '20' } } });
const [port = 0] = await freePorts(1);
const dataDir = mkdtempSync(path.join(tmpdir(), 'wxsync-fuzz-'));
try {
  const report = await runFuzz({
    count: Number(values.count), seed: Number(values.seed), slow: Number(values.slow), concurrency: 32, dataDir, port,
    brokers: loadConfig().kafka.brokers.join(','),
  });
  const row = (name: string, value: string | number): void => { process.stdout.write(`${name.padEnd(40)} ${String(value)}\n`); };
  row('requests', report.requests);
  for (const [status, n] of Object.entries(report.byStatus).sort()) row(`  answered ${status}`, n);
  for (const [kind, n] of Object.entries(report.byKind).sort()) row(`  of kind "${kind}"`, n);
  row('5xx or 2xx answers', report.serverErrors.length);
  row('records published', report.published);
  row('crashed', report.crashed ? 'yes' : 'no');
  row('RSS of wxsync run (MB), after warm-up → end', `${report.rssStartMb.toFixed(1)} → ${report.rssEndMb.toFixed(1)}`);
  row('seconds', report.seconds.toFixed(1));
  const problems = fuzzVerdict(report);
  for (const problem of problems) process.stdout.write(`FAIL ${problem}\n`);
  process.exitCode = problems.length === 0 ? 0 : 1;
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
