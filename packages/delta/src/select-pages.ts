/**
 * Kernel: DELTA's page scoring and selection at a Δ-layer (`del3_legacy_softmax` + `PageSelectorV2`).
 *
 *   s[t] = max_h p[h][t]                      (unified over every query head, across GQA groups)
 *   S[u] = Σ_{t ∈ page u} s[t]                (page u holds keys [u·P, min((u+1)·P, N)))
 *   keep = min(T, K) pages, T = ceil(N / P):
 *     the last min(L, keep) pages, then the highest-scoring older pages (ties → lower index),
 *   returned sorted ascending.
 *
 * NaN scores count as −∞ (reference: `nan_to_num(nan → −inf)`).
 */
import { ConfigError, SelectionBuilder, ShapeError, type Selection } from '@sparse-attn/core';
import { topKIndices } from './top-k.js';

/**
 * Page scores of one query from per-head attention probabilities laid out `[heads, stride]`
 * (the first `keySeq` entries of each head's row are used): the sum over each page of the
 * per-token maximum over heads.
 */
export function pageScores(probabilities: ArrayLike<number>, heads: number, keySeq: number, pageSize: number, stride = keySeq): Float64Array {
  if (!(Number.isInteger(pageSize) && pageSize >= 1)) throw new ConfigError(`pageScores: pageSize must be a positive integer, got ${pageSize}`);
  if (!(Number.isInteger(heads) && heads >= 1)) throw new ShapeError(`pageScores: heads must be a positive integer, got ${heads}`);
  if (stride < keySeq || probabilities.length < (heads - 1) * stride + keySeq) {
    throw new ShapeError(`pageScores: ${probabilities.length} probabilities cannot hold ${heads} heads × ${keySeq} keys (row stride ${stride})`);
  }
  const pages = Math.ceil(keySeq / pageSize);
  const scores = new Float64Array(pages);
  for (let t = 0; t < keySeq; t++) {
    let best = -Infinity;
    for (let h = 0; h < heads; h++) {
      const p = probabilities[h * stride + t]!;
      if (p > best) best = p;
    }
    // A NaN probability never wins the max; a row of NaNs leaves −∞, which the selector ranks last.
    scores[(t / pageSize) | 0]! += best;
  }
  return scores;
}

/**
 * DELTA's page selection from page scores: the last `recentPages` pages always, then the
 * highest-scoring older pages until `min(T, budget)` pages are kept, ties to the lower page
 * index; sorted ascending. `recentPages` must not exceed `budget`.
 */
export function selectPages(scores: ArrayLike<number>, budget: number, recentPages: number): Int32Array {
  if (!(Number.isInteger(budget) && budget >= 1)) throw new ConfigError(`selectPages: budget must be a positive integer, got ${budget}`);
  if (!(Number.isInteger(recentPages) && recentPages >= 0 && recentPages <= budget)) {
    throw new ConfigError(`selectPages: recentPages must be an integer in [0, budget = ${budget}], got ${recentPages}`);
  }
  const total = scores.length;
  const keep = Math.min(total, budget);
  const recent = Math.min(recentPages, keep);
  const older = total - recent;
  const out = new Int32Array(keep);
  out.set(topKIndices(scores, keep - recent, 0, older), 0);
  for (let i = 0; i < recent; i++) out[keep - recent + i] = older + i;
  return out;
}

/**
 * A block-level selection of `pages` (logical page indices, sorted) shared by every KV head,
 * for one query row over `keySeq` keys: what a DELTA sparse layer attends to.
 */
export function pageSelection(pages: ArrayLike<number>, kvHeads: number, keySeq: number, pageSize: number): Selection {
  const builder = new SelectionBuilder({ kind: 'block', blockSize: pageSize, headScope: 'kv', batch: 1, heads: kvHeads, rows: 1, keySeq }, kvHeads * pages.length);
  for (let h = 0; h < kvHeads; h++) builder.pushRow(pages);
  return builder.finish();
}

/** The last `min(T, budget)` pages of `keySeq` keys (the reference's placeholder subset). */
export function recentPages(keySeq: number, pageSize: number, budget: number): Int32Array {
  const total = Math.ceil(keySeq / pageSize);
  const keep = Math.min(total, budget);
  return Int32Array.from({ length: keep }, (_, i) => total - keep + i);
}
