import { loadConfig } from '../lib/config.ts';
import { DEMO_USAGE, parseDemoOptions } from '../demo/options.ts';
import { runDemo } from '../demo/run.ts';

export const summary = 'wxsync against simulated accounts on this machine, with a live summary and the churn report (demo --help)';

/**
 * Exit codes: 0 the demo ran (and with --duration, the store equalled the truth at the end), 1 it did not, 2 a bad
 * invocation, 130 stopped before it began. Ctrl-C (or SIGTERM) ends the demo in order; a second one kills
 * `wxsync run` instead of waiting for it.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseDemoOptions(argv);
  if (parsed.help) {
    process.stdout.write(`${DEMO_USAGE}\n`);
    return 0;
  }
  const config = loadConfig();
  const stop = new AbortController();
  const force = new AbortController();
  const onSignal = (): void => {
    if (stop.signal.aborted) force.abort();
    else stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await runDemo({ options: parsed.options, config, out: process.stdout, stop: stop.signal, force: force.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
