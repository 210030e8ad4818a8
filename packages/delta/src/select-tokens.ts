/**
 * Kernel: TidalDecode's token selection at a selection layer.
 *
 *   for each query head h:  sel_h = top-k_t (q_h · k_t · scale),  k = min(N, tokenBudget)
 *
 * on raw logits (ranked like the softmax), token granularity, one list per query head (no
 * unified head selection, no recency window), ties to the lower token index, sorted ascending.
 */
import { ConfigError, SelectionBuilder, ShapeError, type Selection } from '@sparse-attn/core';
import { topKIndices } from './top-k.js';

/**
 * TidalDecode's per-query-head token selection for one query from its per-head logits laid out
 * `[queryHeads, stride]`: a token-level selection with `headScope: 'query'`.
 */
export function tokenSelection(logits: ArrayLike<number>, queryHeads: number, keySeq: number, budget: number, stride = keySeq): Selection {
  if (stride < keySeq || logits.length < (queryHeads - 1) * stride + keySeq) {
    throw new ShapeError(`tokenSelection: ${logits.length} logits cannot hold ${queryHeads} heads × ${keySeq} keys (row stride ${stride})`);
  }
  if (!(Number.isInteger(budget) && budget >= 1)) throw new ConfigError(`tokenSelection: budget must be a positive integer, got ${budget}`);
  const keep = Math.min(keySeq, budget);
  const builder = new SelectionBuilder({ kind: 'token', headScope: 'query', batch: 1, heads: queryHeads, rows: 1, keySeq }, queryHeads * keep);
  for (let h = 0; h < queryHeads; h++) builder.pushRow(topKIndices(logits, budget, h * stride, keySeq));
  return builder.finish();
}

/** The last `min(keySeq, budget)` tokens for every query head (placeholder for sparse layers with no source). */
export function recentTokenSelection(queryHeads: number, keySeq: number, budget: number): Selection {
  const keep = Math.min(keySeq, budget);
  const builder = new SelectionBuilder({ kind: 'token', headScope: 'query', batch: 1, heads: queryHeads, rows: 1, keySeq }, queryHeads * keep);
  for (let h = 0; h < queryHeads; h++) builder.pushRange(keySeq - keep, keySeq);
  return builder.finish();
}
