import { describeError, isWxsyncError, ErrorCode } from '../lib/errors.ts';
import { redactText } from '../lib/logger.ts';
import type { CommandModule } from './command.ts';

// Each command is imported only when used, so `wxsync kafka status` never loads chDB's 500 MB engine.
const commands: Readonly<Record<string, () => Promise<CommandModule>>> = {
  run: () => import('./run.ts'),
  kafka: () => import('./kafka.ts'),
  migrate: () => import('./migrate.ts'),
  sim: () => import('./sim.ts'),
  snapshot: () => import('./snapshot.ts'),
  reconcile: () => import('./reconcile.ts'),
  followers: () => import('./followers.ts'),
  compare: () => import('./compare.ts'),
  snapshots: () => import('./snapshots.ts'),
  report: () => import('./report.ts'),
  demo: () => import('./demo.ts'),
  dashboard: () => import('./dashboard.ts'),
};

function usage(): string {
  return [
    'usage: wxsync <command> [options]',
    '',
    'commands:',
    ...Object.keys(commands).map((name) => `  ${name}`),
    '',
    'Configuration comes from the environment; see README.md.',
  ].join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (load === undefined) {
    process.stderr.write(`wxsync: unknown command ${JSON.stringify(name)}\n${usage()}\n`);
    return 2;
  }
  const command = await load();
  return command.main(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // Expected failures (bad config, broker down) get one clear line; anything else keeps its stack.
  // Redacted: a config problem or an error may quote a URL with credentials in it.
  process.stderr.write(`wxsync: ${redactText(isWxsyncError(error) ? describeError(error) : (error as Error).stack ?? String(error))}\n`);
  process.exitCode = isWxsyncError(error, ErrorCode.UsageInvalid) ? 2 : 1;
}
