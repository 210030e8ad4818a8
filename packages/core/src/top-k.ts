/**
 * Kernel: exact top-k by quickselect, the selection step shared by every family (NSA and MoBA
 * block top-n, routing's top-w tokens per cluster, DELTA's page and TidalDecode's token top-k).
 *
 *   θ = k-th largest of v[0..n)   (iterative quickselect, median-of-three pivot, O(n) expected)
 *   I = { i : v_i > θ } ∪ (the ties v_i = θ nearest the chosen end, until |I| = k)
 *
 * Indices come out ascending. Ties are broken deterministically toward the lower index
 * (`'lower'`, the earlier key) or the higher one (`'higher'`, the more recent key), so a selection
 * is a pure function of its scores: a prefill and a decode step that compute bit-identical scores
 * pick identical sets. NaN scores rank below every number.
 */

/** Which of several scores equal to the k-th largest are kept. */
export type TopKTieBreak = 'lower' | 'higher';

/**
 * Value of ascending rank `rank` in `a[0..n)`; reorders `a[0..n)` in place (Hoare partition with
 * a median-of-three pivot, which keeps sorted and reversed inputs linear). `a` must hold no NaN.
 */
export function quickselect(a: Float32Array | Float64Array, n: number, rank: number): number {
  let lo = 0;
  let hi = n - 1;
  while (hi > lo) {
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
  return a[rank]!;
}

/**
 * Writes the indices (relative to `offset`) of the `k` largest of `values[offset .. offset + n)`
 * to `out`, ascending, and returns how many were written: `min(k, n)`, 0 when `k ≤ 0` or `n ≤ 0`.
 * `scratch` must hold at least `n` numbers; it is overwritten. Allocates nothing, so callers keep
 * one scratch per method call and select once per row.
 */
export function selectTopK(
  values: ArrayLike<number>,
  offset: number,
  n: number,
  k: number,
  out: Int32Array,
  scratch: Float32Array | Float64Array,
  tieBreak: TopKTieBreak = 'lower',
): number {
  if (k <= 0 || n <= 0) return 0;
  if (k >= n) {
    for (let i = 0; i < n; i++) out[i] = i;
    return n;
  }
  for (let i = 0; i < n; i++) {
    const v = values[offset + i]!;
    scratch[i] = v === v ? v : -Infinity;
  }
  const threshold = quickselect(scratch, n, n - k);
  // Counts and comparisons read the scores through the same NaN → −∞ mapping as `scratch`.
  const score = (i: number): number => {
    const v = values[offset + i]!;
    return v === v ? v : -Infinity;
  };
  let greater = 0;
  for (let i = 0; i < n; i++) if (score(i) > threshold) greater++;
  let ties = k - greater;
  // Ties are taken from the chosen end: from the front for 'lower', else from where the last
  // `ties` equal scores start.
  let tieStart = 0;
  if (tieBreak === 'higher') {
    tieStart = n;
    for (let i = n - 1; i >= 0 && ties > 0; i--) {
      if (score(i) === threshold) {
        tieStart = i;
        ties--;
      }
    }
    ties = Number.POSITIVE_INFINITY;
  }
  let written = 0;
  for (let i = 0; i < n; i++) {
    const v = score(i);
    if (v > threshold || (v === threshold && i >= tieStart && ties-- > 0)) out[written++] = i;
  }
  return written;
}
