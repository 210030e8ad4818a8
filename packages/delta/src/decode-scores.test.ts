import { Rng, ShapeError, denseAttention, tensor } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { decodeLogits, softmaxRows, unifiedScoresOfLogits, unifiedTokenScores } from './decode-scores.js';

function setup(queryHeads: number, kvHeads: number, keySeq: number, dim: number, capacity = keySeq) {
  const rng = new Rng(keySeq + dim);
  const q = tensor([1, queryHeads, 2, dim], rng.fillNormal(new Float32Array(queryHeads * 2 * dim), 1.5));
  const data = rng.fillNormal(new Float32Array(kvHeads * capacity * dim));
  const keys = { data, shape: [1, kvHeads, keySeq, dim], seqCapacity: capacity };
  // Brute force in float64 for the last query row.
  const logits: number[][] = [];
  for (let h = 0; h < queryHeads; h++) {
    const kv = Math.floor(h / (queryHeads / kvHeads));
    logits.push(Array.from({ length: keySeq }, (_, t) => {
      let dot = 0;
      for (let c = 0; c < dim; c++) dot += q.data[(h * 2 + 1) * dim + c]! * data[(kv * capacity + t) * dim + c]!;
      return dot / Math.sqrt(dim);
    }));
  }
  const probabilities = logits.map((row) => {
    const max = Math.max(...row);
    const sum = row.reduce((a, x) => a + Math.exp(x - max), 0);
    return row.map((x) => Math.exp(x - max) / sum);
  });
  const unified = Array.from({ length: keySeq }, (_, t) => Math.max(...probabilities.map((p) => p[t]!)));
  return { q, keys, logits, unified, values: { data: rng.fillNormal(new Float32Array(kvHeads * capacity * dim)), shape: [1, kvHeads, keySeq, dim], seqCapacity: capacity } };
}

describe('decode scores', () => {
  for (const [hq, hkv, n, d, cap] of [[4, 2, 37, 16, 64], [8, 1, 130, 13, 130], [1, 1, 1, 8, 4], [6, 2, 41, 16, 41], [5, 1, 23, 8, 30], [14, 2, 19, 12, 19]] as const) {
    it(`logits and unified scores equal the brute force (Hq${hq} Hkv${hkv} N${n} D${d} capacity ${cap})`, () => {
      const s = setup(hq, hkv, n, d, cap);
      const scale = 1 / Math.sqrt(d);
      const logits = decodeLogits(s.q, s.keys, scale);
      for (let h = 0; h < hq; h++) for (let t = 0; t < n; t++) expect(logits[h * n + t]).toBeCloseTo(s.logits[h]![t]!, 4);
      // With the lse core's dense attention returns, and without (computed from the logits).
      const dense = denseAttention({ q: tensor([1, hq, 1, d], s.q.data.filter((_, i) => Math.floor(i / d) % 2 === 1)), k: s.keys, v: s.values });
      for (const scores of [unifiedTokenScores(s.q, s.keys, scale, dense.lse), unifiedTokenScores(s.q, s.keys, scale), unifiedScoresOfLogits(logits, hq, n)]) {
        for (let t = 0; t < n; t++) expect(Math.abs(scores[t]! - s.unified[t]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, s.unified[t]!));
      }
    });
  }

  it('scores a chosen query row over its visible keys', () => {
    const s = setup(4, 2, 20, 8);
    const logits = decodeLogits(s.q, s.keys, 1, { row: 0, visible: 5 });
    expect(logits).toHaveLength(4 * 5);
    for (let h = 0; h < 4; h++) {
      for (let t = 0; t < 5; t++) {
        let dot = 0;
        for (let c = 0; c < 8; c++) dot += s.q.data[(h * 2) * 8 + c]! * s.keys.data[(Math.floor(h / 2) * 20 + t) * 8 + c]!;
        expect(logits[h * 5 + t]).toBeCloseTo(dot, 4);
      }
    }
    const p = softmaxRows(logits, 4, 5);
    for (let h = 0; h < 4; h++) expect(p.subarray(h * 5, h * 5 + 5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(() => decodeLogits(s.q, s.keys, 1, { row: 2 })).toThrow(ShapeError);
    expect(() => decodeLogits(s.q, s.keys, 1, { visible: 21 })).toThrow(ShapeError);
  });

  it('rejects mismatched shapes and an empty cache', () => {
    const s = setup(4, 2, 10, 8);
    expect(() => decodeLogits(s.q, { ...s.keys, shape: [1, 3, 10, 8], seqCapacity: 10 }, 1)).toThrow(ShapeError);
    expect(() => decodeLogits(s.q, { ...s.keys, shape: [1, 2, 10, 4] }, 1)).toThrow(/do not match/);
    expect(() => unifiedTokenScores(s.q, { ...s.keys, shape: [1, 2, 0, 8] }, 1)).toThrow(/empty/);
  });
});
