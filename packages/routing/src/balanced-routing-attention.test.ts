import { describe, expect, it } from 'vitest';
import { Rng, createWorkload, referenceAttention, relativeL2Error, rowKeys, sparseAttention, tensor, type AttentionInput } from '@sparse-attn/core';
import { balancedRoutingPrefill } from './balanced-routing-attention.js';
import { routingConfigSchema, type RoutingConfig } from './routing-config.js';
import { sharedQKKeysAndValues } from './shared-qk.js';

const config = (overrides: Partial<RoutingConfig>): RoutingConfig => routingConfigSchema.parse(overrides);

/** The reference semantics' config: balanced top-w only, no sinks, no local window, scatter_mean. */
const reference = { membership: 'balanced', local: 'never', sinkTokens: 0, combine: 'mean' } as const;

function gaussian(seq: number, queryHeads: number, kvHeads: number, headDim: number, seed: number): AttentionInput {
  return createWorkload('gaussian', { queryHeads, kvHeads, seqLength: seq, headDim, seed }).input;
}

/** Top-w rows of `x` (`[n × dim]`, unit rows) for centroid `c`, ascending: the balanced cluster, recomputed by a full sort. */
function topW(x: Float32Array, n: number, dim: number, centroids: Float32Array, c: number, w: number): number[] {
  const scored = Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let j = 0; j < dim; j++) s += x[i * dim + j]! * centroids[c * dim + j]!;
    return [s, i] as const;
  });
  return scored.sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, w).map(([, i]) => i).sort((a, b) => a - b);
}

