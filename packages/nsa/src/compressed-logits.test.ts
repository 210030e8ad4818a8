import { describe, expect, it } from 'vitest';
import { createWorkload, dims4, rowOffset, sliceSeq } from '@sparse-attn/core';
import { BlockMeans } from './block-means.js';
import { CompressedLogits } from './compressed-logits.js';

describe('CompressedLogits', () => {
  const w = createWorkload('gaussian', { batch: 1, queryHeads: 4, kvHeads: 2, seqLength: 70, headDim: 8, seed: 5 });
  const qDims = dims4(w.input.q, 'q');
  const kDims = dims4(w.input.k, 'k');
  const store = new BlockMeans({ batch: 1, heads: 2, headDim: 8, bounds: true, length: 8, stride: 4 });
  store.extend(w.input.k);
  const dot = (qo: number, ko: number) => Array.from({ length: 8 }, (_, c) => w.input.q.data[qo + c]! * w.input.k.data[ko + c]!).reduce((a, b) => a + b, 0);

  it("'mean' logits are q · mean key; 'quest' logits are Σ max(q·min, q·max) ≥ the window's best key", () => {
    const logits = new CompressedLogits();
    for (const head of [0, 1]) {
      logits.compute(w.input.q.data, qDims, store, 0, head, 2, 10, 30, store.count, 'mean');
      const mean = logits.logits.slice();
      logits.compute(w.input.q.data, qDims, store, 0, head, 2, 10, 30, store.count, 'quest');
      for (let i = 10; i < 30; i++) {
        for (let g = 0; g < 2; g++) {
          const qo = rowOffset(qDims, 0, head * 2 + g, i);
          const row = ((i - 10) * 2 + g) * store.count;
          for (let window = 0; window < store.count; window++) {
            let expectedMean = 0;
            let best = -Infinity;
            let bound = 0;
            for (let c = 0; c < 8; c++) {
              const keys = Array.from({ length: 8 }, (_, j) => w.input.k.data[rowOffset(kDims, 0, head, window * 4 + j) + c]!);
              const x = w.input.q.data[qo + c]!;
              expectedMean += (x * keys.reduce((a, b) => a + b, 0)) / 8;
              bound += Math.max(x * Math.min(...keys), x * Math.max(...keys));
            }
            for (let j = 0; j < 8; j++) best = Math.max(best, dot(qo, rowOffset(kDims, 0, head, window * 4 + j)));
            expect(mean[row + window]).toBeCloseTo(expectedMean, 4);
            expect(logits.logits[row + window]).toBeCloseTo(bound, 4);
            expect(logits.logits[row + window]!).toBeGreaterThanOrEqual(best - 1e-4);
          }
        }
      }
    }
  });

  it('a chunk of one query reproduces the logits of a larger chunk bit for bit (decode == prefill)', () => {
    for (const score of ['mean', 'quest'] as const) {
      const big = new CompressedLogits();
      big.compute(w.input.q.data, qDims, store, 0, 1, 2, 0, 64, 3, score);
      const one = new CompressedLogits();
      for (const i of [0, 17, 63]) {
        const q = sliceSeq(w.input.q, i, i + 1);
        one.compute(q.data, dims4(q, 'q'), store, 0, 1, 2, 0, 1, 3, score);
        expect(Array.from(one.logits.subarray(0, 6))).toEqual(Array.from(big.logits.subarray(i * 6, i * 6 + 6)));
      }
    }
  });
});
