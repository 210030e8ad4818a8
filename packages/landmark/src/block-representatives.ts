/**
 * Kernel: synthetic block representatives ("training-free landmarks") and their scores.
 *
 *   mean:   r_b = (1/b) Σ_{j ∈ block b} k_j             score(q, b) = q · r_b
 *   quest:  lo_b,i = min_j k_j,i,  hi_b,i = max_j k_j,i  score(q, b) = Σ_i max(q_i·lo_b,i, q_i·hi_b,i)
 *
 * The Quest score is an upper bound on max_{j ∈ b} q·k_j (each channel's product is bounded by
 * its extreme), so a block holding a high-scoring key can never be under-rated. Representatives
 * are computed once per complete block and appended as blocks complete, so a decode step never
 * recomputes the prompt's representatives.
 */
import { ConfigError, rowOffset, type Dims4, type Tensor } from '@sparse-attn/core';

/** How a block of keys is summarised for retrieval. */
export type RepresentativeKind = 'mean' | 'quest';

/**
 * Representatives of the complete blocks of every (batch, KV head) stream, grown in place.
 * Stream `s = b * kvHeads + h` holds `count` representatives of `stride` floats each
 * (`dim` for `mean`, `2 * dim` — minima then maxima — for `quest`).
 */
export class BlockRepresentatives {
  readonly kind: RepresentativeKind;
  readonly streams: number;
  readonly dim: number;
  readonly blockSize: number;
  /** Floats per representative. */
  readonly stride: number;
  private capacity: number;
  private data: Float32Array[];
  private blocks = 0;

  constructor(kind: RepresentativeKind, streams: number, dim: number, blockSize: number, initialBlocks = 16) {
    if (!(Number.isInteger(blockSize) && blockSize >= 1)) throw new ConfigError(`blockSize must be a positive integer, got ${blockSize}`);
    this.kind = kind;
    this.streams = streams;
    this.dim = dim;
    this.blockSize = blockSize;
    this.stride = kind === 'mean' ? dim : 2 * dim;
    this.capacity = Math.max(1, initialBlocks);
    this.data = Array.from({ length: streams }, () => new Float32Array(this.capacity * this.stride));
  }

  /** Complete blocks summarised so far (the same in every stream). */
  get count(): number {
    return this.blocks;
  }

  /** Bytes held by the representatives (the "resident" retrieval index). */
  get bytes(): number {
    return this.streams * this.blocks * this.stride * 4;
  }

  /** Drops every representative (keeps the allocation). */
  reset(): void {
    this.blocks = 0;
  }

  /**
   * Summarises every block that is complete within the first `length` keys of `k` and not yet
   * summarised. `k` is `[batch, kvHeads, ≥length, dim]` (a KV-cache view is fine).
   */
  update(k: Tensor, kDims: Dims4, length: number): void {
    const target = Math.floor(length / this.blockSize);
    if (target <= this.blocks) return;
    this.reserve(target);
    const bs = this.blockSize;
    const dim = this.dim;
    const acc = new Float64Array(this.stride);
    for (let s = 0; s < this.streams; s++) {
      const b = Math.floor(s / kDims.heads);
      const h = s % kDims.heads;
      const store = this.data[s]!;
      for (let block = this.blocks; block < target; block++) {
        const base = rowOffset(kDims, b, h, block * bs);
        if (this.kind === 'mean') {
          acc.fill(0);
          for (let j = 0; j < bs; j++) {
            const o = base + j * dim;
            for (let c = 0; c < dim; c++) acc[c]! += k.data[o + c]!;
          }
          const at = block * this.stride;
          for (let c = 0; c < dim; c++) store[at + c] = acc[c]! / bs;
        } else {
          const at = block * this.stride;
          for (let c = 0; c < dim; c++) {
            store[at + c] = k.data[base + c]!;
            store[at + dim + c] = k.data[base + c]!;
          }
          for (let j = 1; j < bs; j++) {
            const o = base + j * dim;
            for (let c = 0; c < dim; c++) {
              const x = k.data[o + c]!;
              if (x < store[at + c]!) store[at + c] = x;
              if (x > store[at + dim + c]!) store[at + dim + c] = x;
            }
          }
        }
      }
    }
    this.blocks = target;
  }

  /**
   * Writes the (unscaled) score of query `q[qOff..qOff+dim)` against blocks `[from, to)` of
   * stream `stream` into `out[from..to)`.
   */
  score(stream: number, q: Float32Array, qOff: number, from: number, to: number, out: Float64Array): void {
    const store = this.data[stream]!;
    const dim = this.dim;
    if (this.kind === 'mean') {
      for (let block = from; block < to; block++) {
        const at = block * dim;
        let s = 0;
        for (let c = 0; c < dim; c++) s += q[qOff + c]! * store[at + c]!;
        out[block] = s;
      }
      return;
    }
    for (let block = from; block < to; block++) {
      const at = block * this.stride;
      let s = 0;
      for (let c = 0; c < dim; c++) {
        const x = q[qOff + c]!;
        s += x >= 0 ? x * store[at + dim + c]! : x * store[at + c]!;
      }
      out[block] = s;
    }
  }

  /** The stored representative of `block` in `stream` (a view; `stride` floats). */
  representative(stream: number, block: number): Float32Array {
    return this.data[stream]!.subarray(block * this.stride, (block + 1) * this.stride);
  }

  private reserve(blocks: number): void {
    if (blocks <= this.capacity) return;
    let capacity = this.capacity * 2;
    while (capacity < blocks) capacity *= 2;
    this.data = this.data.map((old) => {
      const grown = new Float32Array(capacity * this.stride);
      grown.set(old.subarray(0, this.blocks * this.stride));
      return grown;
    });
    this.capacity = capacity;
  }
}
