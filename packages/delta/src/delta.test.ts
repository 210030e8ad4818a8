import { createWorkload, referenceAttention, relativeL2Error, rowKeys, sparseAttention } from '@sparse-attn/core';
import { decodeTokenByToken, describeConformance } from '@sparse-attn/core/testing';
import { attentionScores } from '@sparse-attn/model';
import { describe, expect, it } from 'vitest';
import { deltaMethod } from './delta.js';
import { pageScores, selectPages } from './select-pages.js';

// Every query row selects its own pages (causal-consistent), at a budget that is sparse at S ≥ 37.
describeConformance({
  name: 'delta (self-select)',
  create: (config) => deltaMethod.create(config),
  fullBudget: (seq) => ({ pageSize: 4, pageBudget: Math.max(1, Math.ceil(seq / 4)), recentPages: 1, prefill: 'self-select' }),
  sparse: () => ({ pageSize: 4, pageBudget: 3, recentPages: 1, prefill: 'self-select' }),
  needle: { seq: 512, config: () => ({ pageSize: 16, pageBudget: 4, recentPages: 1, prefill: 'self-select' }) },
  invalidConfigs: [{ pageSize: 0 }, { pageBudget: 4, recentPages: 5 }, { prefill: 'sparse' }, { unknown: 1 }, { fullCacheLayers: [-1] }],
});

// The reference semantics: prefill dense, decode steps select.
describeConformance({
  name: 'delta (dense prefill)',
  create: (config) => deltaMethod.create(config),
  fullBudget: (seq) => ({ pageSize: 4, pageBudget: Math.max(1, Math.ceil(seq / 4)), recentPages: 1 }),
  sparse: () => ({ pageSize: 4, pageBudget: 3, recentPages: 1 }),
});

describe('delta decode steps', () => {
  it('attend exactly the pages DELTA selects from the step’s own probabilities (brute force)', () => {
    const { input } = createWorkload('structured', { queryHeads: 4, kvHeads: 2, seqLength: 200, headDim: 16, seed: 4 });
    const method = deltaMethod.create({ pageSize: 8, pageBudget: 5, recentPages: 2 });
    const decoder = method.createDecoder({ batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 });
    // Prefill 150 tokens in one chunk (dense), then decode the rest one at a time.
    const chunk = (t: typeof input.q, a: number, b: number) => {
      const [B, H, , D] = t.shape as [number, number, number, number];
      const data = new Float32Array(B * H * (b - a) * D);
      for (let h = 0; h < H; h++) data.set(t.data.subarray((h * 200 + a) * D, (h * 200 + b) * D), h * (b - a) * D);
      return { data, shape: [B, H, b - a, D] };
    };
    const first = decoder.step({ q: chunk(input.q, 0, 150), k: chunk(input.k, 0, 150), v: chunk(input.v, 0, 150) });
    expect(first.stats.density).toBe(1);
    for (let t = 150; t < 200; t++) {
      const step = { q: chunk(input.q, t, t + 1), k: chunk(input.k, t, t + 1), v: chunk(input.v, t, t + 1) };
      const result = decoder.step(step);
      const keys = { q: step.q, k: chunk(input.k, 0, t + 1), v: chunk(input.v, 0, t + 1) };
      const scores = attentionScores(keys.q, keys.k, Int32Array.of(0), 1 / 4);
      const expected = Array.from(selectPages(pageScores(scores.probabilities, 4, t + 1, 8), 5, 2));
      const selection = result.selection!;
      expect(selection.kind).toBe('block');
      for (let h = 0; h < 2; h++) expect(Array.from(selection.indices.subarray(selection.offsets[h]!, selection.offsets[h + 1]!))).toEqual(expected);
      expect(rowKeys(selection, 0).length).toBeLessThanOrEqual(40);
      const exact = sparseAttention(keys, selection);
      expect(relativeL2Error(result.output, exact.output)).toBeLessThanOrEqual(1e-6);
    }
  });

  it('K ≥ T decodes exactly as dense attention', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 4, kvHeads: 1, seqLength: 90, headDim: 16, seed: 5 });
    const decoded = decodeTokenByToken(deltaMethod.create({ pageSize: 16, pageBudget: 6, recentPages: 2 }), input);
    expect(relativeL2Error(decoded, referenceAttention(input).output)).toBeLessThanOrEqual(1e-6);
  });
});
