import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PAGE_OPENIDS, decodeSnapshotRecord, encodeSnapshotRecord, snapshotKey, type SnapshotRecord } from '../../../lib/contracts/snapshot.ts';
import { ErrorCode, isWxsyncError } from '../../../lib/errors.ts';

const base = { v: 1, appid: 'wxapp', snapshotId: 'wxapp-20260601T000000Z-ab12' } as const;
const startedAt = Date.UTC(2026, 5, 1);
const openids = Array.from({ length: MAX_PAGE_OPENIDS }, (_, i) => `o${String(i).padStart(27, 'x')}`);

describe('snapshot record contract', () => {
  it('round-trips begin, a full page and end', () => {
    const records: SnapshotRecord[] = [
      { ...base, kind: 'begin', startedAt },
      { ...base, kind: 'page', page: 0, cursor: '', nextOpenid: openids.at(-1) ?? '', total: 25_001, openids, fetchedAt: startedAt + 5 },
      { ...base, kind: 'end', complete: false, reason: 'WECHAT_QUOTA_EXHAUSTED: 45009', pages: 1, openids: 10_000, total: 25_001, startedAt, endedAt: startedAt + 9 },
    ];
    for (const record of records) assert.deepEqual(decodeSnapshotRecord(encodeSnapshotRecord(record)), record);
    assert.equal(snapshotKey(base), 'wxapp:wxapp-20260601T000000Z-ab12');
  });

  it('refuses malformed, hostile and oversized records', () => {
    const invalid = (value: unknown): void => {
      assert.throws(() => decodeSnapshotRecord(Buffer.from(JSON.stringify(value))), (e: unknown) => isWxsyncError(e, ErrorCode.RecordInvalid));
    };
    invalid({ ...base, kind: 'middle' });
    invalid({ ...base, kind: 'page', page: -1, total: 1, openids: ['o1'], fetchedAt: startedAt });
    invalid({ ...base, kind: 'page', page: 0, total: 1, openids: [...openids, 'one-too-many'], fetchedAt: startedAt });
    invalid({ ...base, kind: 'page', page: 0, total: 1, openids: ['ok', { $ne: 1 }], fetchedAt: startedAt });
    invalid({ ...base, kind: 'page', page: 0, total: 1, openids: 'o1,o2', fetchedAt: startedAt });
    invalid({ ...base, kind: 'end', complete: 'yes', pages: 1, openids: 1, total: 1, startedAt, endedAt: startedAt });
    invalid({ ...base, snapshotId: "x'; DROP TABLE snapshots; --", kind: 'begin', startedAt });
    assert.throws(() => decodeSnapshotRecord(Buffer.alloc(2 * 1024 * 1024, 0x20)), (e: unknown) => isWxsyncError(e, ErrorCode.RecordUndecodable));
  });

  it('never encodes what the decoder would refuse, with the error the decoder would throw', () => {
    const page = { ...base, kind: 'page', page: 0, cursor: '', nextOpenid: '', total: 1, openids: ['o1'], fetchedAt: startedAt } as const;
    const refused = (record: unknown, code: string): void => {
      assert.throws(() => encodeSnapshotRecord(record as SnapshotRecord), (e: unknown) => isWxsyncError(e) && e.code === code);
    };
    refused({ ...page, openids: ['o1', 'o"2'] }, ErrorCode.RecordInvalid);
    refused({ ...page, page: 1.5 }, ErrorCode.RecordInvalid);
    refused({ ...page, fetchedAt: Number.NaN }, ErrorCode.RecordInvalid);
    refused({ ...page, v: 2 }, ErrorCode.RecordUndecodable);
    // Fields the contract does not know still travel, so they count toward the size limit.
    refused({ ...page, padding: 'x'.repeat(1024 * 1024) }, ErrorCode.RecordUndecodable);
    const end = { ...base, kind: 'end', complete: true, pages: 1, openids: 1, total: 1, startedAt, endedAt: startedAt } as const;
    assert.deepEqual(decodeSnapshotRecord(encodeSnapshotRecord({ ...end, reason: undefined } as unknown as SnapshotRecord)), end,
      'an undefined member is left out, as the decoder leaves it out');
  });
});
