/**
 * Kernel: per-KV-head key importance from the attention of observer queries (the scoring step of
 * SnapKV, SpecKV, PyramidKV, H2O's accumulation and TOVA).
 *
 *   p[h, o, j] = softmax_{j' < limit(o)} (scale · q_{h,o} · k_{g(h), j'})_j      (float64 sums, over all visible keys)
 *   s[g, j]    = reduce_{h ∈ group g, o ∈ observers} w_o · p[h, o, j],   j < scoredKeys
 *
 * with `reduce` ∈ {max, mean, sum} and optional per-observer weights `w_o`. The softmax runs over
 * every visible key (window keys included) and only the first `scoredKeys` columns are reduced,
 * exactly as `compress_kv` keeps `softmax(...)[..., :M − W']`. Logits come from core's `matmul`,
 * one GEMM per KV head and chunk of at most `CHUNK` observers, so the scratch is
 * `G · CHUNK · keySeq` floats — never keySeq × keySeq.
 */
import { ConfigError, ShapeError, dims4, matmul, rowOffset, type Tensor } from '@sparse-attn/core';

/** How the scores of several query heads and observers are combined per KV head. */
export type ScoreReduction = 'max' | 'mean' | 'sum';

/** Options of {@link observerScores}. */
export interface ObserverScoreOptions {
  /** Local query indices (rows of `q`) that observe; every row when omitted. */
  readonly observers?: ArrayLike<number>;
  /**
   * Keys visible to each observer (a prefix length, one entry per observer). Default: causal by
   * cache index, `keySeq − querySeq + i + 1` for local query `i` (queries aligned to the end of the keys).
   */
  readonly limits?: ArrayLike<number>;
  /** Softmax scale; default `1 / sqrt(headDim)`. */
  readonly scale?: number;
  /** Columns to return (keys `[0, scoredKeys)`); default every key. */
  readonly scoredKeys?: number;
  readonly reduction: ScoreReduction;
  /** Weight of each observer's probabilities (SpecPC's linearly increasing window weights). */
  readonly weights?: ArrayLike<number>;
}

/** Observers per GEMM: bounds the logit scratch to `G · CHUNK · keySeq` floats. */
const CHUNK = 64;

/**
 * Scores `[batch · kvHeads, scoredKeys]` (row `b · kvHeads + g`): how much the observer queries of
 * KV head `g`'s group attend each key. `q` is `[B, Hq, T, D]`, `k` `[B, Hkv, N, D]` (a padded
 * cache view is fine).
 */
export function observerScores(q: Tensor, k: Tensor, options: ObserverScoreOptions): Float32Array {
  const qd = dims4(q, 'q');
  const kd = dims4(k, 'k');
  if (qd.batch !== kd.batch || kd.heads === 0 || qd.heads % kd.heads !== 0 || qd.dim !== kd.dim) {
    throw new ShapeError(`observerScores: q [${q.shape.join(', ')}] and k [${k.shape.join(', ')}] do not form a (GQA) attention pair`);
  }
  const keySeq = kd.seq;
  const scored = options.scoredKeys ?? keySeq;
  if (!(Number.isInteger(scored) && scored >= 0 && scored <= keySeq)) throw new ShapeError(`observerScores: scoredKeys ${scored} outside [0, ${keySeq}]`);
  const observers = options.observers ? Int32Array.from(options.observers) : Int32Array.from({ length: qd.seq }, (_, i) => i);
  for (const o of observers) if (!(o >= 0 && o < qd.seq)) throw new ShapeError(`observerScores: observer ${o} outside the ${qd.seq} queries`);
  const limits = options.limits ? Int32Array.from(options.limits) : Int32Array.from(observers, (o) => keySeq - qd.seq + o + 1);
  if (limits.length !== observers.length) throw new ShapeError(`observerScores: ${limits.length} limits for ${observers.length} observers`);
  if (options.weights && options.weights.length !== observers.length) throw new ShapeError(`observerScores: ${options.weights.length} weights for ${observers.length} observers`);
  const scale = options.scale ?? 1 / Math.sqrt(qd.dim);
  const reduction = options.reduction;
  if (reduction !== 'max' && reduction !== 'mean' && reduction !== 'sum') throw new ConfigError(`score reduction must be max, mean or sum, got ${String(reduction)}`);
  const group = qd.heads / kd.heads;
  const out = new Float32Array(qd.batch * kd.heads * scored);
  if (scored === 0 || observers.length === 0) return out;
  const chunk = Math.min(CHUNK, observers.length);
  const rows = new Float32Array(group * chunk * qd.dim);
  const logits = new Float32Array(group * chunk * keySeq);
  const acc = new Float64Array(scored);
  const initial = reduction === 'max' ? -Infinity : 0;
  for (let b = 0; b < qd.batch; b++) {
    for (let g = 0; g < kd.heads; g++) {
      acc.fill(initial);
      const kStart = rowOffset(kd, b, g, 0);
      const keys = k.data.subarray(kStart, kStart + keySeq * kd.dim);
      for (let first = 0; first < observers.length; first += chunk) {
        const count = Math.min(chunk, observers.length - first);
        for (let r = 0; r < group; r++) {
          for (let i = 0; i < count; i++) {
            const src = rowOffset(qd, b, g * group + r, observers[first + i]!);
            rows.set(q.data.subarray(src, src + qd.dim), (r * count + i) * qd.dim);
          }
        }
        matmul(rows, keys, group * count, qd.dim, keySeq, logits, { transposeB: true });
        for (let r = 0; r < group; r++) {
          for (let i = 0; i < count; i++) {
            const limit = Math.min(keySeq, limits[first + i]!);
            if (limit <= 0) continue;
            const base = (r * count + i) * keySeq;
            let max = -Infinity;
            for (let j = 0; j < limit; j++) {
              const x = logits[base + j]! * scale;
              logits[base + j] = x;
              if (x > max) max = x;
            }
            // One exp per visible key, kept in place; the row is normalised on the way out.
            let sum = 0;
            for (let j = 0; j < limit; j++) sum += logits[base + j] = Math.exp(logits[base + j]! - max);
            const weight = (options.weights ? options.weights[first + i]! : 1) / sum;
            const end = Math.min(limit, scored);
            if (reduction === 'max') {
              for (let j = 0; j < end; j++) {
                const p = logits[base + j]! * weight;
                if (p > acc[j]!) acc[j] = p;
              }
            } else {
              for (let j = 0; j < end; j++) acc[j]! += logits[base + j]! * weight;
            }
          }
        }
      }
      const divisor = reduction === 'mean' ? group * observers.length : 1;
      const o = (b * kd.heads + g) * scored;
      for (let j = 0; j < scored; j++) out[o + j] = acc[j] === -Infinity ? 0 : acc[j]! / divisor;
    }
  }
  return out;
}
