import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NumericError, ShapeError } from './errors.js';
import { allClose, assertFinite, concatSeq, dims4, headOf, maxAbsDiff, relativeL2Error, sizeOf, sliceSeq, tensor, zeros, type Tensor } from './tensor.js';

/** `[b, h, s, d]` holding `1000b + 100h + 10s + d`, so every element names its own index. */
function indexed(batch: number, heads: number, seq: number, dim: number): Tensor {
  const data = new Float32Array(batch * heads * seq * dim);
  let i = 0;
  for (let b = 0; b < batch; b++) for (let h = 0; h < heads; h++) for (let s = 0; s < seq; s++) for (let d = 0; d < dim; d++) data[i++] = 1000 * b + 100 * h + 10 * s + d;
  return tensor([batch, heads, seq, dim], data);
}

/** The same values as `t`, stored with `capacity` rows per head, padding filled with NaN. */
function padded(t: Tensor, capacity: number): Tensor {
  const [batch, heads, seq, dim] = t.shape as [number, number, number, number];
  const data = new Float32Array(batch * heads * capacity * dim).fill(Number.NaN);
  for (let bh = 0; bh < batch * heads; bh++) data.set(t.data.subarray(bh * seq * dim, (bh + 1) * seq * dim), bh * capacity * dim);
  return { data, shape: t.shape, seqCapacity: capacity };
}

