/**
 * One layer's KV compression: score → pool → select, the kvpress `ScorerPress.compress` pipeline
 * (application is left to the caller: evict from a cache, or attend over the kept set).
 */
import { dims4, type Tensor } from '@sparse-attn/core';
import { scoreKeys, type KvScorerName, type ScorerOptions } from './kv-scorers.js';
import { poolScores, type PoolingKind } from './pool-scores.js';
import { selectKeptEntries } from './select-kept-entries.js';

/** How one layer is compressed. */
export interface LayerCompression extends ScorerOptions {
  readonly scorer: KvScorerName;
  /** Trailing entries always kept (the observation window; SpecKV: `w + L + 1`). */
  readonly window: number;
  /** Entries kept per KV head, window included (already resolved for this layer and length). */
  readonly capacity: number;
  readonly pooling: PoolingKind;
  /** Odd pooling kernel. */
  readonly kernel: number;
  /** Observer queries (local rows of `q`); default the window's own queries. */
  readonly observers?: ArrayLike<number>;
  /** Visible keys per observer; default causal by cache index. */
  readonly limits?: ArrayLike<number>;
}

/** Kept entries and the scores they were chosen from. */
export interface LayerKeep {
  /** Sorted kept cache indices per row (`b · kvHeads + g`), `min(capacity, N)` each. */
  readonly keep: Int32Array[];
  /** Pooled scores `[rows, N − window]`, or empty when nothing had to be dropped. */
  readonly scores: Float32Array;
  /** Milliseconds spent scoring and selecting. */
  readonly selectionMs: number;
}

/**
 * Chooses the entries each KV head keeps for a cache of keys `k` (`[B, Hkv, N, D]`) observed by
 * queries `q` (`[B, Hq, T, D]`, aligned to the end of the keys). Nothing is scored when the
 * budget covers every entry.
 */
export function compressLayer(q: Tensor, k: Tensor, scale: number, spec: LayerCompression): LayerKeep {
  const started = performance.now();
  const kd = dims4(k, 'k');
  const rows = kd.batch * kd.heads;
  const length = kd.seq;
  const window = Math.min(spec.window, length);
  const scoredKeys = length - window;
  if (spec.capacity >= length) {
    return { keep: Array.from({ length: rows }, () => Int32Array.from({ length }, (_, i) => i)), scores: new Float32Array(0), selectionMs: performance.now() - started };
  }
  const raw = scoreKeys(spec.scorer, { q, k, scale, scoredKeys, observers: spec.observers, limits: spec.limits }, spec);
  const scores = poolScores(raw, rows, scoredKeys, spec.kernel, spec.pooling);
  const keep = selectKeptEntries(scores, rows, length, window, spec.capacity);
  return { keep, scores, selectionMs: performance.now() - started };
}
