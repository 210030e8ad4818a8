import { ConfigError, forEachKeyRange } from '@sparse-attn/core';
import { attentionScores } from '@sparse-attn/model';
import { describe, expect, it } from 'vitest';
import { createDeltaPolicy } from './delta.js';
import { appendStackToken, createTraceStack, runStackStep, stackQuery } from './trace-stack.js';

const options = { layers: 6, queryHeads: 4, kvHeads: 2, headDim: 16, context: 600, decodeSteps: 3, shiftLayers: [2, 4], spans: 1, spanLength: 8, seed: 2 };

describe('trace stack', () => {
  it('plants content that layers of one segment share and the next segment replaces', () => {
    const stack = createTraceStack(options);
    expect(stack.segments).toEqual([-1, -1, 0, 0, 1, 1]);
    appendStackToken(stack);
    for (const cache of stack.caches) expect(cache.length).toBe(601);
    // The top key of every head is shared by the two layers of a segment, not across segments.
    const top = (layer: number) => {
      const s = attentionScores(stackQuery(stack, layer, 0), stack.caches[layer]!.keys(), Int32Array.of(0), 0.25);
      return Array.from({ length: 4 }, (_, h) => {
        const row = s.probabilities.subarray(h * 601, (h + 1) * 601);
        let best = 0;
        for (let t = 1; t < 601; t++) if (row[t]! > row[best]!) best = t;
        return { best, mass: row[best]! };
      });
    };
    const [a, b, c] = [top(2), top(3), top(4)];
    for (let h = 0; h < 4; h++) {
      expect(Math.abs(a[h]!.best - b[h]!.best)).toBeLessThan(8);
      expect(a[h]!.mass).toBeGreaterThan(0.05);
    }
    expect(a.filter((x, h) => Math.abs(x.best - c[h]!.best) < 8).length).toBeLessThan(4);
  });

  it('runs a policy step like the model session and refuses steps beyond its room', () => {
    const stack = createTraceStack(options);
    appendStackToken(stack);
    const policy = createDeltaPolicy({ layers: 6, config: { pageSize: 8, pageBudget: 6, recentPages: 1, fullCacheLayers: [0, 1, 2, 4] } });
    const results = runStackStep(stack, policy);
    expect(results.map((r) => r.summary.directive)).toEqual(['dense', 'dense', 'dense', 'selection', 'dense', 'selection']);
    const selection = policy.lastStep!.selections[3]!;
    let keys = 0;
    forEachKeyRange(selection, 0, Infinity, (s, e) => (keys += e - s));
    expect(keys).toBeLessThanOrEqual(48);
    appendStackToken(stack);
    appendStackToken(stack);
    expect(() => appendStackToken(stack)).toThrow(ConfigError);
    expect(() => createTraceStack({ ...options, queryHeads: 3 })).toThrow(ConfigError);
    expect(() => createTraceStack({ ...options, context: 10 })).toThrow(ConfigError);
  });
});
