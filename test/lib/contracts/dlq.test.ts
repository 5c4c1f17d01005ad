import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DLQ_MAX_VALUE_BYTES, dlqRecord } from '../../../lib/contracts/dlq.ts';
import { ErrorCode } from '../../../lib/errors.ts';

describe('DLQ record', () => {
  it('keeps the origin, the reason and the value, cut to a bounded size', () => {
    const value = Buffer.alloc(DLQ_MAX_VALUE_BYTES + 10, 0x41);
    const record = dlqRecord({ topic: 't', partition: 3, offset: '42', key: Buffer.from('k'), value }, ErrorCode.RecordUndecodable, 'too big', 1);
    assert.deepEqual(record.source, { topic: 't', partition: 3, offset: '42', key: 'k' });
    assert.equal(record.truncated, true);
    assert.equal(record.valueBytes, value.length);
    assert.equal(Buffer.from(record.value, 'base64').length, DLQ_MAX_VALUE_BYTES);
    const empty = dlqRecord({ topic: 't', partition: 0, offset: '0', key: null, value: null }, ErrorCode.RecordUndecodable, 'empty', 1);
    assert.deepEqual([empty.value, empty.valueBytes, empty.truncated, empty.source.key], ['', 0, false, null]);
  });
});
