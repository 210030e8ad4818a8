/**
 * Selection: SpecPC's prompt-token choice (spec §3.2, `specpc_select_input_token_indices`).
 *
 *   s   = centerPool(score, k)                                     (zero pad ((k−1)//2, k−1−(k−1)//2))
 *   top = argsort(s) descending (ties: lower index first)           (importance order)
 *   off = [−⌊(m−1)/2⌋ … m−1−⌊(m−1)/2⌋] ordered by |off| (negative first on ties)
 *   ind = unique-keep-order( clamp(top_i + off_j, 0, N−1) for i, j )  (each top token, then its neighbours)
 *   ind = unique-keep-order( [N−W … N−1] ‖ ind )                    (protected tail window first)
 *   I   = sort(ind[:C])
 *
 * With `C ≥ N` every token is kept.
 */
import { ConfigError } from '@sparse-attn/core';
import { centerPool, type PoolingKind } from './pool-scores.js';

/** Options of {@link selectPromptTokens}. */
export interface PromptSelectionOptions {
  /** Tokens kept (C). */
  readonly capacity: number;
  /** Protected tail window (W). */
  readonly window: number;
  /** Center-pool kernel (k). */
  readonly kernel: number;
  /** Neighbours kept with each top token, itself included (m); default `kernel`; 0 keeps tokens alone. */
  readonly neighbors?: number | null;
  readonly pooling: PoolingKind;
}

/** The sorted prompt indices SpecPC keeps for per-token scores `scores[0..n)`. */
export function selectPromptTokens(scores: ArrayLike<number>, n: number, options: PromptSelectionOptions): Int32Array {
  const { capacity, window } = options;
  if (!(Number.isInteger(capacity) && capacity >= 1)) throw new ConfigError(`capacity must be a positive integer, got ${capacity}`);
  if (capacity >= n) return Int32Array.from({ length: n }, (_, i) => i);
  if (!(Number.isInteger(window) && window >= 0)) throw new ConfigError(`window must be a non-negative integer, got ${window}`);
  if (window > n) throw new ConfigError(`window (${window}) cannot be greater than the prompt length (${n})`);
  const pooled = centerPool(scores, n, options.kernel, options.pooling);
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => pooled[b]! - pooled[a]! || a - b);
  const top = order.subarray(0, capacity);
  const m = options.neighbors ?? options.kernel;
  if (!(Number.isInteger(m) && m >= 0)) throw new ConfigError(`neighbors must be a non-negative integer, got ${m}`);
  const lo = -((m - 1) >> 1);
  const offsets = m > 0 ? Array.from({ length: m }, (_, i) => lo + i).sort((a, b) => Math.abs(a) - Math.abs(b) || a - b) : [0];
  const seen = new Uint8Array(n);
  const kept: number[] = [];
  const push = (j: number) => {
    if (kept.length < capacity && !seen[j]) {
      seen[j] = 1;
      kept.push(j);
    }
  };
  for (let j = n - window; j < n; j++) push(j);
  for (const t of top) {
    if (kept.length >= capacity) break;
    for (const o of offsets) push(Math.min(n - 1, Math.max(0, t + o)));
  }
  return Int32Array.from(kept).sort();
}
