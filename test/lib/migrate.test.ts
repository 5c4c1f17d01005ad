import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createClickHouse } from '../../lib/clickhouse.ts';
import { silentLogger } from '../../lib/logger.ts';
import { loadMigrations, migrate, splitStatements } from '../../lib/migrate.ts';

describe('migrations', () => {
  it('split into statements at line-ending semicolons, dropping comments', () => {
    assert.deepEqual(splitStatements('-- a comment; not a split\nCREATE A;\n\nCREATE B\n  (x);\n-- end\n'), [{ sql: 'CREATE A' }, { sql: 'CREATE B\n  (x)' }]);
  });

  it('keep a statement\'s `-- when:` guard', () => {
    assert.deepEqual(splitStatements('-- when: SELECT 1 = 1\nDROP A;\nCREATE B;\n'), [{ sql: 'DROP A', when: 'SELECT 1 = 1' }, { sql: 'CREATE B' }]);
  });

  it('are numbered, target the configured database, and apply twice to chDB without error', async () => {
    const migrations = await loadMigrations('wx_test');
    assert.ok(migrations.length >= 6);
    assert.ok(migrations.every((m, i) => m.file.startsWith(String(i + 1).padStart(3, '0'))));
    assert.ok(migrations.flatMap((m) => m.statements).every((s) => !s.sql.includes('{{db}}') && !(s.when ?? '').includes('{{db}}')));
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-migrate-'));
    const client = createClickHouse({ target: { kind: 'embedded', path: dir }, database: 'wx_test' });
    try {
      const first = await migrate(client, 'wx_test', silentLogger());
      // Guarded upgrades run only where an older store needs them, so a second pass runs no more than the first.
      assert.ok(await migrate(client, 'wx_test', silentLogger()) <= first);
      const tables = await (await client.query({ query: "SELECT name FROM system.tables WHERE database = 'wx_test' ORDER BY name", format: 'JSONEachRow' })).json<{ name: string }>();
      assert.deepEqual(tables.map((t) => t.name), [
        'churn_hourly', 'churn_hourly_refresh', 'churn_hourly_totals', 'churn_hourly_totals_refresh', 'follow_spells', 'follow_spells_refresh',
        'follower_keys', 'follower_keys_mv', 'followers', 'followers_current', 'followers_mv', 'reconcile_candidates', 'reconcile_diff',
        'reconcile_keys', 'reconcile_openids', 'reconcile_runs', 'rollup_refreshes', 'sentinel_checks', 'sentinel_store_count', 'snapshot_compare_details', 'snapshot_compare_keys', 'snapshot_compare_list',
        'snapshot_comparisons', 'snapshot_diff', 'snapshot_drops', 'snapshot_keys',
        'snapshot_member_pages', 'snapshot_member_pages_mv', 'snapshot_members', 'snapshot_status', 'snapshots', 'subscribed_keys',
        'user_events', 'user_profiles', 'window_keys',
      ]);
    } finally {
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
