import { densePairCount, validateAttentionInput, type AttentionInput, type AttentionResult } from './attention.js';
import { rowOffset, tensor } from './tensor.js';

/**
 * Dense attention, written to be obviously correct: one query at a time, scores in double
 * precision, a max-subtracted softmax, double-precision accumulation. It is the truth every
 * test compares against — slow by design (O(Sk) scratch per query, no tiling).
 *
 * Also returns the per-query log-sum-exp of the scaled scores (`[B, Hq, Sq]`, natural log).
 */
export function referenceAttention(input: AttentionInput): AttentionResult & { lse: Float64Array } {
  const d = validateAttentionInput(input);
  const { q, k, v } = input;
  const out = new Float32Array(d.batch * d.queryHeads * d.querySeq * d.valueDim);
  const lse = new Float64Array(d.batch * d.queryHeads * d.querySeq);
  const scores = new Float64Array(d.keySeq);
  const acc = new Float64Array(d.valueDim);
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      const kvh = Math.floor(h / d.groupSize);
      for (let i = 0; i < d.querySeq; i++) {
        const visible = d.causal ? d.queryOffset + i + 1 : d.keySeq;
        const qo = rowOffset(d.qDims, b, h, i);
        let max = -Infinity;
        for (let j = 0; j < visible; j++) {
          const ko = rowOffset(d.kDims, b, kvh, j);
          let s = 0;
          for (let c = 0; c < d.headDim; c++) s += q.data[qo + c]! * k.data[ko + c]!;
          s *= d.scale;
          scores[j] = s;
          if (s > max) max = s;
        }
        acc.fill(0);
        let sum = 0;
        for (let j = 0; j < visible; j++) {
          const p = Math.exp(scores[j]! - max);
          sum += p;
          const vo = rowOffset(d.vDims, b, kvh, j);
          for (let c = 0; c < d.valueDim; c++) acc[c]! += p * v.data[vo + c]!;
        }
        const row = (b * d.queryHeads + h) * d.querySeq + i;
        lse[row] = visible > 0 ? max + Math.log(sum) : -Infinity;
        const oo = row * d.valueDim;
        for (let c = 0; c < d.valueDim; c++) out[oo + c] = visible > 0 ? acc[c]! / sum : 0;
      }
    }
  }
  const pairs = densePairCount(d);
  return {
    output: tensor([d.batch, d.queryHeads, d.querySeq, d.valueDim], out),
    lse,
    stats: {
      pairs,
      densePairs: pairs,
      density: 1,
      kvBytesRead: 4 * (d.headDim + d.valueDim) * (pairs / d.groupSize),
      selectionMs: 0,
      attentionMs: 0,
    },
    backend: { backend: 'cpu', kernel: 'js-reference-f64' },
  };
}

/**
 * Dense softmax probabilities of one query row (double precision), length `visible` keys.
 * Used by metrics (attention-mass recall) and tests; O(Sk) memory.
 */
export function attentionProbabilities(
  input: AttentionInput,
  b: number,
  queryHead: number,
  query: number,
): Float64Array {
  const d = validateAttentionInput(input, { checkFinite: false });
  const kvh = Math.floor(queryHead / d.groupSize);
  const visible = d.causal ? d.queryOffset + query + 1 : d.keySeq;
  const probs = new Float64Array(visible);
  const qo = rowOffset(d.qDims, b, queryHead, query);
  let max = -Infinity;
  for (let j = 0; j < visible; j++) {
    const ko = rowOffset(d.kDims, b, kvh, j);
    let s = 0;
    for (let c = 0; c < d.headDim; c++) s += input.q.data[qo + c]! * input.k.data[ko + c]!;
    s *= d.scale;
    probs[j] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let j = 0; j < visible; j++) {
    const p = Math.exp(probs[j]! - max);
    probs[j] = p;
    sum += p;
  }
  for (let j = 0; j < visible; j++) probs[j]! /= sum;
  return probs;
}
