/**
 * Deterministic top-k over a score array: the `k` highest scores, ties broken toward the
 * lower index. Every selector in this package ranks through this one function so prefill and
 * decode (which score the same candidates with the same floats) pick identical sets.
 */

/** Scratch for {@link topKIndices}: a binary min-heap of candidate indices, reused across calls. */
export class TopKScratch {
  heap: Int32Array;

  constructor(capacity = 64) {
    this.heap = new Int32Array(Math.max(1, capacity));
  }
}

/** True when candidate `a` ranks below candidate `b` (lower score, or equal score and higher index). */
function ranksBelow(scores: ArrayLike<number>, a: number, b: number): boolean {
  const sa = scores[a]!;
  const sb = scores[b]!;
  return sa < sb || (sa === sb && a > b);
}

/**
 * Writes the indices of the `k` best entries among `candidates[0..count)` (indices into
 * `scores`) into `out`, sorted ascending by index, and returns how many were written
 * (`min(k, count)`). O(count · log k) time, O(k) scratch; never sorts the whole candidate list.
 */
export function topKIndices(
  scores: ArrayLike<number>,
  candidates: ArrayLike<number>,
  count: number,
  k: number,
  out: Int32Array | number[],
  scratch: TopKScratch = new TopKScratch(k),
): number {
  const kk = Math.min(k, count);
  if (kk <= 0) return 0;
  if (scratch.heap.length < kk) scratch.heap = new Int32Array(kk);
  const heap = scratch.heap;
  let size = 0;
  for (let c = 0; c < count; c++) {
    const x = candidates[c]!;
    if (size < kk) {
      // Sift up: the heap root is the weakest kept candidate.
      let i = size++;
      heap[i] = x;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!ranksBelow(scores, heap[i]!, heap[parent]!)) break;
        const t = heap[i]!;
        heap[i] = heap[parent]!;
        heap[parent] = t;
        i = parent;
      }
    } else if (ranksBelow(scores, heap[0]!, x)) {
      heap[0] = x;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < size && ranksBelow(scores, heap[l]!, heap[m]!)) m = l;
        if (r < size && ranksBelow(scores, heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        const t = heap[i]!;
        heap[i] = heap[m]!;
        heap[m] = t;
        i = m;
      }
    }
  }
  for (let i = 0; i < kk; i++) out[i] = heap[i]!;
  sortAscending(out, kk);
  return kk;
}

/** Insertion sort of `a[0..n)` ascending: n is a budget (tens to hundreds), not a sequence length. */
export function sortAscending(a: Int32Array | number[], n: number): void {
  if (n > 64 && a instanceof Int32Array) {
    a.subarray(0, n).sort();
    return;
  }
  if (n > 64) {
    const sorted = a.slice(0, n).sort((x, y) => x - y);
    for (let i = 0; i < n; i++) a[i] = sorted[i]!;
    return;
  }
  for (let i = 1; i < n; i++) {
    const x = a[i]!;
    let j = i - 1;
    while (j >= 0 && a[j]! > x) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = x;
  }
}

/** Sorts `a[0..n)` ascending and removes duplicates in place; returns the new length. */
export function sortUnique(a: Int32Array | number[], n: number): number {
  sortAscending(a, n);
  let w = 0;
  for (let i = 0; i < n; i++) {
    if (w === 0 || a[i]! !== a[w - 1]!) a[w++] = a[i]!;
  }
  return w;
}
