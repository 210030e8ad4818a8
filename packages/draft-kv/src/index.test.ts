import { describe, expect, it } from 'vitest';
import { benchmarks, methods } from './index.js';

describe('package exports', () => {
  it('lists every attention-level method with a schema that fills defaults and a budget sweep', () => {
    expect(methods.map((m) => m.id)).toEqual(['snapkv', 'speckv', 'specpc', 'pyramidkv', 'h2o', 'streaming-llm', 'tova', 'key-norm', 'random-kv']);
    for (const m of methods) {
      expect(m.family).toBe('draft-kv');
      expect(m.create().config).toBeDefined();
      const points = m.budgets!(4096);
      expect(points.length).toBeGreaterThan(1);
      // The last point covers every key.
      expect(points.at(-1)!.label).toContain('full');
    }
    expect(benchmarks.map((b) => b.id)).toEqual(['draft-kv-fidelity', 'draft-kv-decode', 'draft-kv-model']);
  });

  it('every suite runs in quick mode and reports its figures', async () => {
    const context = { quick: true, seqLengths: [], repeats: 1, seed: 1, backend: 'cpu' as const };
    const fidelity = await benchmarks[0]!.run(context);
    const at = (method: string, workload: string, budget: string) => fidelity.find((r) => r.method === method && r.workload === workload && r.budget === budget)!;
    expect(at('speckv', 'harness ε=0', 'C=128').metrics['futureMassRecall']).toBeGreaterThan(at('snapkv', 'harness', 'C=128').metrics['futureMassRecall']!);
    for (const r of fidelity) {
      expect(r.metrics['futureMassRecall']).toBeGreaterThanOrEqual(0);
      expect(r.metrics['futureMassRecall']).toBeLessThanOrEqual(1 + 1e-6);
    }
    const decode = await benchmarks[1]!.run(context);
    expect(decode).toHaveLength(1);
    expect(decode[0]!.metrics['kvBytesRatio']).toBeCloseTo(128 / 1024, 6);
    expect(Number.isFinite(decode[0]!.metrics['speedupVsDense'])).toBe(true);
    const model = await benchmarks[2]!.run(context);
    expect(model).toHaveLength(2 * 7);
    for (const r of model) {
      expect(r.metrics['top1Agreement']).toBeGreaterThanOrEqual(0);
      expect(r.metrics['meanKlVsDense']).toBeGreaterThanOrEqual(-1e-9);
      expect(r.metrics['kvBytesRatio']).toBeLessThan(1);
    }
  });
});
