import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, type Config } from '../lib/config.ts';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';

/** A subcommand of `wxsync`: gets its own arguments, returns the process exit code. */
export type Command = (argv: readonly string[]) => Promise<number>;

export interface CommandModule {
  readonly summary: string;
  readonly main: Command;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `<command> <appid> [options]`: the options, the appid and the config, the appid checked against
 * WXSYNC_ACCOUNTS. A bad invocation is a UsageInvalid error (one line, exit 2) before anything is opened.
 */
export function accountInvocation<O extends Options>(argv: readonly string[], usage: string, options: O) {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new WxsyncError(ErrorCode.UsageInvalid, `${(error as Error).message}\n${usage}`);
  }
  const [appid, ...extra] = parsed.positionals;
  if (appid === undefined || extra.length > 0) throw new WxsyncError(ErrorCode.UsageInvalid, usage);
  const config: Config = loadConfig();
  if (!config.accounts.some((a) => a.appid === appid)) throw new WxsyncError(ErrorCode.UsageInvalid, `unknown account ${appid}: it is not in WXSYNC_ACCOUNTS`);
  return { appid, values: parsed.values, config };
}

/** Runs `work` with a signal that SIGINT or SIGTERM aborts, so a command stops cleanly (a snapshot keeps its checkpoint). */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const onSignal = (): void => { abort.abort(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(abort.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
