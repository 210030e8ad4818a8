import { describe, expect, it } from 'vitest';
import { attentionMassRecall, createWorkload, dims4, rowOffset, Rng, tensor } from '@sparse-attn/core';
import { decodeTokenByToken, describeConformance } from '@sparse-attn/core/testing';
import { hipMethod } from './hip-attention.js';
import { RangeBoundTree } from './range-bound-tree.js';

const sparse = { topK: 16, chunkSize: 2, queryBlockSize: 4, queryStride: 2, sinkTokens: 2, windowTokens: 8, refreshInterval: 4 };

for (const representative of ['center', 'bound'] as const) {
  describeConformance({
    name: `hip (${representative})`,
    create: (config) => hipMethod.create({ representative, ...config }),
    fullBudget: (seq) => ({ topK: seq }),
    sparse: () => sparse,
    // The middle-key representative finds isolated needles only by chance (HiP relies on attention
    // locality); the bound representative must find them.
    needle: representative === 'bound' ? { seq: 512, config: () => ({ ...sparse, topK: 32, queryBlockSize: 4 }) } : false,
    invalidConfigs: [{ topK: 0 }, { chunkSize: 0 }, { representative: 'first' }, { refreshInterval: 0 }],
  });
}

describe('hip specifics', () => {
  it('the bound tree upper-bounds every key of every node, at every level, as keys are appended', () => {
    const rng = new Rng(3);
    const dim = 4;
    const seq = 45;
    const k = tensor([1, 1, seq, dim], rng.fillNormal(new Float32Array(seq * dim)));
    const kDims = dims4(k, 'k');
    const tree = new RangeBoundTree(1, dim, 3);
    for (let n = 1; n <= seq; n += 7) {
      tree.update(k, kDims, n);
      const q = rng.fillNormal(new Float32Array(dim));
      for (let level = 0; level < 6; level++) {
        const width = 3 * 2 ** level;
        for (let node = 0; node * width < n; node++) {
          let best = -Infinity;
          for (let j = node * width; j < Math.min(n, (node + 1) * width); j++) {
            let s = 0;
            for (let c = 0; c < dim; c++) s += q[c]! * k.data[rowOffset(kDims, 0, 0, j) + c]!;
            best = Math.max(best, s);
          }
          const bound = tree.bound(0, level, node, q, 0);
          expect(bound).toBeGreaterThanOrEqual(best - 1e-5);
        }
      }
    }
  });

  it('the search scores O(k log T) representatives, not T', () => {
    const { input } = createWorkload('structured', { queryHeads: 1, kvHeads: 1, seqLength: 2048, headDim: 16, seed: 2 });
    const method = hipMethod.create({ topK: 32, chunkSize: 2, queryBlockSize: 16, queryStride: 16, sinkTokens: 0, windowTokens: 0 });
    const result = method.prefill(input);
    // Per block: 16 kept chunks, ≤ 32 candidates per level, ≤ 10 levels — far under the ≤ 1024 chunks it could score.
    const blocks = 2048 / 16;
    expect(result.diagnostics?.['representativesScored']).toBeLessThanOrEqual(blocks * 32 * 10);
    // 32 searched keys + the block's own 16 positions (causal within the block).
    expect(result.diagnostics?.['meanSelectedKeys']).toBeLessThanOrEqual(48);
    expect(result.stats.density).toBeLessThan(0.05);
  });

  it('reaches high mass recall on the structured (locally smooth) workload at 1/8 density', () => {
    const { input } = createWorkload('structured', { queryHeads: 2, kvHeads: 1, seqLength: 1024, headDim: 32, seed: 8 });
    const result = hipMethod.create({ topK: 64, chunkSize: 4, queryBlockSize: 16, windowTokens: 32 }).prefill(input);
    expect(result.stats.density).toBeLessThan(0.25);
    expect(attentionMassRecall(input, result.selection!, { maxQueries: 16 })).toBeGreaterThan(0.8);
  });

  it('decode reuses the mask between refreshes and searches again on schedule', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 80, headDim: 8, seed: 6 });
    const method = hipMethod.create({ ...sparse, queryBlockSize: 1, refreshInterval: 3 });
    const decoder = method.createDecoder({ batch: 1, queryHeads: 2, kvHeads: 1, headDim: 8 });
    const refreshed: number[] = [];
    for (let t = 0; t < 12; t++) {
      const slice = (x: typeof input.q) => tensor([1, x.shape[1]!, 1, 8], x.data.filter((_, i) => Math.floor(i / 8) % 80 === t));
      refreshed.push(decoder.step({ q: slice(input.q), k: slice(input.k), v: slice(input.v) }).diagnostics!['maskRefreshed']!);
    }
    expect(refreshed).toEqual([1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]);
    expect(decodeTokenByToken(method, input).shape).toEqual([1, 2, 80, 8]);
  });
});
