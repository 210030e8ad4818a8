import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { denseAttention } from './dense-attention.js';
import { referenceAttention } from './reference-attention.js';
import { Rng } from './random.js';
import { relativeL2Error, tensor, type Tensor } from './tensor.js';
import type { AttentionInput } from './attention.js';
import type { KernelPreference } from './kernels/simd-runtime.js';

/** A `[batch, heads, seq, dim]` tensor of N(0, 1) values; with `capacity > seq` the padding rows hold NaN (they must never be read). */
function randomTensor(rng: Rng, batch: number, heads: number, seq: number, dim: number, capacity = seq): Tensor {
  const data = new Float32Array(batch * heads * capacity * dim).fill(Number.NaN);
  for (let bh = 0; bh < batch * heads; bh++) {
    for (let e = 0; e < seq * dim; e++) data[bh * capacity * dim + e] = rng.normal() * 1.5;
  }
  const t = tensor([batch, heads, seq, dim], data.subarray(0, batch * heads * seq * dim));
  return capacity === seq ? t : { data, shape: t.shape, seqCapacity: capacity };
}

interface Case {
  batch: number;
  kvHeads: number;
  group: number;
  keySeq: number;
  querySeq: number;
  headDim: number;
  valueDim: number;
  causal: boolean;
  padding: number;
  seed: number;
}

function makeInput(c: Case): AttentionInput {
  const rng = new Rng(c.seed);
  return {
    q: randomTensor(rng, c.batch, c.kvHeads * c.group, c.querySeq, c.headDim),
    k: randomTensor(rng, c.batch, c.kvHeads, c.keySeq, c.headDim, c.keySeq + c.padding),
    v: randomTensor(rng, c.batch, c.kvHeads, c.keySeq, c.valueDim, c.keySeq + c.padding),
    causal: c.causal,
  };
}

function expectMatchesReference(input: AttentionInput, kernel: KernelPreference, expectedKernel: string): void {
  const truth = referenceAttention(input);
  const fast = denseAttention(input, { kernel });
  expect(fast.backend.kernel).toBe(expectedKernel);
  expect(fast.output.shape).toEqual(truth.output.shape);
  expect(relativeL2Error(fast.output, truth.output)).toBeLessThan(1e-5);
  for (let i = 0; i < truth.lse.length; i++) expect(Math.abs(fast.lse[i]! - truth.lse[i]!)).toBeLessThan(1e-4 * (1 + Math.abs(truth.lse[i]!)));
}

const caseArbitrary = fc
  .record({
    batch: fc.integer({ min: 1, max: 2 }),
    kvHeads: fc.integer({ min: 1, max: 2 }),
    group: fc.integer({ min: 1, max: 3 }),
    keySeq: fc.integer({ min: 1, max: 150 }),
    queryFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    headDim: fc.integer({ min: 1, max: 20 }),
    valueDim: fc.integer({ min: 1, max: 20 }),
    causal: fc.boolean(),
    padding: fc.integer({ min: 0, max: 5 }),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .map(({ queryFraction, ...c }): Case => ({ ...c, querySeq: Math.max(1, Math.round(queryFraction * c.keySeq)) }));

describe('denseAttention', () => {
  for (const kernel of ['auto', 'js'] as const) {
    it(`${kernel} kernel equals the reference over random shapes (GQA, Sq ≤ Sk, padded K/V, Dv ≠ D)`, () => {
      fc.assert(
        fc.property(caseArbitrary, (c) => {
          const expected = kernel === 'js' ? 'js' : 'wasm-simd';
          expectMatchesReference(makeInput(c), kernel, expected);
        }),
        { numRuns: 40 },
      );
    });
  }

  const fixed: [string, Case][] = [
    ['S = 1', { batch: 1, kvHeads: 1, group: 1, keySeq: 1, querySeq: 1, headDim: 8, valueDim: 8, causal: true, padding: 0, seed: 1 }],
    ['prefill across several query blocks and key tiles (S = 197, GQA 4)', { batch: 1, kvHeads: 2, group: 4, keySeq: 197, querySeq: 197, headDim: 64, valueDim: 64, causal: true, padding: 3, seed: 2 }],
    ['non-causal, Dv ≠ D, odd sizes', { batch: 2, kvHeads: 1, group: 2, keySeq: 131, querySeq: 131, headDim: 13, valueDim: 30, causal: false, padding: 0, seed: 3 }],
    ['chunked prefill (Sq < Sk, causal)', { batch: 1, kvHeads: 2, group: 2, keySeq: 200, querySeq: 70, headDim: 32, valueDim: 16, causal: true, padding: 7, seed: 4 }],
    ['one-token decode over a padded cache', { batch: 1, kvHeads: 2, group: 2, keySeq: 150, querySeq: 1, headDim: 32, valueDim: 32, causal: true, padding: 50, seed: 5 }],
    ['decode chunk over several key chunks (Sq = 3, S = 1000, GQA 4)', { batch: 2, kvHeads: 2, group: 4, keySeq: 1000, querySeq: 3, headDim: 20, valueDim: 12, causal: true, padding: 9, seed: 10 }],
    ['non-causal short queries over several key chunks', { batch: 1, kvHeads: 1, group: 3, keySeq: 777, querySeq: 2, headDim: 64, valueDim: 64, causal: false, padding: 0, seed: 11 }],
  ];
  for (const [name, c] of fixed) {
    it(`${name}: wasm-simd and js both equal the reference`, () => {
      const input = makeInput(c);
      expectMatchesReference(input, 'wasm-simd', 'wasm-simd');
      expectMatchesReference(input, 'js', 'js');
    });
  }

  it('gives identical results with worker threads sharing the query blocks (causal, GQA, several jobs)', () => {
    const input = makeInput({ batch: 1, kvHeads: 1, group: 2, keySeq: 2200, querySeq: 2200, headDim: 8, valueDim: 4, causal: true, padding: 1, seed: 9 });
    const alone = denseAttention(input, { threads: 1 });
    const shared = denseAttention(input, { threads: 2 });
    expect(shared.backend.device).toBe('cpu, 2 threads');
    expect(Array.from(shared.output.data)).toEqual(Array.from(alone.output.data));
    expect(Array.from(shared.lse)).toEqual(Array.from(alone.lse));
  });

  it('gives the same result when called again after other kernel users reset the shared memory', () => {
    const a = makeInput({ batch: 1, kvHeads: 1, group: 2, keySeq: 90, querySeq: 90, headDim: 16, valueDim: 16, causal: true, padding: 0, seed: 6 });
    const b = makeInput({ batch: 1, kvHeads: 2, group: 1, keySeq: 40, querySeq: 3, headDim: 24, valueDim: 8, causal: false, padding: 2, seed: 7 });
    const first = denseAttention(a).output;
    denseAttention(b);
    expect(Array.from(denseAttention(a).output.data)).toEqual(Array.from(first.data));
  });

  it('records no fallback when wasm-simd runs', () => {
    const input = makeInput({ batch: 1, kvHeads: 1, group: 1, keySeq: 20, querySeq: 20, headDim: 8, valueDim: 8, causal: true, padding: 0, seed: 8 });
    const result = denseAttention(input);
    expect(result.backend).toEqual({ backend: 'cpu', kernel: 'wasm-simd', device: 'cpu, 1 thread' });
    expect(result.stats.pairs).toBe(210);
  });
});
