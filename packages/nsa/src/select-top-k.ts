/**
 * Top-k selection by quickselect (core's `selectTopK`), with a scratch buffer reused across calls.
 *
 *   I = argtop_k { s_j : 0 ≤ j < n },   returned as ascending indices
 *
 * Ties at the k-th largest value are broken toward the **larger index** (the more recent key or
 * block), so a selection is a pure function of the scores: prefill and decode, which compute
 * bit-identical scores, pick identical sets. Expected O(n) time per call with O(n) scratch that
 * is reused across calls (one selector per method call, never per query).
 */
import { selectTopK } from '@sparse-attn/core';

/** Reusable top-k selector (owns its scratch buffer). */
export class TopKSelector {
  private scratch: Float64Array;

  /** `capacity` sizes the scratch up front; it grows on demand. */
  constructor(capacity = 64) {
    this.scratch = new Float64Array(Math.max(1, capacity));
  }

  /**
   * Writes the indices of the `k` largest of `scores[0..n)` into `out` in ascending order and
   * returns how many were written (`min(k, n)`, 0 when `k ≤ 0`). Scores may be `+Infinity`
   * (forced entries); they must not be NaN (inputs are validated finite upstream).
   */
  select(scores: ArrayLike<number>, n: number, k: number, out: Int32Array): number {
    if (k <= 0 || n <= 0) return 0;
    if (k >= n) {
      for (let j = 0; j < n; j++) out[j] = j;
      return n;
    }
    if (this.scratch.length < n) this.scratch = new Float64Array(Math.max(n, 2 * this.scratch.length));
    return selectTopK(scores, 0, n, k, out, this.scratch, 'higher');
  }
}
