import { describe, expect, it } from 'vitest';
import { ConfigError, SelectionBuilder, ShapeError, createWorkload, sparseAttention, validateAttentionInput } from '@sparse-attn/core';
import { blockScratchBytesPerSlot, checkSelectionFits, countPairs, type GpuBackend } from './gpu-backend.js';
import { benchmarks, gpuAttentionSuite } from './gpu-benchmarks.js';
import { gpuBlockTopKMethod, gpuMethod, gpuMethods } from './gpu-methods.js';
import { methods } from './index.js';

const input = createWorkload('gaussian', { batch: 2, queryHeads: 4, kvHeads: 2, seqLength: 30, headDim: 8, valueDim: 8, seed: 4 }).input;
const dims = validateAttentionInput(input);

function blockSelection(heads: number, rows: number, queryBlockSize: number, keySeq = 30) {
  const builder = new SelectionBuilder({ kind: 'block', blockSize: 4, headScope: 'kv', batch: 2, heads, rows, queryBlockSize, keySeq });
  for (let r = 0; r < 2 * heads * rows; r++) builder.pushRow(r % 3 === 0 ? [] : [0, 2, 5, 7]);
  return builder.finish();
}

describe('selection layout checks', () => {
  it("accepts a selection that fits the call and counts the same pairs as core's executor", () => {
    const selection = blockSelection(2, 8, 4);
    expect(() => checkSelectionFits(selection, dims)).not.toThrow();
    expect(countPairs(selection, dims)).toBe(sparseAttention(input, selection).stats.pairs);
  });

  it("counts core's executor pairs for token and block rows, rows shared by many queries, causal or not, query or KV heads, at a query offset", () => {
    let seed = 7;
    const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296);
    for (const causal of [true, false]) {
      for (const [kind, blockSize] of [['token', 1], ['block', 4], ['block', 7]] as const) {
        for (const headScope of ['kv', 'query'] as const) {
          for (const queryBlockSize of [1, 3, 12]) {
            // 12 queries at the end of 41 keys (a decode-like offset) or the whole call.
            for (const querySeq of [12, 41]) {
              const call = createWorkload('gaussian', { batch: 2, queryHeads: 4, kvHeads: 2, seqLength: 41, headDim: 4, valueDim: 4, seed: 5 }).input;
              const q = { ...call.q, shape: [2, 4, querySeq, 4], data: call.q.data.subarray(0, 2 * 4 * querySeq * 4) };
              const c = { ...call, q, causal };
              const d = validateAttentionInput(c);
              const heads = headScope === 'kv' ? 2 : 4;
              const rows = Math.ceil(querySeq / queryBlockSize);
              const blocks = Math.ceil(41 / blockSize);
              const builder = new SelectionBuilder({ kind, blockSize, headScope, batch: 2, heads, rows, queryBlockSize, keySeq: 41 });
              for (let r = 0; r < 2 * heads * rows; r++) builder.pushRow(Array.from({ length: blocks }, (_, j) => j).filter(() => random() < 0.4));
              const selection = builder.finish();
              expect(countPairs(selection, d), `${kind} ${blockSize} ${headScope} qbs ${queryBlockSize} Sq ${querySeq} causal ${causal}`).toBe(sparseAttention(c, selection).stats.pairs);
            }
          }
        }
      }
    }
  });

  it('rejects wrong heads, rows or key length with a ShapeError', () => {
    expect(() => checkSelectionFits(blockSelection(4, 8, 4), dims)).toThrow(ShapeError);
    expect(() => checkSelectionFits(blockSelection(2, 7, 4), dims)).toThrow(/query rows/);
    expect(() => checkSelectionFits(blockSelection(2, 8, 4, 31), dims)).toThrow(/31 keys/);
  });

  it('sizes the block path scratch by query rows × key blocks, and a decode-shaped call by its logits (× group × queries per row)', () => {
    expect(blockScratchBytesPerSlot(dims, { blockSize: 4, queryBlockSize: 8 })).toBe(4 * 4 * 8);
    // 3 queries at the end of 30 keys, GQA 2: one row of 3 queries, 8 blocks, 2 · 3 logits per block.
    const decode = { ...dims, querySeq: 3, queryOffset: 27 };
    expect(blockScratchBytesPerSlot(decode, { blockSize: 4, queryBlockSize: 8 })).toBe(4 * 1 * 8 * 2 * 3);
  });
});

describe('GPU method definitions', () => {
  it('mirror the CPU definitions and parse configs before touching the device', () => {
    expect(gpuMethods.map((m) => m.id)).toEqual(['dense', 'block-top-k']);
    expect(gpuMethod('block-top-k')).toBe(gpuBlockTopKMethod);
    expect(gpuMethod('block-top-k', 'cpu')).toBeUndefined();
    expect(methods.map((m) => m.id)).toEqual(['block-top-k']);
    const noDevice = {} as GpuBackend;
    expect(() => gpuBlockTopKMethod.create(noDevice, { topK: -2 })).toThrow(ConfigError);
    expect(() => gpuBlockTopKMethod.create(noDevice, { bogus: 1 })).toThrow(ConfigError);
  });
});

describe('GPU benchmark suite', () => {
  it('is exported for apps/bench and returns no rows on the CPU backend', async () => {
    expect(benchmarks).toContain(gpuAttentionSuite);
    await expect(gpuAttentionSuite.run({ quick: true, seqLengths: [512], repeats: 1, seed: 1, backend: 'cpu' })).resolves.toEqual([]);
  });
});
