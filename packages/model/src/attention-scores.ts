/**
 * Kernel: per-head attention scores of selected queries over a layer's cache.
 *
 *   logit[h, i, j] = scale · q_{h,i} · k_{g(h), j}          (core `matmul`, one GEMM per KV head)
 *   p[h, i, j]     = exp(logit − m) / Σ_{j' ∈ A(h,i)} exp(logit_{j'} − m),   j ∈ A(h, i)
 *
 * where `A(h, i)` is the set of keys the layer attended for that query (the selection row,
 * clipped causally to `j ≤ keySeq − T + i`); keys outside `A` get logit −∞ and p = 0.
 * This is scoring, not attention: no values are read.
 */
import { ShapeError, dims4, forEachKeyRange, matmul, rowOffset, selectionRow, type Selection, type Tensor } from '@sparse-attn/core';
import type { AttentionScores, CaptureQueries } from './hooks.js';

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
 * when given (otherwise every causally visible key).
 */
export function attentionScores(q: Tensor, k: Tensor, queries: Int32Array, scale: number, selection?: Selection): AttentionScores {
  const qd = dims4(q, 'q');
  const kd = dims4(k, 'k');
  const groupSize = qd.heads / kd.heads;
  const keySeq = kd.seq;
  const nq = queries.length;
  const queryOffset = keySeq - qd.seq;
  const logits = new Float32Array(qd.heads * nq * keySeq);
  const probabilities = new Float32Array(qd.heads * nq * keySeq);
  const rows = new Float32Array(groupSize * nq * qd.dim);
  const block = new Float32Array(groupSize * nq * keySeq);
  const allowed = new Uint8Array(keySeq);
  for (let g = 0; g < kd.heads; g++) {
    // Gather the group's captured queries into one [G·nq, D] matrix: one GEMM per KV head.
    for (let r = 0; r < groupSize; r++) {
      for (let i = 0; i < nq; i++) {
        const src = rowOffset(qd, 0, g * groupSize + r, queries[i]!);
        rows.set(q.data.subarray(src, src + qd.dim), (r * nq + i) * qd.dim);
      }
    }
    const kStart = rowOffset(kd, 0, g, 0);
    matmul(rows, k.data.subarray(kStart, kStart + keySeq * kd.dim), groupSize * nq, qd.dim, keySeq, block, { transposeB: true });
    for (let r = 0; r < groupSize; r++) {
      const h = g * groupSize + r;
      for (let i = 0; i < nq; i++) {
        const limit = queryOffset + queries[i]! + 1;
        allowed.fill(0);
        if (selection) {
          forEachKeyRange(selection, selectionRow(selection, 0, h, groupSize, queries[i]!), limit, (a, b) => allowed.fill(1, a, b));
        } else {
          allowed.fill(1, 0, limit);
        }
        const src = (r * nq + i) * keySeq;
        const dst = (h * nq + i) * keySeq;
        let max = -Infinity;
        for (let j = 0; j < keySeq; j++) {
          const s = allowed[j] ? block[src + j]! * scale : -Infinity;
          logits[dst + j] = s;
          if (s > max) max = s;
        }
        if (max === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j < keySeq; j++) if (allowed[j]) sum += Math.exp(logits[dst + j]! - max);
        for (let j = 0; j < keySeq; j++) if (allowed[j]) probabilities[dst + j] = Math.exp(logits[dst + j]! - max) / sum;
      }
    }
  }
  return { queries, queryHeads: qd.heads, keySeq, logits, probabilities };
}
