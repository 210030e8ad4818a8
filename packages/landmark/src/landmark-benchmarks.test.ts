import { describe, expect, it } from 'vitest';
import { benchmarks, createLandmarkBenchmarkSuite } from './landmark-benchmarks.js';
import { methods } from './index.js';

describe('landmark benchmark suite', () => {
  it('quick run yields decode, prefill and needle rows with honest figures', async () => {
    const rows = await benchmarks[0]!.run({ quick: true, seqLengths: [512], repeats: 1, seed: 1, backend: 'cpu' });
    const dense = rows.find((r) => r.method === 'dense')!;
    expect(dense.metrics['decodeMs']).toBeGreaterThan(0);
    for (const id of methods.map((m) => m.id)) {
      const decodeRows = rows.filter((r) => r.method === id && r.workload === 'structured');
      expect(decodeRows.length, id).toBeGreaterThan(1);
      for (const row of decodeRows) {
        expect(row.metrics['decodeSpeedup']).toBeGreaterThan(0);
        expect(row.backend).not.toBe('none');
      }
    }
    // The dense-equivalent point of the training-free method reads every key: recall 1, error ~0.
    const all = rows.find((r) => r.method === 'landmark-retrieval' && r.budget === 'all')!;
    expect(all.metrics['massRecall']).toBeCloseTo(1, 6);
    expect(all.metrics['outputRelError']).toBeLessThan(1e-5);
    expect(rows.some((r) => r.workload.startsWith('needle@') && r.metrics['needleSelected'] === 1)).toBe(true);
    const ann = rows.find((r) => r.method === 'retrieval-attention' && r.workload === 'structured')!.metrics;
    expect(ann['indexBytes']).toBeGreaterThan(0);
    expect(ann['prefillAnnRecall']).toBeGreaterThan(0);
    expect(ann['prefillAnnRecall']).toBeLessThanOrEqual(1);
    expect(ann['prefillScannedShare']).toBeLessThanOrEqual(1);
  });

  it('the paper landmark method at S = 64 (only the `all` point) reports mass recall, and its needle rows show the missing training', async () => {
    const suite = createLandmarkBenchmarkSuite({ methods: ['landmark'] });
    const rows = await suite.run({ quick: true, seqLengths: [64], repeats: 1, seed: 1, backend: 'cpu' });
    const all = rows.find((r) => r.method === 'landmark' && r.workload === 'structured' && r.budget === 'all')!;
    expect(all, 'no landmark row at 64').toBeDefined();
    expect(Number.isFinite(all.metrics['massRecall'])).toBe(true);
    expect(all.metrics['massRecall']).toBeGreaterThan(0.5);
    expect(all.metrics['trainedLandmarks']).toBe(0);
    const untrained = rows.find((r) => r.method === 'landmark' && r.budget === 'untrained-landmarks')!;
    const pointed = rows.find((r) => r.method === 'landmark' && r.budget === 'landmark-points-at-needle')!;
    expect(untrained.metrics['trainedLandmarks']).toBe(0);
    expect(pointed.metrics['trainedLandmarks']).toBe(1);
    expect(pointed.metrics['needleSelected']).toBe(1);
    expect(pointed.metrics['needleDominated']).toBeGreaterThan(untrained.metrics['needleDominated']!);
  });
});
