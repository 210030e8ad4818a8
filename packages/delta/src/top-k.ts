/**
 * Kernel: exact top-k by score in O(n) expected time (quickselect for the k-th largest value,
 * then one ascending pass), ties broken toward the lower index, NaN ranked as −∞.
 *
 *   θ = k-th largest of v;  keep {i : v_i > θ} ∪ (the lowest-index {i : v_i = θ} until k are kept)
 *
 * The result is sorted ascending. Shared by DELTA's page selector and TidalDecode's token
 * selector, whose lists reach 4 096 pages / 65 536 tokens at 64k context.
 */
import { ConfigError, ShapeError } from '@sparse-attn/core';

/**
 * Indices of the `min(length, k)` largest of `values[offset .. offset + length)` (relative to
 * `offset`), ties to the lower index, NaN treated as −∞, sorted ascending.
 */
export function topKIndices(values: ArrayLike<number>, k: number, offset = 0, length = values.length - offset): Int32Array {
  if (!(Number.isInteger(k) && k >= 0)) throw new ConfigError(`topKIndices: k must be a non-negative integer, got ${k}`);
  if (!(offset >= 0 && length >= 0 && offset + length <= values.length)) throw new ShapeError(`topKIndices: range [${offset}, ${offset + length}) outside ${values.length} values`);
  const keep = Math.min(length, k);
  if (keep === length) return Int32Array.from({ length }, (_, i) => i);
  const out = new Int32Array(keep);
  if (keep === 0) return out;
  const copy = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    const x = values[offset + i]!;
    copy[i] = Number.isNaN(x) ? -Infinity : x;
  }
  const threshold = kthSmallest(copy.slice(), length - keep);
  let above = 0;
  for (let i = 0; i < length; i++) if (copy[i]! > threshold) above++;
  let ties = keep - above;
  let at = 0;
  for (let i = 0; i < length && at < keep; i++) {
    const x = copy[i]!;
    if (x > threshold) out[at++] = i;
    else if (x === threshold && ties > 0) {
      out[at++] = i;
      ties--;
    }
  }
  return out;
}

/** The element of rank `rank` (0-based, ascending) of `a`; reorders `a`. Iterative quickselect. */
function kthSmallest(a: Float64Array, rank: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    // Median of three as the pivot keeps sorted and reversed inputs linear.
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
