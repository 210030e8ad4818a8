import { createWorkload, referenceAttention, relativeL2Error, rowKeys } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { methods } from './index.js';

// The bench sweeps every method's budget points from its quick lengths (64, 200) up.
const lengths = [1, 16, 63, 64, 65, 100, 128, 200, 1024, 4096];
const compressOnce = methods.filter((m) => m.id !== 'h2o' && m.id !== 'streaming-llm');

describe('budget points', () => {
  it.each(methods.map((m) => [m.id, m] as const))('%s: valid configs at every length, sparsest first, ending with a full point', (_id, method) => {
    for (const n of lengths) {
      const points = method.budgets!(n);
      expect(points.at(-1)!.label, `N=${n}`).toContain('full');
      for (const point of points) expect(() => method.create(point.config), `${point.label} at N=${n}`).not.toThrow();
    }
  });

  it.each(compressOnce.map((m) => [m.id, m] as const))('%s: every sparse point keeps more than the protected window (not the window alone)', (_id, method) => {
    for (const n of lengths) {
      for (const point of method.budgets!(n).slice(0, -1)) {
        const config = method.create(point.config).config as { capacity: number; window: number };
        expect(config.capacity, `${point.label} at N=${n}`).toBeGreaterThan(config.window);
        expect(config.capacity, `${point.label} at N=${n}`).toBeLessThan(n);
      }
    }
  });

  it.each(methods.map((m) => [m.id, m] as const))('%s: the full point equals dense attention at the quick lengths', (_id, method) => {
    for (const n of [64, 200]) {
      const { input } = createWorkload('structured', { queryHeads: 4, kvHeads: 2, seqLength: n, headDim: 16, seed: 7 });
      const result = method.create(method.budgets!(n).at(-1)!.config).prefill(input);
      expect(relativeL2Error(result.output, referenceAttention(input).output), `N=${n}`).toBeLessThanOrEqual(1e-5);
    }
  });

  it('specpc and pyramidkv select different entries at every shared sparse point (they only coincide when both keep their 64-token window alone)', () => {
    const specpc = methods.find((m) => m.id === 'specpc')!;
    const pyramid = methods.find((m) => m.id === 'pyramidkv')!;
    const n = 1024;
    const { input } = createWorkload('structured', { queryHeads: 4, kvHeads: 2, seqLength: n, headDim: 16, seed: 11 });
    const pyramidLabels = new Set(pyramid.budgets!(n).map((p) => p.label));
    const shared = specpc.budgets!(n).slice(0, -1).filter((p) => pyramidLabels.has(p.label));
    expect(shared.length).toBeGreaterThan(0);
    for (const point of shared) {
      const a = specpc.create(point.config).prefill(input).selection!;
      const b = pyramid.create(pyramid.budgets!(n).find((p) => p.label === point.label)!.config).prefill(input).selection!;
      expect(Array.from(rowKeys(a, 0)), point.label).not.toEqual(Array.from(rowKeys(b, 0)));
    }
  });
});
