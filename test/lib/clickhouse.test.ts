import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ClickHouseError } from '@clickhouse/client';
import { DETERMINISTIC_ERROR_CODES, clickHouseErrorInfo, createClickHouse, deterministicClickHouseError, storeWritable } from '../../lib/clickhouse.ts';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';

describe('ClickHouse error classification', () => {
  it('lists deterministic codes under the names ClickHouse itself gives them', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-chcodes-'));
    const client = createClickHouse({ target: { kind: 'embedded', path: dir }, database: 'default' });
    try {
      const codes = [...DETERMINISTIC_ERROR_CODES.keys()];
      const result = await client.query({
        query: 'SELECT arrayMap(c -> errorCodeToName(c), {codes:Array(UInt32)}) AS names', query_params: { codes }, format: 'JSONEachRow',
      });
      const [row] = await result.json<{ names: string[] }>();
      assert.deepEqual(row?.names, [...DETERMINISTIC_ERROR_CODES.values()]);
    } finally {
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds the code inside wrapping errors and decides by the code alone', () => {
    const refused = new ClickHouseError({ message: 'Constraint `c` is violated', code: '469', type: 'VIOLATED_CONSTRAINT' });
    const wrapped = new WxsyncError(ErrorCode.ClickHouseFailed, 'insert failed', { cause: refused });
    assert.deepEqual(clickHouseErrorInfo(wrapped), { code: 469, type: 'VIOLATED_CONSTRAINT', message: 'Constraint `c` is violated' });
    assert.equal(deterministicClickHouseError(wrapped)?.code, 469);
    // A message that reads like a refusal does not make one: only the code counts.
    const transient = new ClickHouseError({ message: 'Constraint violated, cannot parse input', code: '241', type: 'MEMORY_LIMIT_EXCEEDED' });
    assert.equal(deterministicClickHouseError(transient), undefined);
    for (const code of ['252', '159', '209', '210', '173', '202', '394', '16', '47', '60', '62', '81']) {
      assert.equal(deterministicClickHouseError(new ClickHouseError({ message: 'x', code, type: 'X' })), undefined, `code ${code} is retried`);
    }
    assert.equal(deterministicClickHouseError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), undefined);
    assert.equal(deterministicClickHouseError('not an error'), undefined);
  });

  it('classifies a real chDB refusal by its code', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-chcodes-'));
    const client = createClickHouse({ target: { kind: 'embedded', path: dir }, database: 'default' });
    try {
      await client.command({ query: "CREATE TABLE default.t (s String, CONSTRAINT c CHECK s != 'bad') ENGINE = MergeTree ORDER BY s" });
      const error = await client.command({ query: "INSERT INTO default.t VALUES ('bad')" }).then(() => undefined, (e: unknown) => e);
      assert.equal(deterministicClickHouseError(error)?.type, 'VIOLATED_CONSTRAINT');
      const missing = await client.command({ query: "INSERT INTO default.missing VALUES ('x')" }).then(() => undefined, (e: unknown) => e);
      assert.equal(clickHouseErrorInfo(missing)?.code, 60);
      assert.equal(deterministicClickHouseError(missing), undefined, 'a missing table is a deployment fault: retried, never a reason to drop records');
    } finally {
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a store is writable while it answers with room on its disks, and not once closed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-chcodes-'));
    const client = createClickHouse({ target: { kind: 'embedded', path: dir }, database: 'default' });
    try {
      assert.equal(await storeWritable(client), true);
    } finally {
      await client.close();
    }
    assert.equal(await storeWritable(client), false);
    rmSync(dir, { recursive: true, force: true });
  });
});
