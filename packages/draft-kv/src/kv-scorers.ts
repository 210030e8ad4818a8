/**
 * Scoring: pure functions from one layer's tensors to per-KV-head key scores `[batch · kvHeads,
 * scoredKeys]` (higher is kept) — kvpress's `ScorerPress.score` seam. Every method of this package
 * is one of these scorers plus a selection rule ({@link selectKeptEntries}) and an application
 * (evict from a cache, or attend over the kept set).
 *
 * | scorer | score of key j | from |
 * | --- | --- | --- |
 * | `observed-attention` | reduce over the group and the observer queries of softmax attention | SnapKV, SpecKV, PyramidKV |
 * | `accumulated-attention` | Σ over every query of the call of its attention to j (group summed) | H2O (kvpress ObservedAttention without the count normalisation) |
 * | `last-query` | the last query's attention, averaged over the group | TOVA |
 * | `key-norm` | −‖k_j‖ | kvpress KnormPress |
 * | `random` | seeded uniform | kvpress RandomPress |
 * | `sink-recent` | +∞ for the first `sinks` keys, else the key's index (recency) | StreamingLLM |
 */
import { ConfigError, Rng, dims4, rowOffset, type Tensor } from '@sparse-attn/core';
import { observerScores, type ScoreReduction } from './observer-scores.js';

/** Names of the built-in scorers. */
export type KvScorerName = 'observed-attention' | 'accumulated-attention' | 'last-query' | 'key-norm' | 'random' | 'sink-recent';

/** Every scorer name, for sweeps and tests. */
export const kvScorerNames: readonly KvScorerName[] = ['observed-attention', 'accumulated-attention', 'last-query', 'key-norm', 'random', 'sink-recent'];

/** What a scorer sees of one layer (kvpress's `compress` arguments, post-RoPE). */
export interface LayerTensors {
  /** Queries of the call, `[B, Hq, T, D]`, aligned to the end of the keys. */
  readonly q: Tensor;
  /** Every cache entry's key, `[B, Hkv, N, D]` (a padded cache view is fine). */
  readonly k: Tensor;
  /** Softmax scale. */
  readonly scale: number;
  /** Keys to score: `[0, scoredKeys)`; the rest is the protected window. */
  readonly scoredKeys: number;
  /** Observer queries (local rows of `q`) for `observed-attention`; default the last `N − scoredKeys` (the window's own queries). */
  readonly observers?: ArrayLike<number>;
  /** Visible keys per observer; default causal by cache index. */
  readonly limits?: ArrayLike<number>;
}

/** Per-scorer options. */
export interface ScorerOptions {
  /** Group/observer reduction of `observed-attention`. Default `max`. */
  readonly reduction?: ScoreReduction;
  /** Attention sinks of `sink-recent`. Default 4. */
  readonly sinks?: number;
  /** Seed of `random`. Default 0. */
  readonly seed?: number;
}

/** Scores `[batch · kvHeads, scoredKeys]` of `scorer` on a layer's tensors. */
export function scoreKeys(scorer: KvScorerName, t: LayerTensors, options: ScorerOptions = {}): Float32Array {
  const kd = dims4(t.k, 'k');
  const qd = dims4(t.q, 'q');
  const rows = kd.batch * kd.heads;
  const n = t.scoredKeys;
  switch (scorer) {
    case 'observed-attention': {
      const window = kd.seq - n;
      const observers = t.observers ?? Int32Array.from({ length: Math.min(qd.seq, Math.max(1, window)) }, (_, i) => qd.seq - Math.min(qd.seq, Math.max(1, window)) + i);
      return observerScores(t.q, t.k, { observers, limits: t.limits, scale: t.scale, scoredKeys: n, reduction: options.reduction ?? 'max' });
    }
    case 'accumulated-attention':
      return observerScores(t.q, t.k, { scale: t.scale, scoredKeys: n, reduction: 'sum' });
    case 'last-query':
      return observerScores(t.q, t.k, { observers: [qd.seq - 1], scale: t.scale, scoredKeys: n, reduction: 'mean' });
    case 'key-norm': {
      const out = new Float32Array(rows * n);
      for (let b = 0; b < kd.batch; b++) {
        for (let h = 0; h < kd.heads; h++) {
          for (let j = 0; j < n; j++) {
            const o = rowOffset(kd, b, h, j);
            let s = 0;
            for (let c = 0; c < kd.dim; c++) s += t.k.data[o + c]! * t.k.data[o + c]!;
            out[(b * kd.heads + h) * n + j] = -Math.sqrt(s);
          }
        }
      }
      return out;
    }
    case 'random': {
      const rng = new Rng(options.seed ?? 0);
      const out = new Float32Array(rows * n);
      for (let i = 0; i < out.length; i++) out[i] = rng.next();
      return out;
    }
    case 'sink-recent': {
      const sinks = options.sinks ?? 4;
      if (!(Number.isInteger(sinks) && sinks >= 0)) throw new ConfigError(`sinks must be a non-negative integer, got ${sinks}`);
      const out = new Float32Array(rows * n);
      for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) out[r * n + j] = j < sinks ? Infinity : j;
      return out;
    }
    default:
      throw new ConfigError(`unknown KV scorer '${String(scorer)}'; expected one of ${kvScorerNames.join(', ')}`);
  }
}
