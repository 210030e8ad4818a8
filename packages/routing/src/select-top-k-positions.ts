/**
 * The positions of the k largest values of a column, in ascending position order (core's
 * quickselect `selectTopK`, ties to the earlier position).
 *
 *   θ = k-th largest of v[0..n)   (quickselect, O(n) expected)
 *   out = { i : v_i > θ } ∪ first (k − |{v_i > θ}|) positions with v_i = θ
 *
 * This is the "top-w tokens per cluster" step of balanced routing (GR
 * `gather_cluster_attention_items`: `top_k(−dists, k=w)`; LUCID `dists.topk(k=w, dim=−2)`),
 * with ties broken toward earlier positions so results are deterministic. Positions come out
 * sorted ascending — GR sorts them "to prevent peeking into future".
 */
import { selectTopK } from '@sparse-attn/core';

/**
 * Writes the positions of the `k` largest of `values[offset .. offset + n)` to `out` in
 * ascending order and returns how many were written (`min(k, n)`). `scratch` holds ≥ n floats.
 */
export function selectTopKPositions(values: Float32Array, offset: number, n: number, k: number, out: Int32Array, scratch: Float32Array): number {
  return selectTopK(values, offset, n, k, out, scratch, 'lower');
}
