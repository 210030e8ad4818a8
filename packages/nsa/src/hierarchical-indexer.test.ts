import { describe, expect, it } from 'vitest';
import { createWorkload, rowKeys, tensor } from '@sparse-attn/core';
import { describeConformance } from '@sparse-attn/core/testing';
import { hierarchicalIndexerMethod } from './hierarchical-indexer.js';

const sparse = { blockSize: 8, candidateBlocks: 4, topK: 16 };

describeConformance({
  name: 'hierarchical-indexer',
  create: (config) => hierarchicalIndexerMethod.create(config as never),
  fullBudget: (seq) => ({ blockSize: 8, candidateBlocks: Math.ceil(seq / 8), topK: seq }),
  sparse: () => sparse,
  invalidConfigs: [{ topK: 0 }, { blockSize: 8, candidateBlocks: 1, topK: 16 }, { iouQueries: -1 }, { extra: true }],
});

describe('hierarchical token indexer', () => {
  it('hand-worked: stage 1 keeps the matching block, stage 2 keeps its best tokens', () => {
    // D = 2, block 2, T = 10, one head. Block 2 (tokens 4, 5) matches the query; token 5 best.
    const k = [0, 1, 0, 1, 0, -1, 0, -1, 2, 0, 3, 0, 0, -1, 0, -1, 0, -1, 0, -1];
    const q = new Array<number>(20).fill(0);
    q[18] = 1; // t = 9 along x
    const input = { q: tensor([1, 1, 10, 2], q), k: tensor([1, 1, 10, 2], k), v: tensor([1, 1, 10, 2]) };
    const result = hierarchicalIndexerMethod.create({ blockSize: 2, candidateBlocks: 3, topK: 3, iouQueries: 0 }).prefill(input);
    // Kept blocks: 0 (forced), 4 (current, forced), 2 (best mean key). Tokens scored: 0, 1, 4, 5, 8, 9.
    // Scores: 0, 0, 2, 3, 0, 0 → top-3 = {5, 4} + the most recent tie (9).
    expect(rowKeys(result.selection!, 9)).toEqual([4, 5, 9]);
    expect(result.diagnostics!['scannedShare']).toBeLessThan(1);
  });

  it('short prefixes attend to every key; the token set overlaps the flat top-K (IoU) on structured input', () => {
    const w = createWorkload('structured', { queryHeads: 4, kvHeads: 2, seqLength: 1024, headDim: 32, seed: 12 });
    const result = hierarchicalIndexerMethod.create({ blockSize: 32, candidateBlocks: 16, topK: 128, iouQueries: 16 }).prefill(w.input);
    expect(rowKeys(result.selection!, 100)).toEqual(Array.from({ length: 101 }, (_, i) => i));
    expect(result.diagnostics!['indexerIoU']).toBeGreaterThan(0.9);
    expect(result.diagnostics!['indexerIoU']).toBeLessThanOrEqual(1);
    expect(result.stats.density).toBeLessThan(0.5);
  });

  it('budget sweep keeps 4·K candidate tokens and ends with every key', () => {
    const points = hierarchicalIndexerMethod.budgets!(1000);
    expect(points.map((p) => p.config['topK'])).toEqual([64, 128, 256, 512, 1000]);
    expect(points[0]!.config['candidateBlocks']).toBe(4);
  });
});