describe('tensor', () => {
  it('creates zero-filled or over given data, and checks shape against data', () => {
    expect(zeros([2, 3]).data).toEqual(new Float32Array(6));
    const data = Float32Array.from([1, 2, 3, 4]);
    expect(tensor([2, 2], data).data).toBe(data);
    expect([...tensor([4], [1, 2, 3, 4]).data]).toEqual([1, 2, 3, 4]);
    expect(sizeOf([])).toBe(1);
    expect(tensor([]).data.length).toBe(1);
    expect(() => tensor([2, 3], [1, 2], 'weights')).toThrow(/weights: shape \[2, 3\] needs 6 elements, data has 2/);
    expect(() => tensor([2, -1])).toThrow(ShapeError);
    expect(() => tensor([1.5])).toThrow(/every dimension must be a non-negative integer, got \[1\.5\]/);
  });

  it('dims4 checks rank, capacity and storage', () => {
    expect(dims4(indexed(1, 2, 3, 4), 'x')).toEqual({ batch: 1, heads: 2, seq: 3, dim: 4, capacity: 3 });
    expect(dims4(padded(indexed(1, 2, 3, 4), 8), 'x').capacity).toBe(8);
    expect(() => dims4(tensor([2, 2]), 'k')).toThrow(/k: expected rank 4 \[batch, heads, seq, headDim\], got \[2, 2\]/);
    expect(() => dims4({ data: new Float32Array(24), shape: [1, 2, 3, 4], seqCapacity: 2 }, 'k')).toThrow(/k: seqCapacity 2 is below seq 3/);
    expect(() => dims4({ data: new Float32Array(10), shape: [1, 2, 3, 4] }, 'v')).toThrow(/v: shape \[1, 2, 3, 4\] \(capacity 3\) needs 24 elements, data has 10/);
  });

  it('headOf copies one head, also from a padded view', () => {
    const t = indexed(2, 3, 4, 2);
    for (const source of [t, padded(t, 7)]) {
      const head = headOf(source, 1, 2);
      expect(head.shape).toEqual([1, 1, 4, 2]);
      expect([...head.data]).toEqual([1200, 1201, 1210, 1211, 1220, 1221, 1230, 1231]);
    }
    const head = headOf(t, 0, 0);
    head.data[0] = -1;
    expect(t.data[0]).toBe(0);
    expect(() => headOf(t, 2, 0)).toThrow(/headOf: index \[2, 0\] outside \[2, 3, 4, 2\]/);
    expect(() => headOf(t, 0, -1)).toThrow(ShapeError);
  });

  it('sliceSeq copies a sequence range and compacts padded views', () => {
    const t = indexed(2, 2, 5, 3);
    const s = sliceSeq(padded(t, 9), 1, 3);
    expect(s.shape).toEqual([2, 2, 2, 3]);
    expect(s.seqCapacity).toBeUndefined();
    expect([...s.data.subarray(0, 6)]).toEqual([10, 11, 12, 20, 21, 22]);
    expect([...s.data.subarray(18, 24)]).toEqual([1110, 1111, 1112, 1120, 1121, 1122]);
    expect(sliceSeq(t, 2, 2).shape).toEqual([2, 2, 0, 3]);
    expect(allClose(sliceSeq(t, 0, 5), t)).toBe(true);
    expect(() => sliceSeq(t, 3, 6)).toThrow(/sliceSeq: range \[3, 6\) outside sequence length 5/);
    expect(() => sliceSeq(t, 3, 2)).toThrow(ShapeError);
  });

  it('concatSeq joins along the sequence axis and rejects incompatible parts', () => {
    const t = indexed(1, 2, 6, 2);
    const joined = concatSeq([sliceSeq(t, 0, 1), padded(sliceSeq(t, 1, 4), 5), sliceSeq(t, 4, 6)]);
    expect(joined.shape).toEqual(t.shape);
    expect(maxAbsDiff(joined, t)).toBe(0);
    expect(() => concatSeq([])).toThrow(/concatSeq: no tensors given/);
    expect(() => concatSeq([t, indexed(1, 2, 6, 3)])).toThrow(/concatSeq: parts\[1\] has shape \[1, 2, 6, 3\], incompatible with \[1, 2, 6, 2\]/);
  });

  it('property: concatenating any split of a tensor gives it back', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 17 }), fc.integer({ min: 1, max: 5 }), fc.array(fc.nat(), { maxLength: 4 }), (b, h, s, d, cuts) => {
        const t = indexed(b, h, s, d);
        const points = [...new Set([0, ...cuts.map((c) => c % (s + 1)), s])].sort((x, y) => x - y);
        const parts = points.slice(1).map((end, i) => sliceSeq(t, points[i]!, end));
        expect(maxAbsDiff(concatSeq(parts), t)).toBe(0);
      }),
      { numRuns: 100, seed: 11 },
    );
  });

  it('assertFinite names the first NaN/Infinity and ignores a padded view\'s padding', () => {
    const t = indexed(1, 2, 3, 2);
    expect(() => assertFinite(padded(t, 6), 'k')).not.toThrow();
    const bad = tensor(t.shape, t.data.slice());
    bad.data[9] = Number.POSITIVE_INFINITY;
    expect(() => assertFinite(bad, 'q')).toThrow(NumericError);
    expect(() => assertFinite(bad, 'q')).toThrow(/q: non-finite value Infinity at flat index 9 of shape \[1, 2, 3, 2\]/);
    const badPadded = padded(t, 4);
    badPadded.data[4 * 2 + 3] = Number.NaN; // head 1, row 1, column 1
    expect(() => assertFinite(badPadded, 'v')).toThrow(/v: non-finite value NaN at \[0, 1, 1, 1\]/);
  });

  it('comparisons: allClose tolerances, maxAbsDiff, relativeL2Error', () => {
    const a = tensor([3], [1, 2, 3]);
    expect(allClose(a, tensor([3], [1, 2, 3 + 2e-5]))).toBe(true); // 2e-5 ≤ 1e-6 + 1e-5·3
    expect(allClose(a, tensor([3], [1, 2, 3 + 5e-5]))).toBe(false);
    expect(allClose(a, tensor([3], [1, 2, 3.1]), 0.05)).toBe(true);
    expect(allClose(a, tensor([3], [1, 2, Number.NaN]))).toBe(false);
    expect(allClose(tensor([1], [1e-7]), tensor([1], [0]))).toBe(true);
    expect(maxAbsDiff(a, tensor([3], [1, 2.5, 2]))).toBe(1);
    expect(relativeL2Error(tensor([2], [3, 4]), tensor([2], [0, 0]))).toBe(Infinity);
    expect(relativeL2Error(tensor([2], [0, 0]), tensor([2], [0, 0]))).toBe(0);
    expect(relativeL2Error(tensor([2], [3, 5]), tensor([2], [3, 4]))).toBeCloseTo(1 / 5, 12);
    expect(() => allClose(a, tensor([1, 3], [1, 2, 3]))).toThrow(/shapes differ: \[3\] vs \[1, 3\]/);
    expect(() => maxAbsDiff(indexed(1, 1, 2, 2), indexed(1, 1, 3, 2))).toThrow(ShapeError);
  });

  it('comparisons read only the logical rows of padded (seqCapacity) views, whose padding holds NaN', () => {
    const t = indexed(2, 3, 4, 5);
    for (const [x, y] of [[padded(t, 7), t], [t, padded(t, 6)], [padded(t, 9), padded(t, 5)]] as const) {
      expect(maxAbsDiff(x, y)).toBe(0);
      expect(relativeL2Error(x, y)).toBe(0);
      expect(allClose(x, y)).toBe(true);
    }
    // A difference in the last logical element of the last head is still found.
    const changed = padded(t, 7);
    changed.data[(2 * 3 - 1) * 7 * 5 + 4 * 5 - 1]! += 0.5;
    expect(maxAbsDiff(changed, t)).toBeCloseTo(0.5, 3);
    expect(allClose(t, changed)).toBe(false);
    expect(relativeL2Error(changed, t)).toBeGreaterThan(0);
    // NaN in a logical element is reported, never hidden.
    const nan = padded(t, 5);
    nan.data[5 * 5 + 3] = Number.NaN; // head 1, row 0, column 3
    expect(maxAbsDiff(nan, t)).toBeNaN();
    expect(allClose(nan, t)).toBe(false);
  });
});
