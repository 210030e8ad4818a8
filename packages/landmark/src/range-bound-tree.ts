/**
 * Kernel: per-channel min/max bounds of dyadic key ranges, kept as a growing segment tree.
 *
 *   node (level l, index i) covers key chunks [i·2^l, (i+1)·2^l), chunk c = keys [c·s, (c+1)·s)
 *   lo_i,c = min_{j in node} k_j,c,   hi_i,c = max_{j in node} k_j,c
 *   bound(q, node) = Σ_c max(q_c·lo_c, q_c·hi_c) ≥ max_{j in node} q·k_j
 *
 * Appending a key updates one node per level (O(levels · D)), so a decoder keeps the tree
 * current without rebuilding it; HiP's `bound` representative scores tree nodes with it.
 */
import { rowOffset, type Dims4, type Tensor } from '@sparse-attn/core';

/** Levels kept: enough for 2^31 chunks; levels above the root hold one node each. */
const MAX_LEVELS = 32;

/** A segment tree of min/max key bounds per (batch, KV head) stream. */
export class RangeBoundTree {
  readonly streams: number;
  readonly dim: number;
  readonly chunkSize: number;
  private keys = 0;
  /** `levels[stream][l]`: nodes of level l, `2 · dim` floats each (minima then maxima). */
  private readonly levels: Float32Array[][];

  constructor(streams: number, dim: number, chunkSize: number) {
    this.streams = streams;
    this.dim = dim;
    this.chunkSize = chunkSize;
    this.levels = Array.from({ length: streams }, () => Array.from({ length: MAX_LEVELS }, () => new Float32Array(0)));
  }

  /** Keys summarised so far. */
  get length(): number {
    return this.keys;
  }

  /** Bytes held by the bounds. */
  get bytes(): number {
    let total = 0;
    for (const stream of this.levels) for (const level of stream) total += level.byteLength;
    return total;
  }

  /** Forgets every key (keeps the allocation). */
  reset(): void {
    this.keys = 0;
  }

  /** Adds keys `[this.length, length)` of `k` (`[batch, kvHeads, ≥length, dim]`). */
  update(k: Tensor, kDims: Dims4, length: number): void {
    const dim = this.dim;
    for (let s = 0; s < this.streams; s++) {
      const b = Math.floor(s / kDims.heads);
      const h = s % kDims.heads;
      const stream = this.levels[s]!;
      for (let t = this.keys; t < length; t++) {
        const ko = rowOffset(kDims, b, h, t);
        const chunk = Math.floor(t / this.chunkSize);
        for (let l = 0; l < MAX_LEVELS; l++) {
          const node = chunk >>> l;
          let level = stream[l]!;
          if (level.length < (node + 1) * 2 * dim) {
            const grown = new Float32Array(Math.max(node + 1, 2 * (level.length / (2 * dim)), 4) * 2 * dim);
            grown.set(level);
            stream[l] = grown;
            level = grown;
          }
          if (l > 0 && chunk >>> (l - 1) === 0) {
            // Every key so far lies in node 0 of level l − 1, which node 0 of this level equals.
            level.set(stream[l - 1]!.subarray(0, 2 * dim));
            continue;
          }
          const at = node * 2 * dim;
          if (t === node * this.chunkSize * 2 ** l) {
            // The node's first key starts its bounds.
            for (let c = 0; c < dim; c++) {
              const x = k.data[ko + c]!;
              level[at + c] = x;
              level[at + dim + c] = x;
            }
          } else {
            for (let c = 0; c < dim; c++) {
              const x = k.data[ko + c]!;
              if (x < level[at + c]!) level[at + c] = x;
              if (x > level[at + dim + c]!) level[at + dim + c] = x;
            }
          }
        }
      }
    }
    this.keys = Math.max(this.keys, length);
  }

  /** Upper bound of q·k over the keys of node (`level`, `index`) of `stream`. */
  bound(stream: number, level: number, index: number, q: Float32Array, qOff: number): number {
    const dim = this.dim;
    const data = this.levels[stream]![level]!;
    const at = index * 2 * dim;
    let s = 0;
    for (let c = 0; c < dim; c++) {
      const x = q[qOff + c]!;
      s += x >= 0 ? x * data[at + dim + c]! : x * data[at + c]!;
    }
    return s;
  }
}
