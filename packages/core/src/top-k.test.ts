import { describe, expect, it } from 'vitest';
import { Rng } from './random.js';
import { quickselect, selectTopK, type TopKTieBreak } from './top-k.js';

/** The top-k by a full sort: score descending, then index toward the tie-break end. */
function bruteForce(values: number[], k: number, tieBreak: TopKTieBreak): number[] {
  const score = (v: number) => (Number.isNaN(v) ? -Infinity : v);
  const order = values.map((_, i) => i);
  order.sort((a, b) => score(values[b]!) - score(values[a]!) || (tieBreak === 'lower' ? a - b : b - a));
  return order.slice(0, Math.max(0, Math.min(k, values.length))).sort((a, b) => a - b);
}

describe('quickselect', () => {
  it('returns the value of each ascending rank, sorted and reversed inputs included', () => {
    const rng = new Rng(3);
    for (const make of [
      (n: number) => Array.from({ length: n }, () => rng.int(7)),
      (n: number) => Array.from({ length: n }, (_, i) => i),
      (n: number) => Array.from({ length: n }, (_, i) => n - i),
    ]) {
      for (const n of [1, 2, 3, 10, 97]) {
        const values = make(n);
        const sorted = [...values].sort((a, b) => a - b);
        for (let rank = 0; rank < n; rank++) expect(quickselect(Float64Array.from(values), n, rank)).toBe(sorted[rank]);
      }
    }
  });
});

describe('selectTopK', () => {
  it.each(['lower', 'higher'] as const)('matches a full sort with many ties, NaN and offsets (ties to the %s index)', (tieBreak) => {
    const rng = new Rng(tieBreak === 'lower' ? 1 : 2);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + rng.int(60);
      const offset = rng.int(5);
      const values = Array.from({ length: offset + n }, () => (rng.next() < 0.05 ? Number.NaN : rng.int(6) - 2));
      const k = rng.int(n + 3) - 1;
      const out = new Int32Array(Math.max(1, n));
      const written = selectTopK(values, offset, n, k, out, new Float32Array(n), tieBreak);
      expect(Array.from(out.subarray(0, written))).toEqual(bruteForce(values.slice(offset), k, tieBreak));
    }
  });

  it('keeps every index when k ≥ n and none when k ≤ 0', () => {
    const out = new Int32Array(4);
    expect(selectTopK([3, 1, 2], 0, 3, 5, out, new Float64Array(3))).toBe(3);
    expect(Array.from(out.subarray(0, 3))).toEqual([0, 1, 2]);
    expect(selectTopK([3, 1, 2], 0, 3, 0, out, new Float64Array(3))).toBe(0);
  });

  it('breaks an all-equal row toward the requested end', () => {
    const out = new Int32Array(2);
    selectTopK([5, 5, 5, 5], 0, 4, 2, out, new Float64Array(4), 'lower');
    expect(Array.from(out)).toEqual([0, 1]);
    selectTopK([5, 5, 5, 5], 0, 4, 2, out, new Float64Array(4), 'higher');
    expect(Array.from(out)).toEqual([2, 3]);
  });
});
