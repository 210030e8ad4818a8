import { describe, expect, it } from 'vitest';
import { createWorkload, sliceSeq, validateAttentionInput, type AttentionInput } from '@sparse-attn/core';
import { blockTopKAttention, blockTopKConfigSchema, blockTopKMethod, maxPicksPerRow, poolKeyBlocks, rowGeometry, scoreKeyBlocks, selectTopKBlocks } from './block-top-k.js';
import { IncrementalKeyPool } from './incremental-key-pool.js';

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

describe('block-top-k decoder', () => {
  it('pools only the new keys per step and matches the whole-cache path exactly (GQA, chunks crossing blocks)', () => {
    const config = blockTopKConfigSchema.parse({ blockSize: 8, queryBlockSize: 8, topK: 2, sinkBlocks: 1 });
    const seq = 61;
    const x = input(seq, 12, 2, 4, 16);
    const decoder = blockTopKMethod.create(config).createDecoder({ batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 });
    // A 13-token prompt chunk, a 6-token chunk, then single tokens.
    const bounds = [0, 13, 19, ...Array.from({ length: seq - 19 }, (_, i) => 20 + i)];
    for (let s = 0; s + 1 < bounds.length; s++) {
      const [from, to] = [bounds[s]!, bounds[s + 1]!];
      const step = decoder.step({ q: sliceSeq(x.q, from, to), k: sliceSeq(x.k, from, to), v: sliceSeq(x.v, from, to) });
      const whole = blockTopKAttention({ q: sliceSeq(x.q, from, to), k: sliceSeq(x.k, 0, to), v: sliceSeq(x.v, 0, to) }, config);
      expect(step.diagnostics?.['keysPooled'], `step ${from}..${to} re-pooled the cache`).toBe(to - from);
      expect(Array.from(step.selection!.indices)).toEqual(Array.from(whole.selection!.indices));
      expect(Array.from(step.selection!.offsets)).toEqual(Array.from(whole.selection!.offsets));
      expect(Array.from(step.output.data)).toEqual(Array.from(whole.output.data));
    }
    decoder.reset();
    const again = decoder.step({ q: sliceSeq(x.q, 0, 5), k: sliceSeq(x.k, 0, 5), v: sliceSeq(x.v, 0, 5) });
    expect(again.diagnostics?.['keysPooled']).toBe(5);
    expect(Array.from(again.output.data)).toEqual(Array.from(blockTopKAttention(sliceAll(x, 5), config).output.data));
  });

  it('IncrementalKeyPool grown in pieces holds exactly what poolKeyBlocks computes over the same keys', () => {
    const x = input(70, 5, 2, 2, 8);
    const pool = new IncrementalKeyPool({ batch: 1, kvHeads: 2, headDim: 8, blockSize: 6 });
    for (const length of [1, 6, 7, 30, 31, 70]) {
      pool.update(sliceSeq(x.k, 0, length));
      const view = pool.view();
      const expected = poolKeyBlocks(sliceAll(x, length), 6);
      expect(view.blocks).toBe(expected.blocks);
      for (let slot = 0; slot < 2; slot++) {
        for (const name of ['mean', 'max', 'min'] as const) {
          const got = view[name].subarray(slot * view.blockStride! * 8, (slot * view.blockStride! + view.blocks) * 8);
          expect(Array.from(got)).toEqual(Array.from(expected[name].subarray(slot * expected.blocks * 8, (slot + 1) * expected.blocks * 8)));
        }
      }
    }
  });
});

function sliceAll(x: AttentionInput, length: number): AttentionInput {
  return { q: sliceSeq(x.q, 0, length), k: sliceSeq(x.k, 0, length), v: sliceSeq(x.v, 0, length) };
}
