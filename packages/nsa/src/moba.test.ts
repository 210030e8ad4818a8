import { describe, expect, it } from 'vitest';
import { createWorkload, rowKeys, selectionRow, tensor } from '@sparse-attn/core';
import { describeConformance } from '@sparse-attn/core/testing';
import { mobaMethod } from './moba.js';

describeConformance({
  name: 'moba',
  create: (config) => mobaMethod.create(config as never),
  fullBudget: (seq) => ({ blockSize: 8, topK: Math.ceil(seq / 8) }),
  sparse: () => ({ blockSize: 8, topK: 3 }),
  invalidConfigs: [{ blockSize: 0 }, { topK: 0 }, { topK: 1.5 }, { chunk: 4 }],
});

describe('moba routing', () => {
  it('hand-worked: each query head picks the block whose mean key it matches, plus its current block', () => {
    // D = 2, B = 2, T = 8, one KV head, two query heads. Block 1 keys point along x, block 2 along y.
    const k = [0, 0, 0, 0, 3, 0, 3, 0, 0, 3, 0, 3, 0, 0, 0, 0];
    const q = new Array<number>(2 * 8 * 2).fill(0);
    q[7 * 2] = 1; // head 0, t = 7: along x → block 1
    q[(8 + 7) * 2 + 1] = 1; // head 1, t = 7: along y → block 2
    const input = { q: tensor([1, 2, 8, 2], q), k: tensor([1, 1, 8, 2], k), v: tensor([1, 1, 8, 2]) };
    const result = mobaMethod.create({ blockSize: 2, topK: 2 }).prefill(input);
    const s = result.selection!;
    expect(s.headScope).toBe('query');
    expect(rowKeys(s, selectionRow(s, 0, 0, 2, 7))).toEqual([2, 3, 6, 7]);
    expect(rowKeys(s, selectionRow(s, 0, 1, 2, 7))).toEqual([4, 5, 6, 7]);
    // t = 5 sits in block 2: the current block is causally cut at the query.
    expect(rowKeys(s, selectionRow(s, 0, 0, 2, 5), 6)).toEqual([2, 3, 4, 5]);
  });

  it('the current block is always selected and nothing after it', () => {
    const w = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: 70, headDim: 8, seed: 8 });
    const s = mobaMethod.create({ blockSize: 8, topK: 2 }).prefill(w.input).selection!;
    for (let r = 0; r < s.batch * s.heads * s.rows; r++) {
      const t = r % s.rows;
      const row = Array.from(s.indices.subarray(s.offsets[r]!, s.offsets[r + 1]!));
      expect(row[row.length - 1]).toBe(Math.floor(t / 8));
      expect(row.length).toBe(Math.min(2, Math.floor(t / 8) + 1));
    }
    expect(mobaMethod.budgets!(4096).map((p) => p.config['topK'])).toEqual([2, 4, 8]);
  });
});
