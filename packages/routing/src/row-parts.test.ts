import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { rowKeys } from '@sparse-attn/core';
import { RowParts, mergeUnique } from './row-parts.js';

const ascending = fc.uniqueArray(fc.nat(60), { maxLength: 30 }).map((xs) => Int32Array.from(xs.sort((a, b) => a - b)));

describe('RowParts', () => {
  it('mergeUnique is the sorted set union', () => {
    fc.assert(
      fc.property(ascending, ascending, (a, b) => {
        const out = new Int32Array(a.length + b.length);
        const n = mergeUnique(a, a.length, b, 0, b.length, out);
        expect(Array.from(out.subarray(0, n))).toEqual([...new Set([...a, ...b])].sort((x, y) => x - y));
      }),
    );
  });

  it('the union selection holds every part\'s keys once; the self rule drops the row\'s own position beside other keys', () => {
    fc.assert(
      fc.property(fc.array(fc.array(ascending, { maxLength: 4 }), { minLength: 1, maxLength: 5 }), fc.boolean(), (rows, selfRule) => {
        const parts = new RowParts(rows.length);
        rows.forEach((list, row) => {
          parts.beginRow(row);
          for (const part of list) parts.addPart(part, 0, part.length);
        });
        const selection = parts.toUnionSelection({ batch: 1, heads: 1, rowsPerHead: rows.length, keySeq: 61, queryOffset: 0, selfRule });
        rows.forEach((list, row) => {
          let expected = [...new Set(list.flatMap((p) => Array.from(p)))].sort((x, y) => x - y);
          if (selfRule && expected.length > 1) expected = expected.filter((j) => j !== row);
          expect(rowKeys(selection, row)).toEqual(expected);
          expect(parts.partCount(row)).toBe(list.filter((p) => p.length > 0).length);
        });
      }),
    );
  });
});
