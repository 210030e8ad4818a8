import { describe, expect, it } from 'vitest';
import { createWorkload, referenceAttention, relativeL2Error, rowOffset, dims4 } from '@sparse-attn/core';
import { describeConformance } from '@sparse-attn/core/testing';
import { BlockRepresentatives } from './block-representatives.js';
import { landmarkRetrievalMethod } from './landmark-retrieval.js';

for (const representative of ['mean', 'quest'] as const) {
  describeConformance({
    name: `landmark-retrieval (${representative})`,
    create: (config) => landmarkRetrievalMethod.create({ representative, ...config }),
    fullBudget: (seq) => ({ blockSize: 8, topK: Math.ceil(seq / 8) }),
    sparse: () => ({ blockSize: 8, topK: 2 }),
    needle: { seq: 512, config: () => ({ blockSize: 16, topK: 2 }) },
    invalidConfigs: [{ blockSize: 0 }, { topK: -1 }, { representative: 'median' }, { budget: 3 }],
  });
}

describe('landmark-retrieval specifics', () => {
  it('max-score group reduction is also exact at full budget and sparse below it', () => {
    const input = createWorkload('structured', { queryHeads: 4, kvHeads: 1, seqLength: 129, headDim: 16, seed: 3 }).input;
    const full = landmarkRetrievalMethod.create({ blockSize: 8, topK: 17, groupReduce: 'max-score' }).prefill(input);
    expect(relativeL2Error(full.output, referenceAttention(input).output)).toBeLessThan(1e-5);
    const sparse = landmarkRetrievalMethod.create({ blockSize: 8, topK: 2, groupReduce: 'max-score' }).prefill(input);
    expect(sparse.stats.density).toBeLessThan(0.5);
  });

  it('the Quest score upper-bounds the best key score of every block', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 2, kvHeads: 2, seqLength: 100, headDim: 8, seed: 11 });
    const kDims = dims4(input.k, 'k');
    const qDims = dims4(input.q, 'q');
    const reps = new BlockRepresentatives('quest', 2, 8, 7);
    reps.update(input.k, kDims, 100);
    const scores = new Float64Array(reps.count);
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 100; i += 9) {
        const qo = rowOffset(qDims, 0, h, i);
        reps.score(h, input.q.data, qo, 0, reps.count, scores);
        for (let block = 0; block < reps.count; block++) {
          let best = -Infinity;
          for (let j = block * 7; j < block * 7 + 7; j++) {
            let s = 0;
            const ko = rowOffset(kDims, 0, h, j);
            for (let c = 0; c < 8; c++) s += input.q.data[qo + c]! * input.k.data[ko + c]!;
            best = Math.max(best, s);
          }
          expect(scores[block]!).toBeGreaterThanOrEqual(best - 1e-4);
        }
      }
    }
  });
});

describe('landmark-retrieval budgets', () => {
  it('sweeps k = 1, 2, 4, … below the block count, then a point covering every block', () => {
    const points = landmarkRetrievalMethod.budgets!(1000);
    expect(points.map((p) => p.label)).toEqual(['k=1', 'k=2', 'k=4', 'k=8', 'all']);
    expect(points.at(-1)!.config).toEqual({ topK: 16 });
  });
});
