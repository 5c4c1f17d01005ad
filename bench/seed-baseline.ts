/**
 * The baseline for `bench:reconcile`: the "seed approach" to reconciling a follower table against a
 * snapshot, on MariaDB/MySQL, the way a peer project does it:
 *   1. fill a temporary table of the snapshot's openids (PRIMARY KEY openid);
 *   2. missing = snapshot openids NOT IN the subscribed followers, stale = subscribed followers NOT IN the
 *      snapshot (two NOT IN queries, the server's default optimizer choosing the plan);
 *   3. apply them in batches of 1000 openids: missing → INSERT … ON DUPLICATE KEY UPDATE subscribed=1,
 *      stale → UPDATE … SET subscribed=0, unsubscribe_time=NOW(), each batch its own (autocommit) statement.
 * Steps 1-3 are timed: the seed refills the temporary table on every run. Setup (creating and loading
 * the follower table) is untimed, and the table is dropped afterwards.
 *
 * Both tables are filled with LOAD DATA LOCAL INFILE streamed from the iterables (mysql2's
 * infileStreamFactory: no temp file, no giant string), which is faster than multi-row INSERTs; pass
 * `fill: 'insert'` to fill the temporary table with 5000-row INSERTs instead, for comparison.
 * The follower table is loaded without its primary key, which is then added (InnoDB builds it by a
 * sort), so 10M openids in any order load in a bounded time.
 */
import { Readable } from 'node:stream';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';

export interface SeedBaselineInput {
  readonly appid: string;
  /** The store's subscribed followers before reconciling (loaded untimed). */
  readonly followers: Iterable<string> | AsyncIterable<string>;
  /** The snapshot's openids (loading them into the temp table IS timed). */
  readonly snapshot: Iterable<string> | AsyncIterable<string>;
}

export interface SeedBaselineResult {
  /** Creating and loading the follower table (untimed by the comparison). */
  readonly setupMs: number;
  /** fill + query + update (+ dropping the temporary table): the seed's reconcile, end to end. */
  readonly reconcileMs: number;
  readonly missing: number;
  readonly stale: number;
  readonly fillMs: number;
  readonly queryMs: number;
  readonly updateMs: number;
  /** InnoDB's buffer pool during the run (MB): it decides whether the 10M fill is CPU- or disk-bound. */
  readonly bufferPoolMb: number;
}

export interface SeedBaselineOptions {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  /** The follower table's name; by default one unique to this run. It is dropped and recreated. */
  table?: string;
  /** How the temporary table is filled: LOAD DATA LOCAL INFILE (default, fastest) or multi-row INSERTs. */
  fill?: 'load-data' | 'insert';
  /** The NOT IN plan: the optimizer's own choice, or per-row index lookups (materialization=off). */
  notIn?: 'optimizer' | 'in-to-exists';
  /**
   * Resize InnoDB's buffer pool (SET GLOBAL, needs SUPER) to this many MB for the run, restoring it after.
   * The server default, 128 MB, is far below a 10M-row table: the fill into the keyed temporary table
   * becomes random disk I/O and ~10× slower than with the data in memory, as a production server would have it.
   */
  bufferPoolMb?: number;
}

const applyBatch = 1000;
const insertBatch = 5000;
const chunkBytes = 1 << 20;

/** `openid\n` lines in ~1 MB Buffers (mysql2 copies Buffers, not strings), escaped for LOAD DATA's default FIELDS ESCAPED BY '\\'. */
async function* lines(openids: Iterable<string> | AsyncIterable<string>): AsyncGenerator<Buffer> {
  let chunk = '';
  for await (const openid of openids) {
    chunk += /[\\\t\n]/.test(openid) ? `${openid.replace(/[\\\t\n]/g, (c) => (c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\\\'))}\n` : `${openid}\n`;
    if (chunk.length >= chunkBytes) {
      yield Buffer.from(chunk);
      chunk = '';
    }
  }
  if (chunk.length > 0) yield Buffer.from(chunk);
}

async function loadData(conn: Connection, sql: string, values: unknown[], openids: Iterable<string> | AsyncIterable<string>): Promise<void> {
  await conn.query({ sql, values, infileStreamFactory: () => Readable.from(lines(openids)) });
}

