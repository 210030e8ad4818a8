import { describe, expect, it } from 'vitest';
import { benchmarks, methods } from './index.js';

describe('package exports', () => {
  it('lists every method with a schema that fills defaults, and the NSA suite', () => {
    expect(methods.map((m) => m.id)).toEqual(['nsa', 'moba', 'hierarchical-indexer']);
    for (const m of methods) {
      expect(m.family).toBe('nsa');
      expect(m.create().config).toBeDefined();
      expect(m.budgets!(4096).length).toBeGreaterThan(1);
    }
    expect(benchmarks.map((b) => b.id)).toEqual(['nsa']);
  });

  it('the NSA suite runs in quick mode and reports every figure the issue asks for', async () => {
    const rows = await benchmarks[0]!.run({ quick: true, seqLengths: [], repeats: 1, seed: 1, backend: 'cpu' });
    const prefill = rows.filter((r) => r.method === 'nsa' && r.workload.endsWith('prefill'));
    const decode = rows.filter((r) => r.method === 'nsa' && r.workload.endsWith('decode'));
    const needle = rows.filter((r) => r.workload.startsWith('needle'));
    expect(prefill.map((r) => r.budget)).toEqual(['n=3', 'n=4', 'n=4']);
    expect(decode).toHaveLength(3);
    expect(needle.map((r) => r.budget)).toEqual(['n=4', 'n=4 quest']);
    const relatives = rows.filter((r) => r.method !== 'nsa');
    expect(relatives.map((r) => `${r.method} ${r.workload}`)).toEqual([
      'moba structured Hkv=2 prefill',
      'moba structured Hkv=2 decode',
      'hierarchical-indexer structured Hkv=2 prefill',
      'hierarchical-indexer structured Hkv=2 decode',
    ]);
    const indexer = relatives[2]!.metrics;
    expect(indexer['indexerIoU']).toBeGreaterThan(0);
    expect(indexer['indexerIoU']).toBeLessThanOrEqual(1);
    for (const r of relatives) {
      expect(r.metrics['density']).toBeLessThan(1);
      expect(r.metrics['massRecall']).toBeGreaterThan(0);
      expect(Number.isFinite(r.metrics['outputRelError'])).toBe(true);
    }
    for (const r of [...prefill, ...decode]) {
      for (const key of ['speedupVsDense', 'density', 'massRecall', 'outputRelError']) expect(Number.isFinite(r.metrics[key]), `${r.workload} ${key}`).toBe(true);
      expect(r.metrics['density']).toBeGreaterThan(0);
      expect(r.metrics['density']).toBeLessThan(1);
      expect(r.metrics['massRecall']).toBeGreaterThan(0);
      expect(r.metrics['massRecall']).toBeLessThanOrEqual(1 + 1e-9);
    }
    expect(prefill[0]!.metrics['denseExtrapolated']).toBe(1);
    expect(needle[0]!.metrics['needleSelected']).toBeGreaterThanOrEqual(0);
  });
});