describe('balanced routing prefill: reference semantics', () => {
  it('shared QK equals a direct transcription of LUCID KmeansAttention (top-w, causal mask, −5e4 self, scatter_mean)', () => {
    const seq = 48;
    const dim = 8;
    const input = gaussian(seq, 2, 1, dim, 3);
    const clusters = 4;
    const window = 12;
    const prefill = balancedRoutingPrefill(input, config({ ...reference, sharedQK: true, clusters, window }));
    const { k, v } = sharedQKKeysAndValues(input.q, input.v, 'l2');
    const scale = 1 / Math.sqrt(dim);
    let uncovered = 0;
    let selfOnly = 0;
    for (let h = 0; h < 2; h++) {
      const head = prefill.heads[h]!;
      const keys = k.data.subarray(h * seq * dim, (h + 1) * seq * dim);
      const queries = input.q.data.subarray(h * seq * dim, (h + 1) * seq * dim);
      const values = v.data.subarray(h * seq * dim, (h + 1) * seq * dim);
      const accumulated = new Float64Array(seq * dim);
      const counts = new Int32Array(seq);
      for (let c = 0; c < clusters; c++) {
        const members = topW(keys, seq, dim, head.centroids, c, window);
        expect(Array.from(head.membership.members.subarray(head.membership.offsets[c], head.membership.offsets[c + 1]))).toEqual(members);
        for (const i of members) {
          const visible = members.filter((j) => j <= i);
          if (visible.length === 1) selfOnly++;
          const logits = visible.map((j) => {
            if (j === i) return -5e4;
            let s = 0;
            for (let t = 0; t < dim; t++) s += queries[i * dim + t]! * keys[j * dim + t]!;
            return s * scale;
          });
          const max = Math.max(...logits);
          const weights = logits.map((l) => Math.exp(l - max));
          const total = weights.reduce((a, b) => a + b, 0);
          visible.forEach((j, n) => {
            for (let t = 0; t < dim; t++) accumulated[i * dim + t]! += (weights[n]! / total) * values[j * dim + t]!;
          });
          counts[i]!++;
        }
      }
      for (let i = 0; i < seq; i++) {
        if (counts[i] === 0) uncovered++;
        for (let t = 0; t < dim; t++) {
          const expected = counts[i] ? accumulated[i * dim + t]! / counts[i]! : 0;
          expect(prefill.result.output.data[(h * seq + i) * dim + t]).toBeCloseTo(expected, 5);
        }
      }
    }
    // The fixture exercises every branch: tokens in no cluster (output 0) and tokens that only see themselves.
    expect(uncovered).toBeGreaterThan(0);
    expect(selfOnly).toBeGreaterThan(0);
  });

  it('shared-QK self rule: a token attends to itself only when nothing else is visible', () => {
    const seq = 64;
    const input = gaussian(seq, 2, 2, 16, 5);
    const result = balancedRoutingPrefill(input, config({ sharedQK: true, clusters: 6, sinkTokens: 0, local: 'uncovered', localWindow: 1 })).result;
    const selection = result.selection!;
    let withOthers = 0;
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < seq; i++) {
        const keys = rowKeys(selection, h * seq + i, i + 1);
        expect(keys.length).toBeGreaterThan(0);
        if (keys.length > 1 || keys[0] !== i) {
          withOthers++;
          expect(keys, `query ${i} of head ${h} attends to itself beside other keys`).not.toContain(i);
        }
      }
      expect(rowKeys(selection, h * seq, 1)).toEqual([0]);
    }
    expect(withOthers).toBeGreaterThan(seq);
    // The shared-QK keys are the normalised queries: the output is exact attention over them.
    const shared = sharedQKKeysAndValues(input.q, input.v, 'l2');
    const exact = sparseAttention({ q: input.q, k: shared.k, v: shared.v }, selection);
    expect(relativeL2Error(result.output, exact.output)).toBeLessThan(1e-6);
  });

  it('reference mode leaves queries routed to no cluster at exactly zero; the practical default covers every key', () => {
    const seq = 200;
    const input = gaussian(seq, 2, 1, 16, 7);
    const strict = balancedRoutingPrefill(input, config({ membership: 'balanced', local: 'never', sinkTokens: 0, clusters: 10 }));
    const selection = strict.result.selection!;
    let empty = 0;
    for (let row = 0; row < 2 * seq; row++) {
      if (rowKeys(selection, row).length > 0) continue;
      empty++;
      for (let c = 0; c < 16; c++) expect(strict.result.output.data[row * 16 + c]).toBe(0);
    }
    expect(empty).toBeGreaterThan(0);
    expect(strict.result.diagnostics!['fallbackShare']).toBeCloseTo(empty / (2 * seq), 10);
    // Balanced top-w alone leaves keys that no cluster holds; nearest membership reaches them all.
    const reach = (membership: { members: Int32Array }) => new Set(membership.members).size;
    expect(reach(strict.heads[0]!.membership)).toBeLessThan(seq);
    const practical = balancedRoutingPrefill(input, config({ clusters: 10 }));
    expect(reach(practical.heads[0]!.membership)).toBe(seq);
    for (let c = 0; c < 10; c++) {
      const m = practical.heads[0]!.membership;
      expect(m.offsets[c + 1]! - m.offsets[c]!).toBeGreaterThanOrEqual(20);
    }
  });

  it('balanced membership holds exactly w keys per cluster; window sets C = ceil(S / w) when clusters is auto', () => {
    const input = gaussian(150, 1, 1, 16, 9);
    const prefill = balancedRoutingPrefill(input, config({ membership: 'balanced', window: 25 }));
    expect(prefill.result.diagnostics!['clusters']).toBe(6);
    const m = prefill.heads[0]!.membership;
    for (let c = 0; c < 6; c++) expect(m.offsets[c + 1]! - m.offsets[c]!).toBe(25);
  });

  it('more clusters than tokens are capped at S (no C × S blow-up); tiny inputs stay exact', () => {
    const input = gaussian(5, 2, 1, 8, 15);
    const result = balancedRoutingPrefill(input, config({ clusters: 1_000_000 })).result;
    expect(result.diagnostics!['clusters']).toBe(5);
    expect(relativeL2Error(result.output, sparseAttention(input, result.selection!).output)).toBeLessThan(1e-6);
  });

  it('non-causal: one cluster equals dense bidirectional attention; sparse rows may use later keys', () => {
    const input = { ...gaussian(70, 4, 2, 16, 11), causal: false };
    const dense = balancedRoutingPrefill(input, config({ clusters: 1 })).result;
    expect(relativeL2Error(dense.output, referenceAttention(input).output)).toBeLessThan(1e-5);
    const sparse = balancedRoutingPrefill(input, config({ clusters: 8, localWindow: 2, sinkTokens: 0 })).result;
    expect(relativeL2Error(sparse.output, sparseAttention(input, sparse.selection!).output)).toBeLessThan(1e-6);
    let future = 0;
    for (let row = 0; row < 4 * 70; row++) future += rowKeys(sparse.selection!, row).filter((j) => j > row % 70).length;
    expect(future).toBeGreaterThan(0);
  });

  it('layer-norm routing normalisation runs and stays exact over its selection', () => {
    const input = gaussian(90, 2, 1, 16, 13);
    const result = balancedRoutingPrefill(input, config({ normalization: 'layernorm', clusters: 9, sinkTokens: 0, localWindow: 1 })).result;
    expect(relativeL2Error(result.output, sparseAttention(input, result.selection!).output)).toBeLessThan(1e-6);
    expect(result.stats.density).toBeLessThan(0.6);
  });

  it('planted clusters: queries around C known directions attend exactly to the keys of their own direction', () => {
    const clusters = 4;
    const perCluster = 24;
    const dim = 32;
    const seq = clusters * perCluster;
    const rng = new Rng(21);
    const directions = Array.from({ length: clusters }, () => {
      const u = rng.fillNormal(new Float32Array(dim));
      const n = Math.hypot(...u);
      return u.map((x) => x / n);
    });
    const labels = Array.from({ length: seq }, (_, i) => (i * 7) % clusters);
    const q = new Float32Array(seq * dim);
    const k = new Float32Array(seq * dim);
    labels.forEach((label, i) => {
      for (let c = 0; c < dim; c++) {
        k[i * dim + c] = 4 * directions[label]![c]! + 0.3 * rng.normal();
        q[i * dim + c] = 4 * directions[label]![c]! + 0.3 * rng.normal();
      }
    });
    const input = { q: tensor([1, 1, seq, dim], q), k: tensor([1, 1, seq, dim], k), v: tensor([1, 1, seq, dim], rng.fillNormal(new Float32Array(seq * dim))) };
    const result = balancedRoutingPrefill(input, config({ clusters, sinkTokens: 0, local: 'never', keyClusters: 1, queryClusters: 1 })).result;
    for (let i = 0; i < seq; i++) {
      const own = labels.map((label, j) => (label === labels[i] && j <= i ? j : -1)).filter((j) => j >= 0);
      expect(rowKeys(result.selection!, i, i + 1)).toEqual(own);
    }
  });
});
