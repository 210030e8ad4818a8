import { sparseAttention, type AttentionInput, type AttentionResult, type AttentionStats } from '@sparse-attn/core';
import type { RowParts, UnionLayout } from './row-parts.js';

/**
 * Runs the attention of routed rows through core's exact sparse executor.
 *
 * - `union`: one executor call over the union selection (what the result reports).
 * - `mean`: one executor call per part rank, outputs summed and divided by each row's part
 *   count — LUCID `scatter_mean` without its 1e-5 denominator epsilon (rows with no part stay 0).
 *   The reported selection is still the union, so the bench's mass recall sees every key used;
 *   stats count the pairs of every pass.
 *
 * `input.k`/`input.v` are the attention keys/values (the shared-QK keys in that mode).
 */
export function runRoutedAttention(input: AttentionInput, parts: RowParts, layout: UnionLayout, combine: 'union' | 'mean', selectionMs: number): AttentionResult {
  const options = { selectionMs, validateSelection: false, checkFinite: false } as const;
  const union = parts.toUnionSelection(layout);
  const passes = combine === 'mean' ? parts.maxParts() : 1;
  if (passes <= 1) {
    const { output, selection, stats, backend } = sparseAttention(input, union, options);
    return { output, selection, stats, backend };
  }
  let output: Float32Array | undefined;
  let shape: readonly number[] = [];
  let stats: AttentionStats | undefined;
  let backend: AttentionResult['backend'] | undefined;
  for (let p = 0; p < passes; p++) {
    const pass = sparseAttention(input, parts.toPassSelection(p, layout), options);
    if (!output || !stats) {
      output = pass.output.data;
      shape = pass.output.shape;
      stats = pass.stats;
      backend = pass.backend;
      continue;
    }
    for (let i = 0; i < output.length; i++) output[i]! += pass.output.data[i]!;
    stats = {
      ...stats,
      pairs: stats.pairs + pass.stats.pairs,
      kvBytesRead: stats.kvBytesRead + pass.stats.kvBytesRead,
      attentionMs: stats.attentionMs + pass.stats.attentionMs,
    };
  }
  const valueDim = shape[3]!;
  for (let row = 0; row < parts.totalRows; row++) {
    const count = parts.partCount(row);
    if (count <= 1) continue;
    const inv = 1 / count;
    for (let c = row * valueDim; c < (row + 1) * valueDim; c++) output![c]! *= inv;
  }
  const s = stats!;
  return {
    output: { data: output!, shape },
    selection: union,
    stats: { ...s, density: s.densePairs === 0 ? 0 : s.pairs / s.densePairs },
    backend: backend!,
  };
}
