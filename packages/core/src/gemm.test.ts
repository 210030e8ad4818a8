import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ShapeError } from './errors.js';
import { matmul } from './gemm.js';
import { Rng } from './random.js';

function randomMatrix(rng: Rng, size: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.normal();
  return out;
}

/** The naive triple loop in double precision: the truth for every GEMM path. */
function naive(a: Float32Array, b: Float32Array, m: number, k: number, n: number, transposeB: boolean): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * (transposeB ? b[j * k + p]! : b[p * n + j]!);
      c[i * n + j] = s;
    }
  }
  return c;
}

function expectClose(actual: Float32Array, expected: Float64Array, k: number): void {
  expect(actual.length).toBeGreaterThanOrEqual(expected.length);
  // float32 sums of k products of N(0,1) values: error grows like sqrt(k)·eps.
  const tol = 1e-5 * Math.sqrt(Math.max(1, k)) * 4;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    if (!(Math.abs(actual[i]! - e) <= tol * (1 + Math.abs(e)))) {
      throw new Error(`element ${i}: got ${actual[i]}, expected ${e}`);
    }
  }
}

describe('matmul', () => {
  it('matches the naive triple loop over odd sizes, both layouts', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 150 }),
        fc.integer({ min: 1, max: 140 }),
        fc.boolean(),
        fc.constantFrom('auto', 'js') as fc.Arbitrary<'auto' | 'js'>,
        fc.integer({ min: 0, max: 1 << 30 }),
        (m, k, n, transposeB, kernel, seed) => {
          const rng = new Rng(seed);
          const a = randomMatrix(rng, m * k);
          const b = randomMatrix(rng, k * n);
          expectClose(matmul(a, b, m, k, n, undefined, { transposeB, kernel }), naive(a, b, m, k, n, transposeB), k);
        },
      ),
      { numRuns: 60 },
    );
  });

  it.each(['wasm-simd', 'js'] as const)('%s: accumulates into out and overwrites it otherwise', (kernel) => {
    const rng = new Rng(7);
    const [m, k, n] = [5, 333, 9];
    const a = randomMatrix(rng, m * k);
    const b = randomMatrix(rng, n * k);
    const product = naive(a, b, m, k, n, true);
    const out = new Float32Array(m * n).fill(2);
    matmul(a, b, m, k, n, out, { transposeB: true, accumulate: true, kernel });
    expectClose(out, product.map((x) => x + 2), k);
    out.fill(-3);
    expect(matmul(a, b, m, k, n, out, { transposeB: true, kernel })).toBe(out);
    expectClose(out, product, k);
  });

  it('gives the same product with worker threads sharing row chunks', () => {
    const rng = new Rng(11);
    const [m, k, n] = [301, 129, 203];
    const a = randomMatrix(rng, m * k);
    const b = randomMatrix(rng, k * n);
    const alone = matmul(a, b, m, k, n, undefined, { threads: 1 });
    const shared = matmul(a, b, m, k, n, undefined, { threads: 2 });
    expect(Array.from(shared)).toEqual(Array.from(alone));
    expectClose(shared, naive(a, b, m, k, n, false), k);
  });

  it('handles empty dimensions', () => {
    expect(matmul(new Float32Array(0), new Float32Array(0), 0, 3, 0)).toHaveLength(0);
    expect(Array.from(matmul(new Float32Array(0), new Float32Array(0), 2, 0, 3))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('rejects short arrays and bad sizes with ShapeError naming the operand', () => {
    expect(() => matmul(new Float32Array(5), new Float32Array(6), 2, 3, 2)).toThrow(/a must hold m·k = 2·3 = 6 elements, has 5/);
    expect(() => matmul(new Float32Array(6), new Float32Array(5), 2, 3, 2)).toThrow(ShapeError);
    expect(() => matmul(new Float32Array(6), new Float32Array(6), 2, 3, 2, new Float32Array(3))).toThrow(/out must hold/);
    expect(() => matmul(new Float32Array(6), new Float32Array(6), 2.5, 3, 2)).toThrow(/m must be a non-negative integer, got 2.5/);
  });
});
