import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClickHouseClient } from './clickhouse.ts';
import { packageRoot } from './config.ts';
import { ErrorCode, WxsyncError } from './errors.ts';
import type { Logger } from './logger.ts';

export const SQL_DIR = path.join(packageRoot, 'sql');
const FILE = /^(\d{3})_[a-z0-9_]+\.sql$/;

export interface Statement {
  readonly sql: string;
  /**
   * A query whose first value decides whether the statement runs (non-zero: it runs). Written as a comment
   * line `-- when: SELECT …` inside the statement; for upgrades that plain IF [NOT] EXISTS cannot express,
   * such as rebuilding a table whose definition changed.
   */
  readonly when?: string;
}

export interface Migration {
  readonly file: string;
  readonly statements: readonly Statement[];
}

const WHEN = /^\s*--\s*when:\s*(.+)$/;

/** Splits a migration into statements: `;` at the end of a line ends one (no SQL here puts one mid-line). */
export function splitStatements(sql: string): Statement[] {
  const statements: Statement[] = [];
  for (const chunk of sql.split(/;\s*$/m)) {
    const lines = chunk.split('\n');
    const when = lines.map((line) => WHEN.exec(line)?.[1]?.trim()).find((w) => w !== undefined);
    const text = lines.filter((line) => !line.trim().startsWith('--')).join('\n').trim();
    if (text !== '') statements.push(when === undefined ? { sql: text } : { sql: text, when });
  }
  return statements;
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

async function applies(client: ClickHouseClient, when: string | undefined): Promise<boolean> {
  if (when === undefined) return true;
  const [row] = await (await client.query({ query: when, format: 'JSONCompactEachRow' })).json<unknown[]>();
  const value = row?.[0];
  return value !== undefined && value !== null && value !== 0 && value !== '0' && value !== false;
}

/**
 * Applies every migration in order. Each statement is idempotent (or guarded by `-- when:`), so this runs at
 * every start-up. Returns how many statements ran. `dir` is for tests that build a store of an older schema.
 */
export async function migrate(client: ClickHouseClient, database: string, logger: Logger, dir = SQL_DIR): Promise<number> {
  const migrations = await loadMigrations(database, dir);
  let count = 0;
  for (const { file, statements } of migrations) {
    for (const { sql, when } of statements) {
      try {
        if (!await applies(client, when)) continue;
        await client.command({ query: sql });
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
