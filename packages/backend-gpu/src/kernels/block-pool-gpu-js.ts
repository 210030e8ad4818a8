/**
 * Block pooling as a gpu.js kernel (gpu.js translates it to WGSL): per KV slot, key block j
 * (keys [j·bs, min((j+1)·bs, S))) and channel c,
 *
 *   stat 0: mean_jc = (1/n_j) Σ_t k_tc      stat 1: max_jc = max_t k_tc      stat 2: min_jc = min_t k_tc
 *
 * the same numbers as the WGSL pooling kernel (`block-pool-wgsl.ts`, the fallback when gpu.js
 * cannot share the device). One thread per output element, no workgroup memory: the shape of
 * kernel gpu.js expresses. The keys are read as a 3-D array `[slot][t][c]` so gpu.js indexes in
 * 32-bit integers (a flat index in its f32 arithmetic would be inexact past 2^24 elements).
 */
import type { GpuJsBridge, GpuJsBuffer } from '../gpu-js-bridge.js';

/** Geometry a pooling kernel is compiled for (gpu.js inlines constants). */
export interface PoolGeometry {
  readonly slots: number;
  readonly keySeq: number;
  /** Rows between slots in the keys buffer (≥ keySeq; a KV cache's capacity). */
  readonly keyStride: number;
  readonly blockSize: number;
  readonly blocks: number;
  readonly dim: number;
}

interface PoolThis {
  readonly thread: { readonly x: number; readonly y: number };
  readonly constants: { readonly blocks: number; readonly blockSize: number; readonly keySeq: number };
}

/** The kernel body gpu.js translates (plain JavaScript semantics; also runnable on gpu.js's CPU mode). */
export function poolKeyBlockKernel(this: PoolThis, keys: number[][][], stat: number): number {
  const channel = this.thread.x;
  const blockRow = this.thread.y;
  const block = blockRow % this.constants.blocks;
  const slot = Math.floor(blockRow / this.constants.blocks);
  const start = block * this.constants.blockSize;
  const end = Math.min(start + this.constants.blockSize, this.constants.keySeq);
  let sum = 0;
  let hi = -3.0e38;
  let lo = 3.0e38;
  // An integer counter: gpu.js 2.24 types a loop variable started from a float expression as f32
  // and emits `t++` for it, which WGSL rejects ("increment ... integer scalar").
  for (let i = 0; i < this.constants.blockSize; i++) {
    const t = start + i;
    if (t < end) {
      const x = keys[slot]![t]![channel]!;
      sum += x;
      hi = Math.max(hi, x);
      lo = Math.min(lo, x);
    }
  }
  if (stat === 0) return sum / (end - start);
  if (stat === 1) return hi;
  return lo;
}

/** Mean, max and min pooled keys, `[slot][block][dim]` each, as GPU-resident gpu.js results. */
export interface PooledBuffers {
  readonly mean: GpuJsBuffer;
  readonly max?: GpuJsBuffer;
  readonly min?: GpuJsBuffer;
}

const kernels = new WeakMap<GpuJsBridge, Map<string, (...args: unknown[]) => Promise<GpuJsBuffer>>>();

/**
 * Pools the keys in `keys` (`[slots][keyStride][dim]`, the first `keySeq` rows of each slot, a backend buffer) on the GPU through gpu.js.
 * Each statistic is its own buffer (`immutable`), submitted to the shared queue in order, so the
 * WGSL scoring kernel submitted after it reads the finished values.
 */
export async function poolKeyBlocksGpuJs(bridge: GpuJsBridge, keys: GPUBuffer, g: PoolGeometry, withBounds: boolean): Promise<PooledBuffers> {
  let cache = kernels.get(bridge);
  if (!cache) kernels.set(bridge, (cache = new Map()));
  const key = `${g.slots}:${g.keySeq}:${g.keyStride}:${g.blockSize}:${g.blocks}:${g.dim}`;
  let kernel = cache.get(key);
  if (!kernel) {
    kernel = bridge.gpu.createKernel(poolKeyBlockKernel as never, {
      output: [g.dim, g.slots * g.blocks],
      constants: { blocks: g.blocks, blockSize: g.blockSize, keySeq: g.keySeq },
      argumentTypes: { keys: 'Array', stat: 'Integer' },
      loopMaxIterations: g.blockSize,
      pipeline: true,
      immutable: true,
    });
    cache.set(key, kernel);
  }
  const input = bridge.wrap(keys, [g.dim, g.keyStride, g.slots]);
  const mean = await kernel(input, 0);
  if (!withBounds) return { mean };
  return { mean, max: await kernel(input, 1), min: await kernel(input, 2) };
}
