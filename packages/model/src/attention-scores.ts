/**
 * Kernel: per-head attention scores of selected queries over a layer's cache.
 *
 *   logit[h, i, j] = scale · q_{h,i} · k_{g(h), j}          (core `matmul`, one GEMM per KV head and query chunk)
 *   p[h, i, j]     = exp(logit − m) / Σ_{j' ∈ A(h,i)} exp(logit_{j'} − m),   j ∈ A(h, i)
 *
 * where `A(h, i)` is the set of keys the layer attended for that query (the selection row,
 * clipped causally to `j ≤ keySeq − T + i`); keys outside `A` get logit −∞ and p = 0.
 * With a reduction the rows are folded over the captured queries as they are produced:
 *
 *   r[h, j] = ⊕_i w_i · p[h, i, j]     ⊕ ∈ {sum, mean (sum / queries), max},  w_i = 1 unless weighted
 *
 * so memory stays O(queryHeads · keySeq) whatever the number of queries (H2O's accumulated
 * attention over a whole prefill). This is scoring, not attention: no values are read.
 */
import { ConfigError, ShapeError, dims4, forEachKeyRange, matmul, rowOffset, selectionRow, type Selection, type Tensor } from '@sparse-attn/core';
import type { AttentionScores, CaptureQueries, ScoreReduction } from './hooks.js';

/**
 * Largest per-query capture (logits + probabilities, float32) that is materialised: 1 GiB.
 * Bigger requests are refused up front with a pointer to `reduce` instead of running out of memory.
 */
export const MAX_CAPTURE_BYTES = 2 ** 30;

/** Scratch GEMM block per query chunk: about 16 MiB of float32, whatever the cache length. */
const CHUNK_ELEMENTS = 2 ** 22;

/** Options of {@link attentionScores} beyond the selection. */
export interface AttentionScoresOptions {
  /** Fold the rows over the queries instead of returning one row per query. */
  readonly reduce?: ScoreReduction;
  /** Per-query weights (one per captured query, ascending query order), applied before `reduce`. */
  readonly weights?: ArrayLike<number>;
  /** Queries per GEMM chunk; default: as many as keep the scratch block near 16 MiB. */
  readonly queryChunk?: number;
}

/** Resolves a capture request into sorted, unique local query indices of a call with `count` queries. */
export function resolveCaptureQueries(queries: CaptureQueries, count: number): Int32Array {
  if (queries === 'last') return Int32Array.of(count - 1);
  if (queries === 'all') return Int32Array.from({ length: count }, (_, i) => i);
  const sorted = [...new Set(queries)].sort((a, b) => a - b);
  for (const i of sorted) {
    if (!(Number.isInteger(i) && i >= 0 && i < count)) throw new ShapeError(`capture.queries: index ${i} outside the call's ${count} queries`);
  }
  return Int32Array.from(sorted);
}

/**
 * Scores of `queries` (local indices into `q`'s T rows) against every key of `k`
 * (`[1, kvHeads, keySeq, headDim]`, possibly a padded cache view), restricted to `selection`
 * when given (otherwise every causally visible key). With `options.reduce` the result holds
 * `reduced` (`[queryHeads, keySeq]`) and empty `logits`/`probabilities`.
 */
