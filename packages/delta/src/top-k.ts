/**
 * Exact top-k by score in O(n) expected time (core's quickselect `selectTopK`), ties broken
 * toward the lower index, NaN ranked as −∞; this wrapper validates and allocates the result.
 *
 *   θ = k-th largest of v;  keep {i : v_i > θ} ∪ (the lowest-index {i : v_i = θ} until k are kept)
 *
 * The result is sorted ascending. Shared by DELTA's page selector and TidalDecode's token
 * selector, whose lists reach 4 096 pages / 65 536 tokens at 64k context.
 */
import { ConfigError, ShapeError, selectTopK } from '@sparse-attn/core';

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
  selectTopK(values, offset, length, keep, out, new Float64Array(length), 'lower');
  return out;
}
