/**
 * Kernel: 1-D pooling of per-key importance scores along the sequence, as the references do it.
 *
 *   symmetric (SnapKV / SpecKV / PyramidKV, `F.max_pool1d` / `F.avg_pool1d`, padding k//2, stride 1, odd k):
 *     max: p[i] = max_{j ∈ [i−k//2, i+k//2] ∩ [0, n)} s[j]            (implicit −∞ padding)
 *     avg: p[i] = (Σ_{j ∈ [i−k//2, i+k//2] ∩ [0, n)} s[j]) / k          (zero padding counted, count_include_pad)
 *   center (SpecPC, `F.pad(s, ((k−1)//2, k−1−(k−1)//2))` with zeros, then the pool, any k):
 *     max: p[i] = max(s[j] for j ∈ [i−(k−1)//2, i+k−1−(k−1)//2] ∩ [0, n), plus 0 if the window leaves [0, n))
 *     avg: p[i] = (Σ s[j] over the same clipped window) / k
 *
 * Max pooling runs a monotone deque (O(n) per row whatever k is); average pooling a running sum.
 */
import { ConfigError } from '@sparse-attn/core';

/** How scores are smoothed along the sequence before top-k. */
export type PoolingKind = 'max' | 'avg' | 'none';

/**
 * Sliding-window pooling of one row: `out[i]` pools `row[i − left .. i + right]` clipped to the
 * row; when the window leaves the row, `padValue` joins a max (−∞ for torch's implicit padding,
 * 0 for an explicit zero pad) and contributes 0 to an average, which always divides by
 * `left + right + 1`.
 */
export function poolRow(row: ArrayLike<number>, n: number, left: number, right: number, kind: Exclude<PoolingKind, 'none'>, padValue: number, out: Float32Array, outOffset = 0): void {
  const width = left + right + 1;
  if (kind === 'avg') {
    let sum = 0;
    // Window of out[0] is [−left, right].
    for (let j = 0; j <= Math.min(right, n - 1); j++) sum += row[j]!;
    for (let i = 0; i < n; i++) {
      out[outOffset + i] = sum / width;
      const leaving = i - left;
      if (leaving >= 0) sum -= row[leaving]!;
      const entering = i + right + 1;
      if (entering < n) sum += row[entering]!;
    }
    return;
  }
  // Monotone deque of indices whose values decrease from front to back.
  const deque = new Int32Array(n);
  let head = 0;
  let tail = 0;
  let next = 0;
  for (let i = 0; i < n; i++) {
    const end = Math.min(n - 1, i + right);
    for (; next <= end; next++) {
      const x = row[next]!;
      while (tail > head && row[deque[tail - 1]!]! <= x) tail--;
      deque[tail++] = next;
    }
    while (deque[head]! < i - left) head++;
    let m = row[deque[head]!]!;
    if ((i - left < 0 || i + right >= n) && padValue > m) m = padValue;
    out[outOffset + i] = m;
  }
}

/**
 * Symmetric pooling of `rows` rows of `n` scores (`[rows, n]`), the SnapKV/SpecKV/PyramidKV
 * smoothing: odd `kernel`, padding `kernel // 2`, stride 1, so the output has `n` columns.
 * `kernel` 1 or `kind: 'none'` returns a copy.
 */
export function poolScores(scores: Float32Array, rows: number, n: number, kernel: number, kind: PoolingKind): Float32Array {
  if (!(Number.isInteger(kernel) && kernel >= 1 && kernel % 2 === 1)) {
    throw new ConfigError(`pooling kernel must be a positive odd integer (symmetric padding kernel // 2 keeps the length; the SpecKV reference asserts it), got ${kernel}`);
  }
  if (kind === 'none' || kernel === 1 || n === 0) return scores.slice(0, rows * n);
  const out = new Float32Array(rows * n);
  const half = kernel >> 1;
  for (let r = 0; r < rows; r++) poolRow(scores.subarray(r * n, (r + 1) * n), n, half, half, kind, -Infinity, out, r * n);
  return out;
}

/**
 * SpecPC's "center pool" of one score row: zero-pad `(k − 1) // 2` on the left and the rest on
 * the right, then pool with window `k`, stride 1 (any `k ≥ 1`, even ones included).
 */
export function centerPool(scores: ArrayLike<number>, n: number, kernel: number, kind: PoolingKind): Float32Array {
  if (!(Number.isInteger(kernel) && kernel >= 1)) throw new ConfigError(`center-pool kernel must be a positive integer, got ${kernel}`);
  const out = new Float32Array(n);
  if (kind === 'none' || kernel === 1) {
    for (let i = 0; i < n; i++) out[i] = scores[i]!;
    return out;
  }
  const left = (kernel - 1) >> 1;
  poolRow(scores, n, left, kernel - 1 - left, kind, 0, out);
  return out;
}
