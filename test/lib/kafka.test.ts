import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { murmur2 } from '../../lib/kafka.ts';

describe('murmur2', () => {
  it('hashes as the Java client does, so a key lands in the same partition whoever produces it', () => {
    // Apache Kafka's UtilsTest.testMurmur2 vectors.
    const vectors: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, hash] of vectors) assert.equal(murmur2(Buffer.from(key, 'utf8')), hash, key);
  });
});
