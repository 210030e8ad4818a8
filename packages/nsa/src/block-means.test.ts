import { describe, expect, it } from 'vitest';
import { ShapeError, createWorkload, sliceSeq, tensor } from '@sparse-attn/core';
import { BlockMeans, completeWindows } from './block-means.js';

describe('BlockMeans', () => {
  it('pools complete windows only, with overlap (hand-worked)', () => {
    // One head, D = 1, keys 0..9; l = 4, d = 2 → windows [0,4) [2,6) [4,8) [6,10).
    const k = tensor([1, 1, 10, 1], Array.from({ length: 10 }, (_, i) => i));
    const means = new BlockMeans({ batch: 1, heads: 1, headDim: 1, valueDim: 1, length: 4, stride: 2 }, 1);
    means.extend(k, k);
    expect(means.count).toBe(4);
    expect([0, 1, 2, 3].map((i) => means.keyData[means.keyOffset(0, 0, i)])).toEqual([1.5, 3.5, 5.5, 7.5]);
    expect(completeWindows(3, 4, 2)).toBe(0);
    expect(completeWindows(4, 4, 2)).toBe(1);
  });

  it('extending token by token gives the same pooled keys and values as one prefill pass', () => {
    const w = createWorkload('gaussian', { batch: 2, queryHeads: 2, kvHeads: 2, seqLength: 53, headDim: 8, valueDim: 5, seed: 2 });
    const shape = { batch: 2, heads: 2, headDim: 8, valueDim: 5, length: 8, stride: 4 };
    const once = new BlockMeans(shape);
    once.extend(w.input.k, w.input.v);
    const stepwise = new BlockMeans(shape, 1);
    for (let t = 1; t <= 53; t++) stepwise.extend(sliceSeq(w.input.k, 0, t), sliceSeq(w.input.v, 0, t));
    expect(stepwise.count).toBe(once.count);
    const a = once.tensors(1);
    const b = stepwise.tensors(1);
    for (let bb = 0; bb < 2; bb++) {
      for (let h = 0; h < 2; h++) {
        for (let i = 0; i < once.count; i++) {
          expect(Array.from(b.k.data.subarray(stepwise.keyOffset(bb, h, i), stepwise.keyOffset(bb, h, i) + 8))).toEqual(Array.from(a.k.data.subarray(once.keyOffset(bb, h, i), once.keyOffset(bb, h, i) + 8)));
        }
      }
    }
    expect(a.v.shape).toEqual([2, 2, once.count, 5]);
  });

  it('rejects bad geometry and mismatched tensors with ShapeError', () => {
    expect(() => new BlockMeans({ batch: 1, heads: 1, headDim: 2, length: 2, stride: 3 })).toThrow(ShapeError);
    const means = new BlockMeans({ batch: 1, heads: 1, headDim: 2, valueDim: 2, length: 2, stride: 2 });
    expect(() => means.extend(tensor([1, 2, 4, 2]), tensor([1, 2, 4, 2]))).toThrow(ShapeError);
    expect(() => means.extend(tensor([1, 1, 4, 2]))).toThrow(ShapeError);
  });
});
