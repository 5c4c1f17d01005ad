import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClickHouseClient } from './clickhouse.ts';
import { packageRoot } from './config.ts';
import { ErrorCode, WxsyncError } from './errors.ts';
import type { Logger } from './logger.ts';

export const SQL_DIR = path.join(packageRoot, 'sql');
const FILE = /^(\d{3})_[a-z0-9_]+\.sql$/;

export interface Migration {
  readonly file: string;
  readonly statements: readonly string[];
}

/** Splits a migration into statements: `;` at the end of a line ends one (no SQL here puts one mid-line). */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) => s.split('\n').filter((line) => !line.trim().startsWith('--')).join('\n').trim())
    .filter((s) => s !== '');
}

export function renderMigration(sql: string, database: string): string {
  return sql.replaceAll('{{db}}', database);
}

export async function loadMigrations(database: string, dir = SQL_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const bad = files.filter((f) => !FILE.test(f));
  if (bad.length > 0) throw new WxsyncError(ErrorCode.MigrationFailed, `migration files must be named NNN_name.sql: ${bad.join(', ')}`);
  return Promise.all(files.map(async (file) => ({
    file,
    statements: splitStatements(renderMigration(await readFile(path.join(dir, file), 'utf8'), database)),
  })));
}

/** Applies every migration in order. Each statement is idempotent, so this runs at every start-up. */
export async function migrate(client: ClickHouseClient, database: string, logger: Logger): Promise<number> {
  const migrations = await loadMigrations(database);
  let count = 0;
  for (const { file, statements } of migrations) {
    for (const statement of statements) {
      try {
        await client.command({ query: statement });
      } catch (error) {
        throw new WxsyncError(ErrorCode.MigrationFailed, `${file}: ${(error as Error).message}`, { cause: error });
      }
      count += 1;
    }
    logger.debug({ file, statements: statements.length }, 'migration applied');
  }
  logger.info({ files: migrations.length, statements: count, database }, 'schema up to date');
  return count;
}
