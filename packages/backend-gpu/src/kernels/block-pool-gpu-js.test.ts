import { describe, expect, it } from 'vitest';
import gpuJs from 'gpu.js';
import { WgslParser } from 'wgsl_reflect/wgsl_reflect.module.js';
import { createWorkload } from '@sparse-attn/core';
import { poolKeyBlocks } from '../block-top-k.js';
import { poolKeyBlockKernel } from './block-pool-gpu-js.js';

const { GPU } = gpuJs as unknown as { GPU: new (settings: { mode: string }) => { createKernel(f: unknown, s: object): ((...args: unknown[]) => unknown) & { build(...args: unknown[]): unknown; compiledSource: string }; destroy(): void } };

const slots = 3;
const keySeq = 53;
const dim = 8;
const blockSize = 16;
const blocks = Math.ceil(keySeq / blockSize);
const input = createWorkload('gaussian', { batch: 1, queryHeads: slots, kvHeads: slots, seqLength: keySeq, headDim: dim, valueDim: dim, seed: 12 }).input;
const settings = { output: [dim, slots * blocks], constants: { blocks, blockSize, keySeq }, argumentTypes: { keys: 'Array', stat: 'Integer' }, loopMaxIterations: blockSize };

describe('gpu.js block pooling kernel', () => {
  it("run by gpu.js's CPU mode, equals the CPU pooling (mean, max, min) with a partial last block", () => {
    const gpu = new GPU({ mode: 'cpu' });
    const kernel = gpu.createKernel(poolKeyBlockKernel, settings);
    const keys = Array.from({ length: slots }, (_, s) => Array.from({ length: keySeq }, (_, t) => input.k.data.subarray((s * keySeq + t) * dim, (s * keySeq + t + 1) * dim)));
    const reference = poolKeyBlocks(input, blockSize);
    for (const [stat, expected] of [[0, reference.mean], [1, reference.max], [2, reference.min]] as const) {
      const rows = kernel(keys, stat) as Float32Array[];
      const flat = Float32Array.from(rows.flatMap((row) => Array.from(row)));
      expect(flat.length).toBe(expected.length);
      for (let i = 0; i < flat.length; i++) expect(flat[i]).toBeCloseTo(expected[i]!, 5);
    }
    gpu.destroy();
  });

  it('translates to WGSL that parses and indexes the keys in 32-bit integers', () => {
    const global = globalThis as { navigator?: unknown };
    const had = 'navigator' in globalThis;
    const saved = global.navigator;
    // Translation needs only the API surface; the adapter request never resolves here.
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: { requestAdapter: () => new Promise(() => undefined) } }, configurable: true, writable: true });
    try {
      const gpu = new GPU({ mode: 'webgpu' });
      const kernel = gpu.createKernel(poolKeyBlockKernel, { ...settings, pipeline: true, immutable: true });
      void kernel.build([[new Float32Array(dim)]], 0);
      const code = kernel.compiledSource;
      expect(() => new WgslParser().parse(code)).not.toThrow();
      expect(code).toContain('get_user_keys(i32(user_slot), i32(user_t), i32(user_channel))');
      // WGSL increments only integers (Tint rejects `x++` on an f32, which gpu.js emits for float loop variables).
      for (const match of code.matchAll(/(\w+)\+\+/g)) expect(code).toMatch(new RegExp(`var ${match[1]} : i32`));
      expect(code).toContain(`for (var user_i : i32 = 0;(f32(user_i)<${blockSize}.0);user_i++)`);
    } finally {
      if (had) Object.defineProperty(globalThis, 'navigator', { value: saved, configurable: true, writable: true });
      else delete global.navigator;
    }
  });
});
