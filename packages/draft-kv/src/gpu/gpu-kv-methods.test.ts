import { describe, expect, it } from 'vitest';
import { createWorkload, densePairCount, sliceSeq, validateAttentionInput } from '@sparse-attn/core';
import { countPairs } from '@sparse-attn/backend-gpu';
import { keptLists, keptPairs, planGeometry } from './gpu-compression.js';
import { planners } from './gpu-kv-methods.js';
import { gpuStreamingLlmMethod, sinkRecentPairs } from './gpu-streaming-llm.js';
import { gpuMethods as allGpuMethods } from '../gpu.js';

const gpuMethods = allGpuMethods.filter((m) => m !== gpuStreamingLlmMethod);
import { observerPartialsWgsl } from './observer-partials-wgsl.js';
import { observerScoresWgsl } from './observer-scores-wgsl.js';
import { selectKeptEntriesWgsl } from './select-kept-entries-wgsl.js';

const configs: Record<string, Record<string, unknown>[]> = {
  snapkv: [{ capacity: 48, window: 8 }, { keepRatio: 0.3, window: 16 }, {}],
  pyramidkv: [{ capacity: 100, window: 8, layers: 4, layer: 0, beta: 2 }, { capacity: 100, window: 8, layers: 4, layer: 3, beta: 2 }, {}],
  speckv: [{ capacity: 40, window: 8, lookahead: 4 }, { capacity: 40, window: 8 }],
  tova: [{ capacity: 50 }, { capacity: 9, window: 3 }],
  'key-norm': [{ capacity: 50 }, { capacity: 60, window: 4 }],
  'random-kv': [{ capacity: 40, seed: 7 }, { keepRatio: 0.5 }],
};

describe('the GPU planners restate the CPU planners', () => {
  it('every GPU method mirrors a CPU definition with the same id, family and schema', () => {
    for (const m of gpuMethods) {
      expect(m.id).toBe(m.cpu.id);
      expect(m.family).toBe('draft-kv');
      expect(Object.keys(configs)).toContain(m.id);
    }
  });

  it('kept entries per head equal the CPU prefill at lengths around the budgets (window, capacity, pyramid, lookahead)', () => {
    for (const m of gpuMethods) {
      for (const config of configs[m.id]!) {
        for (const seq of [1, 7, 40, 41, 97, 300]) {
          const input = createWorkload('gaussian', { batch: 1, queryHeads: 2, kvHeads: 1, seqLength: seq, headDim: 8, seed: seq }).input;
          const cpu = m.cpu.create(config).prefill(input);
          const plan = planners[m.id]!(config)(seq, seq);
          expect(planGeometry(plan, seq).keep, `${m.id} ${JSON.stringify(config)} S${seq}`).toBe((cpu.diagnostics as { keptPerHead: number }).keptPerHead);
          expect(plan.observerFirst + plan.observerCount).toBe(seq);
        }
      }
    }
  });
});

describe('host-side helpers', () => {
  it("StreamingLLM's closed-form pair count equals the CPU tracker's selection (queries before, at and past the budget)", () => {
    for (const [sinks, recent] of [[4, 20], [0, 5], [2, 100], [3, 1]] as const) {
      for (const [seq, querySeq] of [[1, 1], [30, 30], [150, 150], [150, 17]] as const) {
        const w = createWorkload('gaussian', { batch: 1, queryHeads: 2, kvHeads: 1, seqLength: seq, headDim: 8, seed: 1 }).input;
        const input = { ...w, q: sliceSeq(w.q, seq - querySeq, seq) };
        const selection = gpuStreamingLlmMethod.cpu.create({ sinks, recent }).prefill(input).selection!;
        const d = validateAttentionInput(input);
        expect(sinkRecentPairs({ sinks, recent }, d), `sinks ${sinks} recent ${recent} S${seq} Sq${querySeq}`).toBe(countPairs(selection, d));
      }
    }
  });

  it('keptPairs equals the backend countPairs on a CPU selection (prefill and a query tail)', () => {
    for (const querySeq of [undefined, 5]) {
      const w = createWorkload('gaussian', { batch: 2, queryHeads: 4, kvHeads: 2, seqLength: 77, headDim: 8, seed: 3 }).input;
      const input = querySeq ? { ...w, q: sliceSeq(w.q, 77 - querySeq, 77) } : w;
      const selection = gpuMethods[0]!.cpu.create({ capacity: 20, window: 4 }).prefill(input).selection!;
      const d = validateAttentionInput(input);
      expect(keptPairs(selection, d)).toBe(countPairs(selection, d));
      expect(keptPairs(selection, d)).toBeLessThan(densePairCount(d));
      expect(keptLists(selection).map((l) => l.length)).toEqual([20, 20, 20, 20]);
    }
  });

  it('WGSL generators name their entry point and bake in the head dim', () => {
    for (const code of [observerPartialsWgsl({ headDim: 24 }), observerScoresWgsl({ headDim: 24 }), selectKeptEntriesWgsl()]) {
      expect(code).toContain('fn main(');
      expect(code).not.toMatch(/\bvar pass\b/);
    }
    expect(observerPartialsWgsl({ headDim: 24 })).toContain('const D: u32 = 24u;');
  });
});
