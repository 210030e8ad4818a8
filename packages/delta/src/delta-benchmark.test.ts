import { describe, expect, it } from 'vitest';
import { benchmarks, createModelSuite, createTraceStackSuite } from './delta-benchmark.js';

const quick = { quick: true, seqLengths: [640], repeats: 1, seed: 1, backend: 'cpu' as const };

describe('delta benchmarks (quick smoke run)', () => {
  it('exports both suites', () => {
    expect(benchmarks.map((s) => s.id)).toEqual(['delta-trace-stack', 'delta-model']);
  });

  it('trace stack: DELTA recovers the planted spans and attends fewer keys than dense', async () => {
    const rows = await createTraceStackSuite().run(quick);
    const perLayer = rows.filter((r) => r.workload.endsWith('per-layer'));
    expect(perLayer.map((r) => r.metrics['layer'])).toEqual([3, 5, 7]);
    for (const r of perLayer) expect(r.metrics['massRecallMean']).toBeGreaterThan(0.9);
    const byMethod = new Map(rows.filter((r) => !r.workload.endsWith('per-layer')).map((r) => [r.method, r]));
    expect([...byMethod.keys()]).toEqual(['dense', 'delta', 'tidal-decode', 'hylra-plan']);
    const delta = byMethod.get('delta')!.metrics;
    expect(delta['attendedShare']).toBeLessThan(0.8);
    expect(delta['massRecallMean']).toBeGreaterThan(0.9);
    expect(delta['kvBytesReduction']).toBeGreaterThan(1);
    for (const r of rows) expect(r.backend).toMatch(/^cpu:/);
    for (const r of rows) for (const x of Object.values(r.metrics)) expect(Number.isFinite(x)).toBe(true);
  });

  it("trace stack: runs at the bench's quick lengths (64, 200), fitting the planted structure and the budget to each", async () => {
    const rows = await createTraceStackSuite().run({ ...quick, seqLengths: [64, 200] });
    for (const seqLength of [64, 200]) {
      const summary = rows.filter((r) => r.seqLength === seqLength && !r.workload.endsWith('per-layer'));
      expect(summary.map((r) => r.method)).toEqual(['dense', 'delta', 'tidal-decode', 'hylra-plan']);
      const delta = summary[1]!.metrics;
      // The subset is active at every quality step: the budget is sparser than the context.
      expect(delta['activeSteps']).toBe(3);
      expect(delta['attendedShare']).toBeLessThan(1);
      expect(delta['plantedTokens']).toBeLessThanOrEqual(seqLength / 2);
    }
    for (const r of rows) for (const x of Object.values(r.metrics)) expect(Number.isFinite(x)).toBe(true);
  });

  it('model: decode rows for dense and DELTA, quality rows for DELTA and TidalDecode', async () => {
    const rows = await createModelSuite().run(quick);
    expect(rows.map((r) => `${r.method}:${r.workload.endsWith('quality') ? 'q' : 's'}`)).toEqual(['dense:s', 'delta:s', 'delta:q', 'tidal-decode:q']);
    for (const r of rows) expect(r.backend).toMatch(/^cpu:/);
    expect(rows[1]!.metrics['subsetActive']).toBe(1);
    expect(rows[1]!.metrics['attendedShare']).toBeLessThan(1);
    expect(rows[2]!.metrics['activeSteps']).toBeGreaterThan(0);
  });
});
