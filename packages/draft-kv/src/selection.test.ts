import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ConfigError, createWorkload } from '@sparse-attn/core';
import { compressLayer } from './compress-layer.js';
import { scorerPress, type LayerBudgetMode } from './kv-press.js';
import { kvScorerNames } from './kv-scorers.js';
import { observerScores } from './observer-scores.js';
import { centerPool, poolScores } from './pool-scores.js';
import { generateWithPress } from './press-policy.js';
import { pyramidBudgets, resolveCapacity, selectKeptEntries } from './select-kept-entries.js';
import { selectPromptTokens } from './select-prompt-tokens.js';
import { tinyPair, tinyPrompt } from './tiny-models.js';

const scoresArb = fc.array(fc.float({ min: 0, max: 10, noNaN: true }), { minLength: 1, maxLength: 40 });

describe('pooling equals a brute-force pool, borders included', () => {
  it('symmetric max/avg pooling (odd kernel, padding k // 2; max pads −∞, avg counts the padding)', () => {
    fc.assert(
      fc.property(scoresArb, fc.integer({ min: 0, max: 5 }), fc.constantFrom('max' as const, 'avg' as const), (row, half, kind) => {
        const n = row.length;
        const kernel = 2 * half + 1;
        const pooled = poolScores(Float32Array.from(row), 1, n, kernel, kind);
        for (let i = 0; i < n; i++) {
          const inside = row.slice(Math.max(0, i - half), Math.min(n, i + half + 1)).map(Math.fround);
          const expected = kind === 'max' ? Math.max(...inside) : inside.reduce((a, b) => a + b, 0) / kernel;
          expect(pooled[i]).toBeCloseTo(expected, 4);
        }
      }),
    );
  });
  it("SpecPC's center pool (zero pad ((k−1)//2, k−1−(k−1)//2), any k)", () => {
    fc.assert(
      fc.property(fc.array(fc.float({ min: -5, max: 5, noNaN: true }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 10 }), fc.constantFrom('max' as const, 'avg' as const), (row, kernel, kind) => {
        const n = row.length;
        const left = Math.floor((kernel - 1) / 2);
        const padded = [...Array(left).fill(0), ...row.map(Math.fround), ...Array(kernel - 1 - left).fill(0)];
        const pooled = centerPool(row, n, kernel, kind);
        for (let i = 0; i < n; i++) {
          const w = padded.slice(i, i + kernel);
          const expected = kind === 'max' ? Math.max(...w) : w.reduce((a, b) => a + b, 0) / kernel;
          expect(pooled[i]).toBeCloseTo(expected, 4);
        }
      }),
    );
  });
  it('even symmetric kernels are rejected', () => {
    expect(() => poolScores(new Float32Array(4), 1, 4, 4, 'max')).toThrow(ConfigError);
  });
});

describe('kept entries per head', () => {
  it('exactly min(C, N), the window included, unique, in range, sorted, the rest the top scores', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 70 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (n, window, extra, rows, seed) => {
        const w = Math.min(window, n);
        const capacity = w + extra || 1;
        let s = seed >>> 0;
        const scores = Float32Array.from({ length: rows * (n - w) }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 1000) / 1000);
        const keep = selectKeptEntries(scores, rows, n, w, capacity);
        expect(keep).toHaveLength(rows);
        for (const [r, list] of keep.entries()) {
          expect(list.length).toBe(Math.min(capacity, n));
          for (let i = 0; i < list.length; i++) {
            expect(list[i]! >= 0 && list[i]! < n).toBe(true);
            if (i > 0) expect(list[i]!).toBeGreaterThan(list[i - 1]!);
          }
          const set = new Set(list);
          for (let j = n - w; j < n; j++) expect(set.has(j)).toBe(true);
          const row = scores.subarray(r * (n - w), (r + 1) * (n - w));
          const kept = [...set].filter((j) => j < n - w).map((j) => row[j]!);
          const dropped = Array.from(row.keys()).filter((j) => !set.has(j)).map((j) => row[j]!);
          if (kept.length && dropped.length) expect(Math.min(...kept)).toBeGreaterThanOrEqual(Math.max(...dropped));
        }
      }),
    );
  });
  it('a budget below the window is a ConfigError; ratios resolve to floor(N · r), never below the window', () => {
    expect(() => selectKeptEntries(new Float32Array(10), 1, 14, 4, 2)).toThrow(ConfigError);
    expect(resolveCapacity({ keepRatio: 0.25 }, 100, 8)).toBe(25);
    expect(resolveCapacity({ keepRatio: 0.01 }, 100, 8)).toBe(8);
    expect(resolveCapacity({ capacity: 500 }, 100, 8)).toBe(100);
    expect(() => resolveCapacity({}, 100, 8)).toThrow(ConfigError);
  });
});