async function* batches<T>(items: Iterable<T> | AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

function openidsOf(rows: unknown[]): string[] {
  return (rows as [string][]).map((row) => row[0]);
}

export async function runSeedBaseline(input: SeedBaselineInput, options: SeedBaselineOptions = {}): Promise<SeedBaselineResult> {
  const conn = await createConnection({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 3306,
    user: options.user ?? 'root',
    password: options.password ?? '',
    database: options.database ?? 'test',
  });
  const poolSize = async (): Promise<number> => {
    const [rows] = await conn.query<RowDataPacket[]>({ sql: 'SELECT @@GLOBAL.innodb_buffer_pool_size', rowsAsArray: true });
    return Number((rows as [unknown][])[0]?.[0]);
  };
  const table = conn.escapeId(options.table ?? `wxsync_seed_followers_${process.pid}_${Date.now().toString(36)}`);
  let restorePool: number | undefined;
  try {
    if (options.bufferPoolMb !== undefined) {
      const before = await poolSize();
      await conn.query('SET GLOBAL innodb_buffer_pool_size = ?', [options.bufferPoolMb * 1024 * 1024]);
      restorePool = before;
    }
    const bufferPoolMb = (await poolSize()) / 1024 / 1024;

    // Setup (untimed): the store's follower table, loaded keyless then keyed (a sort, not random inserts).
    let started = performance.now();
    await conn.query(`DROP TABLE IF EXISTS ${table}`);
    await conn.query(`CREATE TABLE ${table} (
      appid VARCHAR(32) NOT NULL,
      openid VARCHAR(64) NOT NULL,
      subscribed TINYINT NOT NULL,
      subscribe_time DATETIME NULL,
      unsubscribe_time DATETIME NULL
    ) ENGINE=InnoDB`);
    await loadData(conn, `LOAD DATA LOCAL INFILE 'followers' INTO TABLE ${table} CHARACTER SET utf8mb4 (openid)
      SET appid = ?, subscribed = 1, subscribe_time = NOW()`, [input.appid], input.followers);
    await conn.query(`ALTER TABLE ${table} ADD PRIMARY KEY (appid, openid)`);
    const setupMs = performance.now() - started;

    // The seed's reconcile (timed).
    const reconcileStarted = performance.now();
    started = reconcileStarted;
    await conn.query('DROP TEMPORARY TABLE IF EXISTS snap');
    await conn.query('CREATE TEMPORARY TABLE snap (openid VARCHAR(64) NOT NULL PRIMARY KEY) ENGINE=InnoDB');
    if (options.fill === 'insert') {
      for await (const batch of batches(input.snapshot, insertBatch)) {
        await conn.query('INSERT INTO snap (openid) VALUES ?', [batch.map((openid) => [openid])]);
      }
    } else {
      await loadData(conn, `LOAD DATA LOCAL INFILE 'snapshot' INTO TABLE snap CHARACTER SET utf8mb4 (openid)`, [], input.snapshot);
    }
    const fillMs = performance.now() - started;

    started = performance.now();
    if (options.notIn === 'in-to-exists') await conn.query(`SET SESSION optimizer_switch = 'materialization=off'`);
    const [missingRows] = await conn.query<RowDataPacket[]>({
      sql: `SELECT openid FROM snap WHERE openid NOT IN (SELECT openid FROM ${table} WHERE appid = ? AND subscribed = 1)`,
      values: [input.appid], rowsAsArray: true,
    });
    const [staleRows] = await conn.query<RowDataPacket[]>({
      sql: `SELECT openid FROM ${table} WHERE appid = ? AND subscribed = 1 AND openid NOT IN (SELECT openid FROM snap)`,
      values: [input.appid], rowsAsArray: true,
    });
    const missing = openidsOf(missingRows);
    const stale = openidsOf(staleRows);
    const queryMs = performance.now() - started;

    started = performance.now();
    for (let i = 0; i < missing.length; i += applyBatch) {
      const rows = missing.slice(i, i + applyBatch).map((openid) => [input.appid, openid, 1]);
      await conn.query(`INSERT INTO ${table} (appid, openid, subscribed) VALUES ?
        ON DUPLICATE KEY UPDATE subscribed = 1, unsubscribe_time = NULL`, [rows]);
    }
    for (let i = 0; i < stale.length; i += applyBatch) {
      await conn.query(`UPDATE ${table} SET subscribed = 0, unsubscribe_time = NOW() WHERE appid = ? AND openid IN (?)`,
        [input.appid, stale.slice(i, i + applyBatch)]);
    }
    await conn.query('DROP TEMPORARY TABLE snap');
    const updateMs = performance.now() - started;
    const reconcileMs = performance.now() - reconcileStarted;

    return { setupMs, reconcileMs, missing: missing.length, stale: stale.length, fillMs, queryMs, updateMs, bufferPoolMb };
  } finally {
    try {
      await conn.query(`DROP TABLE IF EXISTS ${table}`);
    } finally {
      try {
        if (restorePool !== undefined) await conn.query('SET GLOBAL innodb_buffer_pool_size = ?', [restorePool]);
      } finally {
        await conn.end();
      }
    }
  }
}
