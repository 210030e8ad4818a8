/**
 * Selection: which cache entries each KV head keeps.
 *
 *   keep_g = TopK_{j < N − W}(s[g, j], C − W) ∪ [N − W, N)        (sorted ascending)
 *
 * The last `W` entries (the observation window) are always kept; the other `C − W` are the
 * highest-scoring older entries of that KV head (ties go to the more recent entry, so a selection
 * is a pure function of the scores). With `C ≥ N` everything is kept. Every head keeps the same
 * count, `min(C, N)`, which is what lets a cache compact in place (`KVCache.retain`).
 */
import { ConfigError, ShapeError } from '@sparse-attn/core';

/** A KV budget: an absolute count of entries per head, or a share of the context. */
export interface KvBudget {
  /** Entries kept per KV head (window included). */
  readonly capacity?: number | null;
  /** Share of the context kept per KV head, in (0, 1]; overrides `capacity` when set (kvpress's `1 − compression_ratio`). */
  readonly keepRatio?: number | null;
}

/**
 * The entries per head a budget keeps for a context of `length` entries with a protected window
 * of `window`: `floor(length · keepRatio)` or `capacity`, never below the window (a window longer
 * than the budget is the degenerate case kvpress#61/#134 report; we keep the window whole) and
 * never above `length`.
 */
export function resolveCapacity(budget: KvBudget, length: number, window: number): number {
  const ratio = budget.keepRatio ?? null;
  let capacity: number;
  if (ratio !== null) {
    if (!(ratio > 0 && ratio <= 1)) throw new ConfigError(`keepRatio must be in (0, 1], got ${ratio}`);
    capacity = Math.floor(length * ratio);
  } else {
    const c = budget.capacity ?? null;
    if (c === null) throw new ConfigError('a KV budget needs capacity or keepRatio');
    if (!(Number.isInteger(c) && c >= 1)) throw new ConfigError(`capacity must be a positive integer, got ${c}`);
    capacity = c;
  }
  return Math.min(length, Math.max(capacity, Math.min(window, length), 1));
}

/**
 * Top-`count` indices of `scores[offset .. offset + n)` (relative to `offset`), ascending. Ties
 * go to the larger index.
 */
export function topIndices(scores: ArrayLike<number>, offset: number, n: number, count: number): Int32Array {
  if (count >= n) return Int32Array.from({ length: Math.max(0, n) }, (_, i) => i);
  if (count <= 0) return new Int32Array(0);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => scores[offset + b]! - scores[offset + a]! || b - a);
  return order.subarray(0, count).sort();
}

/**
 * Kept entries of every row (`rows` = batch · kvHeads) of a `[rows, N − window]` score array,
 * for a cache of `length` = N entries: sorted, unique, in `[0, N)`, `min(capacity, N)` each, the
 * last `window` entries always among them.
 */
export function selectKeptEntries(scores: Float32Array, rows: number, length: number, window: number, capacity: number): Int32Array[] {
  const w = Math.min(window, length);
  const scored = length - w;
  if (scores.length < rows * scored) throw new ShapeError(`selectKeptEntries: ${scores.length} scores for ${rows} rows × ${scored} scored entries`);
  if (!(Number.isInteger(capacity) && capacity >= 1)) throw new ConfigError(`capacity must be a positive integer, got ${capacity}`);
  if (capacity < w && capacity < length) throw new ConfigError(`capacity ${capacity} is smaller than the protected window ${w}: the window alone would not fit`);
  const keepCount = Math.min(capacity, length);
  const out: Int32Array[] = [];
  for (let r = 0; r < rows; r++) {
    if (keepCount === length) {
      out.push(Int32Array.from({ length }, (_, i) => i));
      continue;
    }
    const top = topIndices(scores, r * scored, scored, keepCount - w);
    const keep = new Int32Array(keepCount);
    keep.set(top);
    for (let i = 0; i < w; i++) keep[top.length + i] = scored + i;
    out.push(keep);
  }
  return out;
}

/**
 * PyramidKV's per-layer budgets (kvpress `PyramidKVPress`, after KVCache-Factory): with
 * `C = capacity`, `min = (C − w) / β`, `max = 2(C − w) − min` (capped at `N − w`, `min`
 * recomputed), layer `l` keeps `w + max − l · (max − min) / (L − 1)` entries, a line falling
 * with depth whose mean is `C`. Rounded by largest remainder so the budgets **sum to exactly
 * `L · C`** (the reference rounds each layer, which can miss the total by a few entries). When the
 * pyramid cannot be built (the reference's check `N ≥ max ≥ min ≥ w` fails; with β = 20 that needs
 * `C − w ≥ 20 w`) every layer gets `C`, SnapKV's budget, as
 * in the reference.
 */
export function pyramidBudgets(length: number, capacity: number, window: number, layers: number, beta = 20): number[] {
  if (!(Number.isInteger(layers) && layers >= 1)) throw new ConfigError(`layers must be a positive integer, got ${layers}`);
  if (!(beta > 0)) throw new ConfigError(`beta must be positive, got ${beta}`);
  const flat = () => Array.from({ length: layers }, () => Math.min(capacity, length));
  if (capacity >= length || layers === 1) return flat();
  const extra = capacity - window;
  let minNum = extra / beta;
  let maxNum = 2 * extra - minNum;
  if (maxNum > length - window) {
    maxNum = length - window;
    minNum = 2 * extra - maxNum;
  }
  if (!(length >= maxNum && maxNum >= minNum && minNum >= window && extra > 0)) return flat();
  const exact = Array.from({ length: layers }, (_, l) => window + maxNum - (l * (maxNum - minNum)) / (layers - 1));
  const floors = exact.map((x) => Math.floor(x));
  let missing = layers * capacity - floors.reduce((a, b) => a + b, 0);
  const order = exact.map((x, l) => ({ l, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.l - b.l);
  for (const { l } of order) {
    if (missing <= 0) break;
    floors[l]!++;
    missing--;
  }
  return floors.map((x) => Math.min(length, Math.max(x, window)));
}
