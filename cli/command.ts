/** A subcommand of `wxsync`: gets its own arguments, returns the process exit code. */
export type Command = (argv: readonly string[]) => Promise<number>;

export interface CommandModule {
  readonly summary: string;
  readonly main: Command;
}
