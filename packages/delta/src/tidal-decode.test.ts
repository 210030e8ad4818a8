import { ConfigError, createWorkload, rowKeys, validateSelection } from '@sparse-attn/core';
import { describeConformance } from '@sparse-attn/core/testing';
import { describe, expect, it } from 'vitest';
import { roleCounts } from './layer-plan.js';
import { tidalDecodeMethod, tidalLayerPlan } from './tidal-decode.js';

describeConformance({
  name: 'tidal-decode (self-select)',
  create: (config) => tidalDecodeMethod.create(config),
  fullBudget: (seq) => ({ tokenBudget: Math.max(1, seq), prefill: 'self-select' }),
  sparse: () => ({ tokenBudget: 12, prefill: 'self-select' }),
  needle: { seq: 512, config: () => ({ tokenBudget: 16, prefill: 'self-select' }) },
  invalidConfigs: [{ tokenBudget: 0 }, { tokenBudget: 2.5 }, { correctionLayer: 0 }, { unknown: true }],
});

describeConformance({
  name: 'tidal-decode (dense prefill)',
  create: (config) => tidalDecodeMethod.create(config),
  fullBudget: (seq) => ({ tokenBudget: Math.max(1, seq) }),
  sparse: () => ({ tokenBudget: 12 }),
});

describe('tidal-decode selection', () => {
  it('selects per query head, within the budget, the top logits of each head', () => {
    const { input } = createWorkload('structured', { queryHeads: 4, kvHeads: 2, seqLength: 120, headDim: 16, seed: 8 });
    const result = tidalDecodeMethod.create({ tokenBudget: 10, prefill: 'self-select' }).prefill(input);
    const s = result.selection!;
    validateSelection(s);
    expect(s.headScope).toBe('query');
    expect(s.heads).toBe(4);
    let differ = 0;
    for (let h = 0; h < 4; h++) {
      for (let i = 0; i < 120; i++) {
        const keys = rowKeys(s, h * 120 + i);
        expect(keys.length).toBe(Math.min(10, i + 1));
        // Brute force: the 10 best raw logits of head h for query i.
        const q = input.q.data.subarray((h * 120 + i) * 16, (h * 120 + i + 1) * 16);
        const kv = Math.floor(h / 2);
        const logits = Array.from({ length: i + 1 }, (_, j) => {
          let dot = 0;
          for (let c = 0; c < 16; c++) dot += q[c]! * input.k.data[(kv * 120 + j) * 16 + c]!;
          return { j, dot };
        });
        const best = logits.sort((a, b) => b.dot - a.dot || a.j - b.j).slice(0, 10).map((x) => x.j).sort((a, b) => a - b);
        // Float32 GEMM vs float64 dot products may swap near-ties at the boundary: compare as sets with one slack.
        const overlap = best.filter((j) => keys.includes(j)).length;
        expect(overlap).toBeGreaterThanOrEqual(best.length - 1);
        if (h % 2 === 1 && i >= 10 && keys.join() !== rowKeys(s, (h - 1) * 120 + i).join()) differ++;
      }
    }
    expect(differ, 'heads of one GQA group choose different tokens').toBeGreaterThan(0);
  });

  it('plans two selection layers: the selection layer and a correction layer', () => {
    expect(tidalLayerPlan(32).roles.map((r, l) => (r === 'delta' ? l : -1)).filter((l) => l >= 0)).toEqual([2, 13]);
    const plan = tidalLayerPlan(8);
    expect(plan.roles).toEqual(['full', 'full', 'delta', 'delta', 'sparse', 'sparse', 'sparse', 'sparse']);
    expect(roleCounts(tidalLayerPlan(3)).delta).toBe(1);
    expect(tidalLayerPlan(10, 2, 6).sources).toEqual([-1, -1, -1, 2, 2, 2, -1, 6, 6, 6]);
    expect(() => tidalLayerPlan(10, 2, 2)).toThrow(ConfigError);
    expect(() => tidalLayerPlan(10, 2, 10)).toThrow(ConfigError);
  });
});