export function attentionScores(q: Tensor, k: Tensor, queries: Int32Array, scale: number, selection?: Selection, options: AttentionScoresOptions = {}): AttentionScores {
  const qd = dims4(q, 'q');
  const kd = dims4(k, 'k');
  const groupSize = qd.heads / kd.heads;
  const keySeq = kd.seq;
  const nq = queries.length;
  const queryOffset = keySeq - qd.seq;
  const reduce = options.reduce;
  const weights = options.weights;
  if (weights !== undefined) {
    if (reduce === undefined) throw new ConfigError('capture.weights: weights apply before a reduction; give capture.reduce too');
    if (weights.length !== nq) throw new ShapeError(`capture.weights: ${weights.length} weights for ${nq} captured queries`);
    for (let i = 0; i < nq; i++) if (!Number.isFinite(weights[i]!)) throw new ShapeError(`capture.weights[${i}] = ${weights[i]} is not finite`);
  }
  if (reduce === undefined && qd.heads * nq * keySeq * 8 > MAX_CAPTURE_BYTES) {
    throw new ConfigError(
      `capture: ${qd.heads} heads × ${nq} queries × ${keySeq} keys would materialise ${Math.ceil((qd.heads * nq * keySeq * 8) / 2 ** 20)} MiB of scores; ` +
        `capture fewer queries or set capture.reduce ('sum' | 'mean' | 'max') to fold them into [heads, keys]`,
    );
  }
  const logits = new Float32Array(reduce ? 0 : qd.heads * nq * keySeq);
  const probabilities = new Float32Array(reduce ? 0 : qd.heads * nq * keySeq);
  const reduced = reduce ? new Float32Array(qd.heads * keySeq) : undefined;
  const chunk = Math.max(1, Math.min(nq, options.queryChunk ?? Math.floor(CHUNK_ELEMENTS / Math.max(1, groupSize * keySeq))));
  const rows = new Float32Array(groupSize * chunk * qd.dim);
  const block = new Float32Array(groupSize * chunk * keySeq);
  const rowLogits = new Float32Array(keySeq);
  const rowProbabilities = new Float32Array(keySeq);
  const allowed = new Uint8Array(keySeq);
  for (let g = 0; g < kd.heads; g++) {
    const kStart = rowOffset(kd, 0, g, 0);
    const keys = k.data.subarray(kStart, kStart + keySeq * kd.dim);
    for (let c0 = 0; c0 < nq; c0 += chunk) {
      const nc = Math.min(chunk, nq - c0);
      // Gather the group's captured queries of this chunk into one [G·nc, D] matrix: one GEMM.
      for (let r = 0; r < groupSize; r++) {
        for (let i = 0; i < nc; i++) {
          const src = rowOffset(qd, 0, g * groupSize + r, queries[c0 + i]!);
          rows.set(q.data.subarray(src, src + qd.dim), (r * nc + i) * qd.dim);
        }
      }
      matmul(rows.subarray(0, groupSize * nc * qd.dim), keys, groupSize * nc, qd.dim, keySeq, block.subarray(0, groupSize * nc * keySeq), { transposeB: true });
      for (let r = 0; r < groupSize; r++) {
        const h = g * groupSize + r;
        for (let i = 0; i < nc; i++) {
          const query = queries[c0 + i]!;
          const limit = queryOffset + query + 1;
          allowed.fill(0);
          if (selection) {
            forEachKeyRange(selection, selectionRow(selection, 0, h, groupSize, query), limit, (a, b) => allowed.fill(1, a, b));
          } else {
            allowed.fill(1, 0, limit);
          }
          const dst = (h * nq + c0 + i) * keySeq;
          const logitRow = reduced ? rowLogits : logits.subarray(dst, dst + keySeq);
          const probabilityRow = reduced ? rowProbabilities.fill(0) : probabilities.subarray(dst, dst + keySeq);
          softmaxRow(block.subarray((r * nc + i) * keySeq, (r * nc + i + 1) * keySeq), allowed, scale, logitRow, probabilityRow);
          if (reduced) foldRow(reduced.subarray(h * keySeq, (h + 1) * keySeq), probabilityRow, reduce!, weights ? weights[c0 + i]! : 1);
        }
      }
    }
  }
  if (reduced && reduce === 'mean' && nq > 0) for (let j = 0; j < reduced.length; j++) reduced[j]! /= nq;
  return { queries, queryHeads: qd.heads, keySeq, logits, probabilities, ...(reduced ? { reduction: reduce, reduced } : {}) };
}

/** Scaled logits (−∞ outside `allowed`) and their softmax over `allowed` (0 elsewhere). */
function softmaxRow(dots: Float32Array, allowed: Uint8Array, scale: number, logits: Float32Array, probabilities: Float32Array): void {
  const keySeq = dots.length;
  let max = -Infinity;
  for (let j = 0; j < keySeq; j++) {
    const s = allowed[j] ? dots[j]! * scale : -Infinity;
    logits[j] = s;
    if (s > max) max = s;
  }
  if (max === -Infinity) return;
  let sum = 0;
  for (let j = 0; j < keySeq; j++) if (allowed[j]) sum += Math.exp(logits[j]! - max);
  for (let j = 0; j < keySeq; j++) if (allowed[j]) probabilities[j] = Math.exp(logits[j]! - max) / sum;
}

/** `into ⊕= weight · row` for one head. */
function foldRow(into: Float32Array, row: Float32Array, reduce: ScoreReduction, weight: number): void {
  if (reduce === 'max') {
    for (let j = 0; j < row.length; j++) into[j] = Math.max(into[j]!, weight * row[j]!);
  } else {
    for (let j = 0; j < row.length; j++) into[j]! += weight * row[j]!;
  }
}
