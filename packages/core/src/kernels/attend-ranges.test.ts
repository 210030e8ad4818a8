import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ShapeError } from '../errors.js';
import { Rng } from '../random.js';
import { attendRanges, createRowScratch } from './attend-ranges.js';
import { simdKernels } from './simd-runtime.js';

/** Double-precision truth for one query over key ranges. */
function truth(q: Float32Array, k: Float32Array, v: Float32Array, dim: number, valueDim: number, scale: number, ranges: [number, number][]) {
  const keys = ranges.flatMap(([s, e]) => Array.from({ length: e - s }, (_, i) => s + i));
  if (keys.length === 0) return { out: new Float64Array(valueDim), lse: -Infinity };
  const scores = keys.map((j) => {
    let s = 0;
    for (let c = 0; c < dim; c++) s += q[c]! * k[j * dim + c]!;
    return s * scale;
  });
  const max = Math.max(...scores);
  const weights = scores.map((s) => Math.exp(s - max));
  const sum = weights.reduce((a, b) => a + b, 0);
  const out = new Float64Array(valueDim);
  keys.forEach((j, n) => {
    for (let c = 0; c < valueDim; c++) out[c]! += (weights[n]! / sum) * v[j * valueDim + c]!;
  });
  return { out, lse: max + Math.log(sum) };
}

function randomArray(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** Sorted, disjoint ranges inside [0, keySeq), some possibly empty. */
function randomRanges(rng: Rng, keySeq: number): [number, number][] {
  const out: [number, number][] = [];
  let at = 0;
  while (at < keySeq && out.length < 6) {
    const start = at + rng.int(Math.max(1, keySeq - at));
    const end = Math.min(keySeq, start + rng.int(20));
    out.push([start, end]);
    at = end + 1;
  }
  return out;
}

describe('attendRanges', () => {
  for (const kernel of ['wasm-simd', 'js'] as const) {
    it(`${kernel}: equals double-precision attention over random ranges, heads and offsets`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 90 }),
          fc.integer({ min: 1, max: 19 }),
          fc.integer({ min: 1, max: 19 }),
          fc.integer({ min: 0, max: 1 << 30 }),
          (keySeq, dim, valueDim, seed) => {
            const rng = new Rng(seed);
            const heads = 2;
            const k = randomArray(rng, heads * keySeq * dim);
            const v = randomArray(rng, heads * keySeq * valueDim);
            const q = randomArray(rng, 3 + dim);
            const scratch = createRowScratch(keySeq, valueDim, kernel);
            expect(scratch.kernel).toBe(kernel);
            // Alternate heads so the SIMD residency has to switch and reload rows.
            for (let step = 0; step < 4; step++) {
              const head = step % heads;
              const ranges = randomRanges(rng, keySeq);
              scratch.rangeCount = 0;
              for (const [s, e] of ranges) scratch.pushRange(s, e);
              const out = new Float32Array(valueDim + 2).fill(7);
              const lse = new Float32Array(2);
              const pairs = attendRanges(q, 3, k, head * keySeq * dim, v, head * keySeq * valueDim, dim, valueDim, 0.3, scratch, out, 1, lse, 1);
              const expected = truth(q.subarray(3), k.subarray(head * keySeq * dim), v.subarray(head * keySeq * valueDim), dim, valueDim, 0.3, ranges);
              expect(pairs).toBe(ranges.reduce((n, [s, e]) => n + e - s, 0));
              expect(out[0]).toBe(7);
              expect(out[valueDim + 1]).toBe(7);
              for (let c = 0; c < valueDim; c++) expect(Math.abs(out[1 + c]! - expected.out[c]!)).toBeLessThan(2e-5);
              if (expected.lse === -Infinity) expect(lse[1]).toBe(-Infinity);
              else expect(Math.abs(lse[1]! - expected.lse)).toBeLessThan(2e-5 * (1 + Math.abs(expected.lse)));
            }
          },
        ),
        { numRuns: 60 },
      );
    });
  }

  it('reloads resident rows after another kernel user reset the shared memory', () => {
    const rng = new Rng(3);
    const [keySeq, dim] = [40, 8];
    const k = randomArray(rng, keySeq * dim);
    const v = randomArray(rng, keySeq * dim);
    const q = randomArray(rng, dim);
    const scratch = createRowScratch(keySeq, dim, 'wasm-simd');
    scratch.pushRange(0, keySeq);
    const first = new Float32Array(dim);
    const lse = new Float32Array(1);
    attendRanges(q, 0, k, 0, v, 0, dim, dim, 0.5, scratch, first, 0, lse, 0);
    const arena = simdKernels()!;
    arena.reset();
    const clobbered = arena.alloc(keySeq * dim * 4);
    arena.f32.fill(Number.NaN, clobbered >> 2, (clobbered >> 2) + keySeq * dim * 4);
    const again = new Float32Array(dim);
    attendRanges(q, 0, k, 0, v, 0, dim, dim, 0.5, scratch, again, 0, lse, 0);
    expect(Array.from(again)).toEqual(Array.from(first));
  });

  it('rejects a range past the keys the scratch was made for', () => {
    const scratch = createRowScratch(4, 2, 'wasm-simd');
    scratch.pushRange(0, 5);
    expect(() => attendRanges(new Float32Array(2), 0, new Float32Array(10), 0, new Float32Array(10), 0, 2, 2, 1, scratch, new Float32Array(2), 0, new Float32Array(1), 0)).toThrow(ShapeError);
  });
});
