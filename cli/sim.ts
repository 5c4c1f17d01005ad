import { createLogger } from '../lib/logger.ts';
import { SIM_USAGE, parseSimOptions } from '../sim/options.ts';
import { startSim } from '../sim/server.ts';

export const summary = 'simulated WeChat Official Accounts: the API, follower churn and callback pushes';

/** Runs until SIGTERM or SIGINT, then lets requests in flight finish and exits 0. */
export async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseSimOptions(argv);
  if (parsed.help) {
    process.stdout.write(`${SIM_USAGE}\n`);
    return 0;
  }
  const { options } = parsed;
  const logger = createLogger(options.logLevel, 'wxsync-sim');
  const sim = await startSim(options, logger);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
    // Announced only once the signal handlers exist, so a supervisor that stops us right after never kills us mid-setup.
    process.stdout.write(`${JSON.stringify(sim.ready)}\n`);
  });
  logger.info({ signal }, 'simulator stopping');
  await sim.close();
  logger.flush();
  return 0;
}
