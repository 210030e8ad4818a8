import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, ShapeError } from './errors.js';
import { SelectionBuilder, expandToTokens, forEachKeyRange, rowKeys, selectionRow, validateSelection, type Selection } from './selection.js';

/** A selection from explicit rows. */
function fromRows(rows: readonly (readonly number[])[], layout: Partial<Selection> & { keySeq: number }): Selection {
  const builder = new SelectionBuilder({ kind: 'token', headScope: 'query', batch: 1, heads: 1, rows: rows.length, ...layout }, 1);
  for (const row of rows) builder.pushRow(row);
  return builder.finish();
}

function ranges(s: Selection, row: number, limit = Infinity): [number, number][] {
  const out: [number, number][] = [];
  forEachKeyRange(s, row, limit, (a, b) => out.push([a, b]));
  return out;
}

describe('SelectionBuilder', () => {
  it('builds CSR offsets and indices from rows and ranges, growing past its initial guess', () => {
    const b = new SelectionBuilder({ kind: 'token', headScope: 'kv', batch: 1, heads: 2, rows: 2, keySeq: 40 }, 1);
    b.pushRow([0, 3, 7]);
    b.pushRange(5, 37);
    b.pushRow([]);
    b.pushRow([9, 10, 11, 12], 2);
    const s = b.finish();
    expect([...s.offsets]).toEqual([0, 3, 35, 35, 37]);
    expect([...s.indices.subarray(0, 3)]).toEqual([0, 3, 7]);
    expect(s.indices[3]).toBe(5);
    expect(s.indices[34]).toBe(36);
    expect([...s.indices.subarray(35)]).toEqual([9, 10]);
    expect(s.indices.length).toBe(37);
    expect(s).toMatchObject({ kind: 'token', blockSize: 1, headScope: 'kv', queryBlockSize: 1, keySeq: 40 });
    validateSelection(s);
  });

  it('rejects too many rows and finishing early', () => {
    const b = new SelectionBuilder({ kind: 'block', blockSize: 4, headScope: 'query', batch: 1, heads: 1, rows: 2, keySeq: 10 });
    b.pushRow([0]);
    expect(() => b.finish()).toThrow(/SelectionBuilder: 1 rows pushed, layout needs 2/);
    b.pushRange(0, 3);
    expect(() => b.pushRow([1])).toThrow(/more rows pushed than the layout holds/);
    expect(() => b.pushRange(0, 1)).toThrow(ShapeError);
    expect(b.finish().blockSize).toBe(4);
  });
});

describe('validateSelection', () => {
  const good = () => fromRows([[0, 2], [1]], { keySeq: 3 });
  const broken = (patch: Partial<Selection>) => ({ ...good(), ...patch });

  it('accepts a well-formed selection, including block-level with a partial last block', () => {
    validateSelection(good());
    validateSelection(fromRows([[0, 2]], { kind: 'block', blockSize: 4, keySeq: 10 }));
  });

  it('names the first problem', () => {
    expect(() => validateSelection(broken({ indices: Int32Array.from([2, 0, 1]) }))).toThrow(/row 0: indices must be sorted and unique \(2 then 0\)/);
    expect(() => validateSelection(broken({ indices: Int32Array.from([0, 0, 1]) }))).toThrow(/row 0: indices must be sorted and unique \(0 then 0\)/);
    expect(() => validateSelection(broken({ indices: Int32Array.from([0, 3, 1]) }))).toThrow(/row 0: index 3 outside \[0, 3\)/);
    expect(() => validateSelection(broken({ indices: Int32Array.from([-1, 2, 1]) }))).toThrow(/index -1 outside/);
    expect(() => validateSelection(broken({ offsets: Int32Array.from([0, 3]) }))).toThrow(/offsets: expected 3 entries \(batch 1 × heads 1 × rows 2 \+ 1\), got 2/);
    expect(() => validateSelection(broken({ offsets: Int32Array.from([1, 2, 3]) }))).toThrow(/offsets must start at 0, got 1/);
    expect(() => validateSelection(broken({ offsets: Int32Array.from([0, 2, 2]) }))).toThrow(/offsets end at 2, indices has 3/);
    expect(() => validateSelection(broken({ offsets: Int32Array.from([0, 3, 1]), indices: Int32Array.from([0]) }))).toThrow(ShapeError);
    expect(() => validateSelection(broken({ blockSize: 2 }))).toThrow(/token selections have blockSize 1, got 2/);
    expect(() => validateSelection(broken({ kind: 'dense' as never }))).toThrow(ConfigError);
    expect(() => validateSelection(broken({ queryBlockSize: 0 }))).toThrow(/queryBlockSize must be a positive integer, got 0/);
    expect(() => validateSelection(fromRows([[3]], { kind: 'block', blockSize: 4, keySeq: 12 }))).toThrow(/index 3 outside \[0, 3\)/);
  });
});

