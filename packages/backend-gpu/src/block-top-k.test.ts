import { describe, expect, it } from 'vitest';
import { createWorkload, validateAttentionInput, type AttentionInput } from '@sparse-attn/core';
import { blockTopKConfigSchema, maxPicksPerRow, poolKeyBlocks, rowGeometry, scoreKeyBlocks, selectTopKBlocks } from './block-top-k.js';

function input(seq: number, seed = 1, kvHeads = 2, queryHeads = 4, headDim = 8): AttentionInput {
  return createWorkload('gaussian', { batch: 1, queryHeads, kvHeads, seqLength: seq, headDim, valueDim: headDim, seed }).input;
}

describe('poolKeyBlocks', () => {
  it('mean, max and min per channel over each block, the last block partial', () => {
    const x = input(11, 3);
    const pooled = poolKeyBlocks(x, 4);
    expect(pooled.blocks).toBe(3);
    const k = x.k.data;
    const headDim = 8;
    for (const [slot, block, channel] of [[0, 0, 0], [1, 2, 7], [0, 2, 3], [1, 1, 5]] as const) {
      const values: number[] = [];
      for (let t = block * 4; t < Math.min(11, block * 4 + 4); t++) values.push(k[(slot * 11 + t) * headDim + channel]!);
      const at = (slot * 3 + block) * headDim + channel;
      expect(pooled.mean[at]).toBeCloseTo(values.reduce((a, b) => a + b, 0) / values.length, 5);
      expect(pooled.max[at]).toBe(Math.max(...values));
      expect(pooled.min[at]).toBe(Math.min(...values));
    }
  });
});

describe('rowGeometry and maxPicksPerRow', () => {
  it('a row sees the blocks up to its last query and forces the blocks of its own queries', () => {
    const g = rowGeometry({ querySeq: 100, queryOffset: 0 }, { blockSize: 16, queryBlockSize: 8 }, 7, 5);
    expect(g).toEqual({ rowQueries: 8, firstPos: 40, lastPos: 47, visible: 3, localStart: 2 });
    const last = rowGeometry({ querySeq: 100, queryOffset: 0 }, { blockSize: 16, queryBlockSize: 8 }, 7, 12);
    expect(last).toEqual({ rowQueries: 4, firstPos: 96, lastPos: 99, visible: 7, localStart: 6 });
  });

  it('the CSR stride bounds every row the CPU selects', () => {
    for (const [blockSize, queryBlockSize, topK, sinkBlocks] of [[8, 8, 3, 1], [4, 16, 2, 0], [16, 4, 5, 2], [7, 13, 1, 1]] as const) {
      const config = blockTopKConfigSchema.parse({ blockSize, queryBlockSize, topK, sinkBlocks });
      const x = input(97, blockSize);
      const d = validateAttentionInput(x);
      const pooled = poolKeyBlocks(x, blockSize);
      const selection = selectTopKBlocks(d, scoreKeyBlocks(x, pooled, config), pooled.blocks, config);
      const stride = maxPicksPerRow(config, pooled.blocks);
      for (let r = 0; r + 1 < selection.offsets.length; r++) expect(selection.offsets[r + 1]! - selection.offsets[r]!).toBeLessThanOrEqual(stride);
    }
  });
});

describe('selectTopKBlocks', () => {
  const config = blockTopKConfigSchema.parse({ blockSize: 4, queryBlockSize: 4, topK: 2, sinkBlocks: 1 });
  const d = validateAttentionInput(input(24, 1, 1, 1));

  it('keeps sinks and the row-local block, then the highest scores, ties to the lower block index', () => {
    const blocks = 6;
    const rows = 6;
    const scores = new Float64Array(rows * blocks);
    // Row 5 (queries 20..23): blocks 0 (sink) and 5 (local) forced; among 1..4 scores 0.2, 0.5, 0.5, 0.1.
    scores.set([9, 0.2, 0.5, 0.5, 0.1, 9], 5 * blocks);
    const selection = selectTopKBlocks(d, scores, blocks, config);
    expect(Array.from(selection.indices.subarray(selection.offsets[5]!, selection.offsets[6]!))).toEqual([0, 2, 3, 5]);
    // Row 0 sees only block 0; row 1 sees blocks 0 (sink) and 1 (local).
    expect(Array.from(selection.indices.subarray(selection.offsets[0]!, selection.offsets[1]!))).toEqual([0]);
    expect(Array.from(selection.indices.subarray(selection.offsets[1]!, selection.offsets[2]!))).toEqual([0, 1]);
    // Ties: all-equal scores keep the lowest-index blocks.
    const flat = selectTopKBlocks(d, new Float64Array(rows * blocks), blocks, config);
    expect(Array.from(flat.indices.subarray(flat.offsets[5]!, flat.offsets[6]!))).toEqual([0, 1, 2, 5]);
  });

  it('block scores of one row sum to the number of its queries times the group (softmax mass)', () => {
    const x = input(40, 9, 2, 4);
    const c = blockTopKConfigSchema.parse({ blockSize: 8, queryBlockSize: 8 });
    const pooled = poolKeyBlocks(x, 8);
    const scores = scoreKeyBlocks(x, pooled, c);
    for (let row = 0; row < 2 * 5; row++) {
      const sum = scores.subarray(row * pooled.blocks, (row + 1) * pooled.blocks).reduce((a, b) => a + b, 0);
      expect(sum).toBeCloseTo(8 * 2, 9);
    }
  });
});
