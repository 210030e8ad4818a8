/**
 * Kernel: top-k selection by quickselect.
 *
 *   I = argtop_k { s_j : 0 ≤ j < n },   returned as ascending indices
 *
 * Ties at the k-th largest value are broken toward the **larger index** (the more recent key or
 * block), so a selection is a pure function of the scores: prefill and decode, which compute
 * bit-identical scores, pick identical sets. Expected O(n) time per call with O(n) scratch that
 * is reused across calls (one selector per method call, never per query).
 */

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
    const a = this.scratch;
    for (let j = 0; j < n; j++) a[j] = scores[j]!;
    const kth = quickselect(a, n, n - k);
    let greater = 0;
    for (let j = 0; j < n; j++) if (scores[j]! > kth) greater++;
    // Take the `k - greater` ties with the largest indices: find where they start.
    let ties = k - greater;
    let tieStart = n;
    for (let j = n - 1; j >= 0 && ties > 0; j--) {
      if (scores[j]! === kth) {
        tieStart = j;
        ties--;
      }
    }
    let count = 0;
    for (let j = 0; j < n; j++) {
      const s = scores[j]!;
      if (s > kth || (s === kth && j >= tieStart)) out[count++] = j;
    }
    return count;
  }
}

/** Value of ascending rank `rank` in `a[0..n)` (reorders `a`); Hoare partition, median-of-three pivot. */
function quickselect(a: Float64Array, n: number, rank: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const x = a[lo]!;
    const y = a[mid]!;
    const z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (rank <= j) hi = j;
    else if (rank >= i) lo = i;
    else return a[rank]!;
  }
  return a[lo]!;
}