describe("SpecPC's token selection", () => {
  it('matches a hand-worked example: tail window first, neighbours by distance, cut to C, then sorted', () => {
    // pooled (k = 3, zero pad): [0,5,5,5,0,0,0,9,9,9,1,1]; importance order 7,8,9,1,2,3,10;
    // window [10, 11], then 7 → 7,6,8; 8 → 9; 9 → nothing new; 1 → 1 (C = 7 reached).
    const scores = [0, 0, 5, 0, 0, 0, 0, 0, 9, 0, 1, 0];
    expect(Array.from(selectPromptTokens(scores, 12, { capacity: 7, window: 2, kernel: 3, pooling: 'max' }))).toEqual([1, 6, 7, 8, 9, 10, 11]);
    // No neighbours: the window, then the top pooled tokens alone.
    expect(Array.from(selectPromptTokens(scores, 12, { capacity: 5, window: 2, kernel: 3, neighbors: 0, pooling: 'max' }))).toEqual([7, 8, 9, 10, 11]);
    // Budget ≥ N keeps everything.
    expect(Array.from(selectPromptTokens(scores, 12, { capacity: 12, window: 2, kernel: 3, pooling: 'max' }))).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(() => selectPromptTokens(scores, 12, { capacity: 5, window: 13, kernel: 3, pooling: 'max' })).toThrow(ConfigError);
  });
});

describe('PyramidKV budgets', () => {
  it('fall linearly with depth and sum to layers · C; fall back to C per layer when the pyramid does not fit', () => {
    expect(pyramidBudgets(64, 20, 2, 3, 2)).toEqual([29, 20, 11]);
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 5000 }), fc.integer({ min: 2, max: 40 }), fc.integer({ min: 1, max: 8 }), (n, layers, window) => {
        const capacity = window + 10 * window + 7;
        const budgets = pyramidBudgets(n, capacity, window, layers, 5);
        expect(budgets.reduce((a, b) => a + b, 0)).toBe(layers * capacity);
        for (let l = 1; l < layers; l++) expect(budgets[l]!).toBeLessThanOrEqual(budgets[l - 1]!);
      }),
    );
    // kvpress defaults (w = 64, β = 20) need C − w ≥ 20 w to build a pyramid.
    expect(pyramidBudgets(4096, 512, 64, 4)).toEqual([512, 512, 512, 512]);
  });
});

describe('observer scores', () => {
  it('max over observers/group of softmax probabilities; mean divides the sum', () => {
    const w = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 9, headDim: 8, seed: 3 }).input;
    const max = observerScores(w.q, w.k, { observers: [7, 8], reduction: 'max', scoredKeys: 6 });
    const sum = observerScores(w.q, w.k, { observers: [7, 8], reduction: 'sum', scoredKeys: 9 });
    const mean = observerScores(w.q, w.k, { observers: [7, 8], reduction: 'mean', scoredKeys: 9 });
    // 2 heads × 2 observers, each a distribution over its visible keys: sums add to 4.
    expect(sum.reduce((a, b) => a + b, 0)).toBeCloseTo(4, 5);
    for (let j = 0; j < 9; j++) expect(mean[j]).toBeCloseTo(sum[j]! / 4, 6);
    for (let j = 0; j < 6; j++) expect(max[j]!).toBeLessThanOrEqual(sum[j]! + 1e-6);
    // Observer 7 cannot see key 8.
    const only7 = observerScores(w.q, w.k, { observers: [7], reduction: 'sum' });
    expect(only7[8]).toBe(0);
  });
});

describe('every scorer through every budget wrapper keeps the expected length', () => {
  const { target } = tinyPair(5);
  const N = 64;
  const prompt = tinyPrompt(N, 3);
  const wrappers: [string, { capacity?: number; keepRatio?: number; layerBudgets?: LayerBudgetMode; beta?: number }, number[]][] = [
    ['capacity 20', { capacity: 20 }, [20, 20, 20]],
    ['keepRatio 0.3', { keepRatio: 0.3 }, [19, 19, 19]],
    ['pyramid C = 20, β = 2', { capacity: 20, layerBudgets: 'pyramid', beta: 2 }, [29, 20, 11]],
  ];
  const input = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: N, headDim: 16, seed: 1 }).input;
  for (const scorer of kvScorerNames) {
    for (const [label, wrapper, expected] of wrappers) {
      it(`${scorer} × ${label}`, () => {
        const press = scorerPress({ scorer, window: 2, ...wrapper });
        // Attention level: the kept lists of one layer's tensors.
        for (let layer = 0; layer < 3; layer++) {
          const { keep } = compressLayer(input.q, input.k, 0.25, press.plan(layer, 3, N, N));
          for (const list of keep) expect(list.length).toBe(expected[layer]);
        }
        // Model level: the caches after the prefill.
        const run = generateWithPress(target, prompt, 1, press);
        expect(run.keptPerLayer).toEqual(expected);
      });
    }
  }
});
