import { ConfigError, Rng } from '@sparse-attn/core';
import { createRandomModel } from '@sparse-attn/model';
import { describe, expect, it } from 'vitest';
import { collectAttentionTrace, planFromOverlap, planLayers, profileTrace, type AttentionTrace } from './hylra-planner.js';
import { validateLayerPlan } from './layer-plan.js';

/** Probabilities `[heads, keySeq]` with `focus` of the mass spread over the tokens of `pages`, the rest uniform. */
function peaked(heads: number, keySeq: number, pageSize: number, pages: readonly number[], focus: number): Float32Array {
  const p = new Float32Array(heads * keySeq);
  const hot = new Set(pages.flatMap((u) => Array.from({ length: pageSize }, (_, i) => u * pageSize + i)));
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < keySeq; t++) p[h * keySeq + t] = (hot.has(t) ? focus / hot.size : 0) + (1 - focus) / keySeq;
  }
  return p;
}

/** 8 layers: layer 0 diffuse, layers 1–3 look at pages {2, 5, 9}, layers 4–7 at pages {1, 7, 12}. */
function syntheticTrace(): AttentionTrace {
  const heads = 2;
  const steps = [256, 257, 258].map((keySeq) => ({
    keySeq,
    probabilities: Array.from({ length: 8 }, (_, l) =>
      l === 0 ? peaked(heads, keySeq, 16, [], 0) : peaked(heads, keySeq, 16, l < 4 ? [2, 5, 9] : [1, 7, 12], 0.95),
    ),
  }));
  return { layers: 8, queryHeads: heads, steps };
}

const small = { pageSize: 16, pageBudget: 4, recentPages: 1 };

describe('HyLRA-style planner', () => {
  it('measures sparsity and overlap on a trace with known structure', () => {
    const profile = profileTrace(syntheticTrace(), small);
    // Layer 0 is uniform: covering 90% of its mass takes ~90% of the pages; the others need ~3 of 17.
    expect(profile.sparsity[0]).toBeGreaterThan(0.85);
    for (let l = 1; l < 8; l++) expect(profile.sparsity[l]).toBeLessThan(0.25);
    expect(profile.overlap[1]![3]).toBeCloseTo(1, 9);
    expect(profile.overlap[4]![7]).toBeCloseTo(1, 9);
    // Across groups only the forced recent page is shared: 1 of 4.
    expect(profile.overlap[1]![5]).toBeCloseTo(0.25, 9);
  });

  it('finds the known best plan: the diffuse layer full, one Δ-layer at the start of each group', () => {
    const plan = planLayers(syntheticTrace(), { ...small, rollbackLayers: 1, maxRecomputes: 2 });
    expect(plan.rollback).toEqual([0]);
    expect(plan.roles).toEqual(['full', 'delta', 'sparse', 'sparse', 'delta', 'sparse', 'sparse', 'sparse']);
    expect(plan.sources).toEqual([-1, -1, 1, 1, -1, 4, 4, 4]);
    expect(plan.minOverlap).toBeCloseTo(1, 9);
    validateLayerPlan(plan, 8);
    // With a single recompute, everything after layer 1 must reuse it: the minimum drops to 1/4.
    const one = planLayers(syntheticTrace(), { ...small, rollbackLayers: 1, maxRecomputes: 1 });
    expect(one.roles).toEqual(['full', 'delta', 'sparse', 'sparse', 'sparse', 'sparse', 'sparse', 'sparse']);
    expect(one.minOverlap).toBeCloseTo(0.25, 9);
  });

  it('the DP equals exhaustive search on random overlap matrices', () => {
    const rng = new Rng(21);
    for (let trial = 0; trial < 150; trial++) {
      const n = 2 + rng.int(5);
      const overlap = Array.from({ length: n }, () => Array.from({ length: n }, () => Math.round(rng.next() * 8) / 8));
      const rollback = Array.from({ length: n }, (_, l) => l).filter(() => rng.next() < 0.25);
      const maxRecomputes = 1 + rng.int(3);
      const best = exhaustive(overlap, rollback, maxRecomputes);
      const plan = planFromOverlap(overlap, rollback, maxRecomputes);
      expect([plan.minOverlap, plan.sumOverlap]).toEqual(best);
      const recomputes = plan.roles.filter((r) => r === 'delta').length;
      expect(recomputes).toBeLessThanOrEqual(maxRecomputes);
      for (const l of rollback) expect(plan.roles[l]).toBe('full');
      validateLayerPlan(plan, n);
    }
  });

  it('collects a dense calibration trace from a model and plans from it', () => {
    const model = createRandomModel({ num_hidden_layers: 4, hidden_size: 32, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16, intermediate_size: 48, vocab_size: 64 }, { seed: 3 });
    const trace = collectAttentionTrace(model, Array.from({ length: 70 }, (_, i) => i % 64), 3);
    expect(trace.steps.map((s) => s.keySeq)).toEqual([71, 72, 73]);
    for (const s of trace.steps) {
      expect(s.probabilities).toHaveLength(4);
      for (let h = 0; h < 2; h++) expect(s.probabilities[0]!.subarray(h * s.keySeq, (h + 1) * s.keySeq).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    }
    const plan = planLayers(trace, { pageSize: 8, pageBudget: 4, recentPages: 1, rollbackLayers: 1, maxRecomputes: 1 });
    validateLayerPlan(plan, 4);
    expect(plan.roles.filter((r) => r === 'full')).toHaveLength(1);
  });

  it('rejects empty traces and bad options', () => {
    expect(() => profileTrace({ layers: 2, queryHeads: 1, steps: [] })).toThrow(ConfigError);
    expect(() => planLayers(syntheticTrace(), { coverage: 0 })).toThrow(ConfigError);
    expect(() => planFromOverlap([[1]], [], 0)).toThrow(ConfigError);
  });
});

/** Every set of recomputing layers (each other free layer reuses the most recent one); best (min, sum). */
function exhaustive(overlap: number[][], rollback: number[], maxRecomputes: number): [number, number] {
  const n = overlap.length;
  const free = Array.from({ length: n }, (_, l) => l).filter((l) => !rollback.includes(l));
  let best: [number, number] | undefined;
  const choose = (b: number, sources: number[], recomputes: number) => {
    if (b === free.length) {
      let min = 1;
      let sum = 0;
      for (const [i, j] of free.entries()) {
        if (sources[i] === j) continue;
        min = Math.min(min, overlap[sources[i]!]![j]!);
        sum += overlap[sources[i]!]![j]!;
      }
      if (!best || min > best[0] || (min === best[0] && sum > best[1] + 1e-12)) best = [min, sum];
      return;
    }
    const j = free[b]!;
    if (recomputes < maxRecomputes) choose(b + 1, [...sources, j], recomputes + 1);
    if (b > 0) choose(b + 1, [...sources, sources[b - 1]!], recomputes);
  };
  choose(0, [], 0);
  return best ?? [1, 0];
}