describe('expandToTokens', () => {
  it('expands blocks into their tokens, clipping the last block to keySeq', () => {
    const s = expandToTokens(fromRows([[0, 2], [], [1]], { kind: 'block', blockSize: 4, keySeq: 10 }));
    expect(s).toMatchObject({ kind: 'token', blockSize: 1, rows: 3, keySeq: 10 });
    expect([0, 1, 2].map((r) => [...s.indices.subarray(s.offsets[r]!, s.offsets[r + 1]!)])).toEqual([[0, 1, 2, 3, 8, 9], [], [4, 5, 6, 7]]);
    validateSelection(s);
  });

  it('returns token selections unchanged', () => {
    const s = fromRows([[1]], { keySeq: 2 });
    expect(expandToTokens(s)).toBe(s);
  });
});

describe('forEachKeyRange', () => {
  it('merges adjacent tokens and blocks into maximal ranges, clipped to the limit and keySeq', () => {
    const tokens = fromRows([[0, 1, 2, 5, 7, 8]], { keySeq: 9 });
    expect(ranges(tokens, 0)).toEqual([[0, 3], [5, 6], [7, 9]]);
    expect(ranges(tokens, 0, 8)).toEqual([[0, 3], [5, 6], [7, 8]]);
    expect(ranges(tokens, 0, 5)).toEqual([[0, 3]]);
    expect(ranges(tokens, 0, 0)).toEqual([]);
    const blocks = fromRows([[0, 1, 3, 4]], { kind: 'block', blockSize: 4, keySeq: 18 });
    expect(ranges(blocks, 0)).toEqual([[0, 8], [12, 18]]);
    expect(ranges(blocks, 0, 14)).toEqual([[0, 8], [12, 14]]);
    expect(rowKeys(blocks, 0, 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('property: ranges are sorted, disjoint, non-adjacent and cover exactly the visible selected keys', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 60 }), fc.array(fc.nat(), { maxLength: 30 }), fc.nat(), (blockSize, keySeq, raw, rawLimit) => {
        const blocks = Math.ceil(keySeq / blockSize);
        const chosen = [...new Set(raw.map((x) => x % blocks))].sort((a, b) => a - b);
        const s = fromRows([chosen], { kind: blockSize === 1 ? 'token' : 'block', blockSize, keySeq });
        const limit = rawLimit % (keySeq + 2);
        const expected: number[] = [];
        for (const blk of chosen) for (let j = blk * blockSize; j < Math.min((blk + 1) * blockSize, keySeq, limit); j++) expected.push(j);
        const found = ranges(s, 0, limit);
        for (const [i, [a, b]] of found.entries()) {
          expect(a).toBeLessThan(b);
          if (i > 0) expect(a).toBeGreaterThan(found[i - 1]![1]);
        }
        expect(found.flatMap(([a, b]) => Array.from({ length: b - a }, (_, k) => a + k))).toEqual(expected);
      }),
      { numRuns: 300, seed: 5 },
    );
  });
});

describe('selectionRow', () => {
  it('maps query heads to KV-group rows and queries to query-block rows', () => {
    const layout = { kind: 'token', blockSize: 1, headScope: 'kv', batch: 2, heads: 2, rows: 3, queryBlockSize: 4, keySeq: 12 } as const;
    const s = { ...layout, offsets: new Int32Array(13), indices: new Int32Array(0) };
    // batch 1, query head 5 of group size 3 → KV head 1; query 9 → row 2.
    expect(selectionRow(s, 1, 5, 3, 9)).toBe((1 * 2 + 1) * 3 + 2);
    expect(selectionRow({ ...s, headScope: 'query', heads: 6 }, 1, 5, 3, 9)).toBe((1 * 6 + 5) * 3 + 2);
    expect(selectionRow(s, 0, 2, 3, 3)).toBe(0);
  });
});
