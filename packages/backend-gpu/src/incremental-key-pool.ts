import { rowOffset, type Dims4, type Tensor } from '@sparse-attn/core';
import type { PooledKeys } from './block-top-k.js';

/** Shape of {@link IncrementalKeyPool}: the cache's slots and the pooling block. */
export interface IncrementalKeyPoolShape {
  readonly batch: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly blockSize: number;
}

/**
 * Per-block key statistics (mean, per-channel max and min) of a growing KV cache, updated only
 * for the keys that arrived since the last update, so a decode step pools one key instead of the
 * whole cache. Bit-identical to {@link poolKeyBlocks} over the same keys: block sums are kept in
 * float32 and accumulated in key order, exactly as that function accumulates them, and the mean
 * is the same `sum × (1 / count)` rounding.
 *
 * Storage is `[slot][block][headDim]` with `blockStride ≥ blocks` blocks per slot (doubled when
 * the cache outgrows it), exposed as a {@link PooledKeys} view without copying.
 */
export class IncrementalKeyPool {
  private readonly slots: number;
  private sum = new Float32Array(0);
  private mean = new Float32Array(0);
  private max = new Float32Array(0);
  private min = new Float32Array(0);
  private capacity = 0;
  private pooledKeys = 0;

  constructor(private readonly shape: IncrementalKeyPoolShape) {
    this.slots = shape.batch * shape.kvHeads;
  }

  /** Keys pooled so far. */
  get length(): number {
    return this.pooledKeys;
  }

  /**
   * Pools keys `length … keySeq−1` of `keys` (`[B, Hkv, keySeq, D]`, e.g. the cache's keys view,
   * whose first `length` rows are the ones pooled before). Returns the number of keys pooled.
   */
  update(keys: Tensor): number {
    const { blockSize, headDim } = this.shape;
    const keySeq = keys.shape[2]!;
    const first = this.pooledKeys;
    if (keySeq <= first) return 0;
    this.reserve(Math.ceil(keySeq / blockSize));
    const dims: Dims4 = { batch: this.shape.batch, heads: this.shape.kvHeads, seq: keySeq, dim: headDim, capacity: keys.seqCapacity ?? keySeq };
    const k = keys.data;
    const stride = this.capacity;
    for (let slot = 0; slot < this.slots; slot++) {
      const base = rowOffset(dims, Math.floor(slot / this.shape.kvHeads), slot % this.shape.kvHeads, 0);
      for (let t = first; t < keySeq; t++) {
        const out = (slot * stride + Math.floor(t / blockSize)) * headDim;
        const row = base + t * headDim;
        for (let c = 0; c < headDim; c++) {
          const x = k[row + c]!;
          this.sum[out + c]! += x;
          if (x > this.max[out + c]!) this.max[out + c] = x;
          if (x < this.min[out + c]!) this.min[out + c] = x;
        }
      }
      // Means of the blocks that changed (the last one may still be partial).
      for (let j = Math.floor(first / blockSize); j < Math.ceil(keySeq / blockSize); j++) {
        const inv = 1 / (Math.min((j + 1) * blockSize, keySeq) - j * blockSize);
        const out = (slot * stride + j) * headDim;
        for (let c = 0; c < headDim; c++) this.mean[out + c] = this.sum[out + c]! * inv;
      }
    }
    this.pooledKeys = keySeq;
    return keySeq - first;
  }

  /** The statistics of every pooled block, laid out as {@link PooledKeys} with `blockStride` blocks per slot (no copy). */
  view(): PooledKeys {
    return { blocks: Math.ceil(this.pooledKeys / this.shape.blockSize), blockStride: this.capacity, mean: this.mean, max: this.max, min: this.min };
  }

  /** Forgets every pooled key (a new sequence). */
  reset(): void {
    this.pooledKeys = 0;
    this.capacity = 0;
    this.sum = new Float32Array(0);
    this.mean = new Float32Array(0);
    this.max = new Float32Array(0);
    this.min = new Float32Array(0);
  }

  /** Grows storage to at least `blocks` blocks per slot (doubling), keeping the pooled blocks. */
  private reserve(blocks: number): void {
    if (blocks <= this.capacity) return;
    const capacity = Math.max(blocks, 2 * this.capacity, 4);
    const { headDim } = this.shape;
    const grow = (old: Float32Array, fill: number) => {
      const next = new Float32Array(this.slots * capacity * headDim).fill(fill);
      for (let slot = 0; slot < this.slots; slot++) {
        next.set(old.subarray(slot * this.capacity * headDim, (slot + 1) * this.capacity * headDim), slot * capacity * headDim);
      }
      return next;
    };
    this.sum = grow(this.sum, 0);
    this.mean = grow(this.mean, 0);
    this.max = grow(this.max, -Infinity);
    this.min = grow(this.min, Infinity);
    this.capacity = capacity;
  }
}
