/**
 * `npm run chaos [-- --short]`: faults injected into a loaded `wxsync run` (see run.ts); prints the table and
 * exits 1 unless no event id is stored twice, no correction contradicts the truth and every account's
 * followers equal the truth.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts } from '../lib/ports.ts';
import { runChaos } from './run.ts';

const { values } = parseArgs({ options: { short: { type: 'boolean', default: false } } });
const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-chaos-'));
try {
  const report = await runChaos({
    dir, ports: await freePorts(3) as [number, number, number],
    brokerDownMs: values.short ? 10_000 : 60_000,
    followers: values.short ? [5000, 3000, 2000] : [50_000, 20_000, 10_000],
    churnPerRound: values.short ? 300 : 2000,
  });
  const row = (name: string, value: string | number): void => { process.stdout.write(`${name.padEnd(48)} ${String(value)}\n`); };
  for (const fault of report.faults) row('fault', fault);
  row('pushes sent by the simulator', report.pushesSent);
  row('  per second over the load (faults included)', `${report.load.average.toFixed(0)} (${report.load.seconds.toFixed(0)} s)`);
  row('  per second, busiest 10 s or more', report.load.busiest.toFixed(0));
  row('answered success', report.answeredSuccess);
  row('dropped by the simulator (lost on purpose)', report.droppedBySimulator);
  row('retried by the simulator (a delivery failed)', report.retriedBySimulator);
  row('given up after every attempt', report.failedAllAttempts);
  row('reconcile runs (scheduled, then the last ones)', report.reconcileRuns);
  row('corrections emitted', report.corrections);
  row('event ids twice in user_events FINAL (must be 0)', report.duplicateIds);
  row('corrections that contradict the truth (must be 0)', report.contradictingCorrections);
  for (const sample of report.contradictionSamples) row('a contradicting correction', sample);
  row('accounts whose followers equal the truth', `${report.accountsEqual} of ${report.accounts}`);
  row('seconds', report.seconds.toFixed(0));
  process.exitCode = report.duplicateIds === 0 && report.contradictingCorrections === 0 && report.accountsEqual === report.accounts ? 0 : 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
