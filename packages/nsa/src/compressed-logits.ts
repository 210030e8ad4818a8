/**
 * Kernel: compression-branch logits of a chunk of queries, as one matrix product (spec §3.2, §8).
 *
 *   L[(i, g), c] = q_{i}^{h·G+g} · k̃_c        for the queries i of a chunk, the G query heads of
 *                                              KV head h, and the pooled windows c < NC(last query)
 *
 * i.e. `L = Q_chunk · K̃ᵀ` through core's `matmul` (WebAssembly SIMD where available). This is the
 * `O(T² · D / d)` part of NSA's prefill; computing it a chunk at a time instead of one dot product
 * per (query, head, window) is what keeps the selection cheaper than the attention it saves.
 *
 * Bit-identical logits for prefill and decode: each logit is one row·row dot product whose
 * summation order depends only on `D`, never on how many rows or columns the product has, so a
 * decode step (a chunk of one query) reproduces prefill's logits exactly. Core's `matmul` runs
 * the JS loop instead of the SIMD kernel below 4096 multiply-adds, which sums in another order,
 * so tiny products are padded with zero rows up to that size: every call takes the same path.
 *
 * Quest-style scores (`compressionScore: 'quest'`, spec §6's optional variant) are the same product
 * in 2·D dimensions: Σ_c max(q_c·min_c, q_c·max_c) = [q⁺ | q⁻] · [max | min].
 */
import { matmul, rowOffset, type Dims4 } from '@sparse-attn/core';
import type { BlockMeans } from './block-means.js';

/**
 * What a compression window is scored by: `mean` = the pooled key k̃ (FLA / the paper with φ = mean);
 * `quest` = the window's per-channel key bounds, Σ_c max(q_c·min_c, q_c·max_c) ≥ max_j q·k_j.
 */
export type CompressionScore = 'mean' | 'quest';

/** Smallest product (m·k·n) that core's `matmul` sends to its SIMD kernel; smaller ones are padded up to it. */
const SAME_KERNEL_WORK = 4096;

/** Reusable buffers for the logits of one chunk of queries. */
export class CompressedLogits {
  /** Logits of the last {@link compute} call: row `(i − first) · G + g`, `windows` columns. */
  logits = new Float32Array(0);
  private queries = new Float32Array(0);

  /**
   * Computes the logits of queries `[first, last)` (local indices) of batch `b` against the first
   * `windows` pooled keys of KV head `head`; `groupSize` query heads per KV head.
   * Unscaled (the softmax scale is applied by the caller).
   */
  compute(q: Float32Array, qDims: Dims4, means: BlockMeans, b: number, head: number, groupSize: number, first: number, last: number, windows: number, score: CompressionScore = 'mean'): void {
    const quest = score === 'quest';
    const dim = quest ? 2 * qDims.dim : qDims.dim;
    const rows = (last - first) * groupSize;
    const padded = Math.max(rows, Math.ceil(SAME_KERNEL_WORK / Math.max(1, dim * windows)));
    if (this.queries.length < padded * dim) this.queries = new Float32Array(padded * dim);
    else this.queries.fill(0, rows * dim, padded * dim);
    if (this.logits.length < padded * windows) this.logits = new Float32Array(padded * windows);
    for (let i = first; i < last; i++) {
      for (let g = 0; g < groupSize; g++) {
        const from = rowOffset(qDims, b, head * groupSize + g, i);
        const to = ((i - first) * groupSize + g) * dim;
        if (!quest) {
          this.queries.set(q.subarray(from, from + dim), to);
          continue;
        }
        // Σ_c max(q_c·min_c, q_c·max_c) = q⁺·max + q⁻·min: rows [q⁺ | q⁻] against bounds [max | min].
        const half = qDims.dim;
        for (let c = 0; c < half; c++) {
          const x = q[from + c]!;
          this.queries[to + c] = x > 0 ? x : 0;
          this.queries[to + half + c] = x < 0 ? x : 0;
        }
      }
    }
    const keys = quest
      ? means.boundData.subarray(means.boundOffset(b, head, 0), means.boundOffset(b, head, 0) + windows * dim)
      : means.keyData.subarray(means.keyOffset(b, head, 0), means.keyOffset(b, head, 0) + windows * dim);
    matmul(this.queries, keys, padded, dim, windows, this.logits, { transposeB: true });
  }
}
