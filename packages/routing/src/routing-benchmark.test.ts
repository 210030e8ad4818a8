import { describe, expect, it } from 'vitest';
import { benchmarks, methods } from './index.js';
import { fitExponent, routingBenchmark } from './routing-benchmark.js';

describe('routing benchmark', () => {
  it('fitExponent recovers the exponent of a power law', () => {
    expect(fitExponent([1024, 4096, 16384], [1024 ** 1.5, 4096 ** 1.5, 16384 ** 1.5].map((x) => 3 * x))).toBeCloseTo(1.5, 10);
    expect(fitExponent([1000, 2000], [5, 20])).toBeCloseTo(2, 10);
  });

  it('quick run: one row per method and length with the backend that ran, finite figures, and exponent fits', async () => {
    const rows = await routingBenchmark.run({ quick: true, seqLengths: [], repeats: 1, seed: 1, backend: 'cpu' });
    const methodsSeen = new Set(rows.map((r) => r.method));
    for (const id of ['dense', 'routing', 'routing-causal', 'biformer']) expect(methodsSeen).toContain(id);
    for (const row of rows) {
      expect(row.backend).toMatch(/^cpu:/);
      for (const [name, value] of Object.entries(row.metrics)) expect(Number.isFinite(value), `${row.method} ${row.budget} ${name}`).toBe(true);
    }
    const routed = rows.filter((r) => r.method === 'routing' && r.metrics['density'] !== undefined);
    expect(routed.length).toBeGreaterThanOrEqual(6);
    for (const row of routed) expect(row.metrics['density']!).toBeLessThan(1);
    expect(rows.filter((r) => r.budget?.includes('exponent fit')).length).toBeGreaterThanOrEqual(3);
  });

  it('the package exports its methods and suites for apps/bench', () => {
    expect(methods.map((m) => m.id)).toEqual(['routing', 'routing-causal', 'biformer']);
    expect(benchmarks).toEqual([routingBenchmark]);
    for (const m of methods) expect(m.create().methodId).toBe(m.id);
  });
});
