/**
 * Kernel: the positions of the k largest values of a column, in ascending position order.
 *
 *   θ = k-th largest of v[0..n)   (quickselect, O(n) expected)
 *   out = { i : v_i > θ } ∪ first (k − |{v_i > θ}|) positions with v_i = θ
 *
 * This is the "top-w tokens per cluster" step of balanced routing (GR
 * `gather_cluster_attention_items`: `top_k(−dists, k=w)`; LUCID `dists.topk(k=w, dim=−2)`),
 * with ties broken toward earlier positions so results are deterministic. Positions come out
 * sorted ascending — GR sorts them "to prevent peeking into future".
 */

/**
 * Writes the positions of the `k` largest of `values[offset .. offset + n)` to `out` in
 * ascending order and returns how many were written (`min(k, n)`). `scratch` holds ≥ n floats.
 */
export function selectTopKPositions(values: Float32Array, offset: number, n: number, k: number, out: Int32Array, scratch: Float32Array): number {
  if (k <= 0 || n <= 0) return 0;
  if (k >= n) {
    for (let i = 0; i < n; i++) out[i] = i;
    return n;
  }
  for (let i = 0; i < n; i++) scratch[i] = values[offset + i]!;
  const threshold = kthSmallest(scratch, n, n - k);
  let greater = 0;
  for (let i = 0; i < n; i++) if (values[offset + i]! > threshold) greater++;
  let ties = k - greater;
  let written = 0;
  for (let i = 0; i < n; i++) {
    const v = values[offset + i]!;
    if (v > threshold || (v === threshold && ties-- > 0)) out[written++] = i;
  }
  return written;
}

/** The element that would sit at index `index` if `a[0..n)` were sorted ascending (reorders `a`). */
function kthSmallest(a: Float32Array, n: number, index: number): number {
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
    if (index <= j) hi = j;
    else if (index >= i) lo = i;
    else return a[index]!;
  }
  return a[index]!;
}
