import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toTsv, tsvArray, tsvIdArray, tsvMillis, tsvString } from '../../../consumers/clickhouse/tsv.ts';

describe('TabSeparated encoding', () => {
  it('escapes every character TSV gives a meaning to', () => {
    assert.equal(tsvString('plain'), 'plain');
    assert.equal(tsvString("a\tb\nc\\d'e\r\0"), "a\\tb\\nc\\\\d\\'e\\r\\0");
  });

  it('writes epoch milliseconds as seconds with three decimals, whatever the magnitude', () => {
    assert.equal(tsvMillis(0), '0.000');
    assert.equal(tsvMillis(7), '0.007');
    assert.equal(tsvMillis(1_767_225_600_123), '1767225600.123');
    assert.equal(tsvMillis(1_767_225_600_050), '1767225600.050');
  });

  it('encodes one line per row, arrays as ClickHouse literals', () => {
    const rows = [{ a: 'x\ty', tags: [1, 2] }, { a: '', tags: [] }];
    assert.equal(toTsv(rows, (r) => `${tsvArray(r.tags)}\t${tsvString(r.a)}`), '[1,2]\tx\\ty\n[]\t\n');
    assert.equal(toTsv([], () => 'never'), '');
  });

  it('writes arrays of ids as quoted ClickHouse literals, the empty one without a phantom empty string', () => {
    assert.equal(tsvIdArray(['oA-1', 'o_B']), "['oA-1','o_B']");
    assert.equal(tsvIdArray(['o']), "['o']");
    assert.equal(tsvIdArray([]), '[]');
  });
});
