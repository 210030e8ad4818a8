import { describe, expect, it } from 'vitest';
import { attentionMassRecall, createWorkload, relativeL2Error, sliceSeq, sparseAttention } from '@sparse-attn/core';
import { describeConformance } from '@sparse-attn/core/testing';
import { retrievalAttentionMethod } from './retrieval-attention.js';
import { IvfIndex, IvfScratch } from './ivf-index.js';
import type { CachedDecoder } from './cached-decoder.js';

const sparse = { topK: 6, cells: 4, probeCells: 1, sinkTokens: 2, recentTokens: 4, minIndexedTokens: 8, kmeansIterations: 3 };

for (const probe of ['centroid', 'bound'] as const) {
  describeConformance({
    name: `retrieval-attention (${probe})`,
    create: (config) => retrievalAttentionMethod.create({ probe, ...config }),
    fullBudget: (seq) => ({ ...sparse, topK: seq, probeCells: seq }),
    sparse: () => sparse,
    needle: { seq: 512, config: () => ({ topK: 16, cells: 22, probeCells: 2, sinkTokens: 4, recentTokens: 8, minIndexedTokens: 64 }) },
    invalidConfigs: [{ topK: 0 }, { probeCells: 0 }, { probe: 'graph' }, { cells: -1 }],
  });
}

describe('retrieval-attention specifics', () => {
  it('scans a small share of the keys; recall and mass recall grow with the cells probed', () => {
    const { input } = createWorkload('structured', { queryHeads: 2, kvHeads: 1, seqLength: 2048, headDim: 32, seed: 12 });
    const narrow = retrievalAttentionMethod.create({ topK: 32, probeCells: 2 }).prefill(input);
    const wide = retrievalAttentionMethod.create({ topK: 32, probeCells: 12 }).prefill(input);
    const d = narrow.diagnostics!;
    expect(d['indexCells']).toBe(Math.round(Math.sqrt(2048 - 4)));
    expect(d['scannedShare']).toBeLessThan(0.1);
    expect(d['indexBytes']).toBeGreaterThan(0);
    expect(wide.diagnostics!['scannedShare']).toBeGreaterThan(d['scannedShare']!);
    expect(wide.diagnostics!['annRecall']).toBeGreaterThan(d['annRecall']!);
    const sample = { maxQueries: 8 };
    expect(attentionMassRecall(input, wide.selection!, sample)).toBeGreaterThanOrEqual(attentionMassRecall(input, narrow.selection!, sample) - 1e-9);
  });

  it('probing every cell returns the exact top-k (recall 1)', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 400, headDim: 16, seed: 13 });
    const result = retrievalAttentionMethod.create({ topK: 16, cells: 10, probeCells: 10, minIndexedTokens: 16 }).prefill(input);
    expect(result.diagnostics!['annRecall']).toBe(1);
    expect(result.diagnostics!['scannedShare']).toBeCloseTo(1, 9);
  });

  it('every key lands in exactly one cell and the cell bound covers its members', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 1, kvHeads: 1, seqLength: 300, headDim: 8, seed: 14 });
    const positions = Array.from({ length: 300 }, (_, i) => i);
    const index = IvfIndex.build(input.k.data, 0, 8, positions, 12, 4, 3);
    expect(index.length).toBe(300);
    const out: number[] = [];
    const q = input.q.data.subarray(0, 8);
    let norm = 0;
    for (const x of q) norm += x * x;
    // Probing all cells with the bound scans every key once.
    const found = index.search(q, [0], [Math.sqrt(norm)], input.k.data, 0, 0, 300, 12, 300, 'bound', new IvfScratch(), out);
    expect(found.scanned).toBe(300);
    expect(out).toEqual(positions);
  });

  it('decoder: index built once context exceeds the threshold; later keys inserted; recall reported on request', () => {
    const { input } = createWorkload('structured', { queryHeads: 2, kvHeads: 1, seqLength: 600, headDim: 16, seed: 15 });
    const method = retrievalAttentionMethod.create({ topK: 32, probeCells: 4, minIndexedTokens: 128, reportRecall: true });
    const decoder = method.createDecoder({ batch: 1, queryHeads: 2, kvHeads: 1, headDim: 16 }) as CachedDecoder;
    decoder.appendContext(sliceSeq(input.k, 0, 590), sliceSeq(input.v, 0, 590));
    let last;
    for (let t = 590; t < 600; t++) last = decoder.step({ q: sliceSeq(input.q, t, t + 1), k: sliceSeq(input.k, t, t + 1), v: sliceSeq(input.v, t, t + 1) });
    expect(decoder.length).toBe(600);
    expect(last!.diagnostics!['indexCells']).toBeGreaterThan(1);
    expect(last!.diagnostics!['annRecall']).toBeGreaterThan(0.3);
    expect(last!.diagnostics!['scannedShare']).toBeLessThan(0.5);
    // The step's output is exact attention over what it selected, read from the cache.
    const exact = sparseAttention({ q: sliceSeq(input.q, 599, 600), k: input.k, v: input.v }, last!.selection!);
    expect(relativeL2Error(last!.output, exact.output)).toBeLessThan(1e-6);
    expect(last!.stats.density).toBeLessThan(0.2);
  });
});
