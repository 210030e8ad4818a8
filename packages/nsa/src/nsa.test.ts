import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  NumericError,
  ShapeError,
  attentionMassRecall,
  createWorkload,
  needleRetrieval,
  referenceAttention,
  relativeL2Error,
  rowKeys,
  sliceSeq,
  tensor,
  type AttentionInput,
  type Selection,
} from '@sparse-attn/core';
import { decodeTokenByToken } from '@sparse-attn/core/testing';
import { createNsaDecoder, nsaAttention, nsaMethod, type NsaConfigInput } from './nsa.js';
import { visibleWindows } from './nsa-block-selector.js';

type Gates = (b: number, h: number, t: number) => readonly [number, number, number];

/** Softmax attention of one float64 query over the listed keys (a test oracle, not library code). */
function attendList(q: ArrayLike<number>, keys: readonly ArrayLike<number>[], values: readonly ArrayLike<number>[], scale: number, valueDim: number): number[] {
  const out = new Array<number>(valueDim).fill(0);
  if (keys.length === 0) return out;
  const s = keys.map((k) => {
    let x = 0;
    for (let c = 0; c < k.length; c++) x += q[c]! * k[c]!;
    return x * scale;
  });
  const m = Math.max(...s);
  const e = s.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  e.forEach((p, j) => {
    for (let c = 0; c < valueDim; c++) out[c]! += (p / z) * values[j]![c]!;
  });
  return out;
}

/**
 * A straightforward re-computation of NSA from the spec (§3.7), in float64 with plain arrays:
 * pooled windows, per-head softmax over visible windows, group sum, overlap mapping, forced blocks,
 * top-n by (score desc, index desc), then the union or the three gated branches.
 */
function naiveNsa(input: AttentionInput, cfg: Required<Omit<NsaConfigInput, 'gates' | 'combine' | 'compressionScore'>>, gates?: Gates) {
  const [B, Hq, T, D] = input.q.shape as [number, number, number, number];
  const Hkv = input.k.shape[1]!;
  const Dv = input.v.shape[3]!;
  const G = Hq / Hkv;
  const scale = 1 / Math.sqrt(D);
  const { compressionBlock: l, compressionStride: d, selectionBlock: lp, selectedBlocks: n, window: w, forceInitial, forceLocal } = cfg;
  const row = (x: Float32Array, heads: number, dim: number, b: number, h: number, t: number) => x.subarray(((b * heads + h) * T + t) * dim, ((b * heads + h) * T + t + 1) * dim);
  const out = new Float32Array(B * Hq * T * Dv);
  const blocks: number[][] = [];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hkv; h++) {
      const key = (t: number) => row(input.k.data, Hkv, D, b, h, t);
      const val = (t: number) => row(input.v.data, Hkv, Dv, b, h, t);
      const pooled = (get: (t: number) => Float32Array, dim: number, i: number) => {
        const m = new Array<number>(dim).fill(0);
        for (let j = i * d; j < i * d + l; j++) for (let c = 0; c < dim; c++) m[c]! += get(j)[c]! / l;
        return m;
      };
      const windows = T >= l ? Math.floor((T - l) / d) + 1 : 0;
      const kc = Array.from({ length: windows }, (_, i) => pooled(key, D, i));
      const vc = Array.from({ length: windows }, (_, i) => pooled(val, Dv, i));
      for (let t = 0; t < T; t++) {
        const nc = kc.filter((_, i) => i * d + l - 1 <= t).length;
        const P = new Array<number>(nc).fill(0);
        for (let g = 0; g < G; g++) {
          const q = row(input.q.data, Hq, D, b, h * G + g, t);
          const s = kc.slice(0, nc).map((k) => scale * k.reduce((a, x, c) => a + x * q[c]!, 0));
          const m = Math.max(...s);
          const z = s.reduce((a, x) => a + Math.exp(x - m), 0);
          s.forEach((x, i) => (P[i]! += Math.exp(x - m) / z));
        }
        const current = Math.floor(t / lp);
        const imp = Array.from({ length: current + 1 }, (_, j) => P.reduce((a, p, i) => a + (i * d < (j + 1) * lp && i * d + l > j * lp ? p : 0), 0));
        if (forceInitial) imp[0] = Infinity;
        for (let f = 0; f < forceLocal && current - f >= 0; f++) imp[current - f] = Infinity;
        const chosen = imp
          .map((score, j) => ({ score, j }))
          .sort((a, b2) => b2.score - a.score || b2.j - a.j)
          .slice(0, Math.min(n, current + 1))
          .map((x) => x.j)
          .sort((a, b2) => a - b2);
        blocks.push(chosen);
        const blockKeys = chosen.flatMap((j) => Array.from({ length: lp }, (_, x) => j * lp + x)).filter((x) => x <= t);
        const windowStart = Math.max(0, t - w + 1);
        for (let g = 0; g < G; g++) {
          const hq = h * G + g;
          const q = row(input.q.data, Hq, D, b, hq, t);
          let o: number[];
          if (!gates) {
            const first = w > 0 ? Math.floor(windowStart / lp) * lp : t + 1;
            const keys = [...new Set([...blockKeys, ...Array.from({ length: t + 1 - Math.min(first, t + 1) }, (_, x) => first + x)])].sort((a, b2) => a - b2);
            o = attendList(q, keys.map(key), keys.map(val), scale, Dv);
          } else {
            const [gc, gs, gw] = gates(b, hq, t);
            const oc = attendList(q, kc.slice(0, nc), vc.slice(0, nc), scale, Dv);
            const os = attendList(q, blockKeys.map(key), blockKeys.map(val), scale, Dv);
            const win = w > 0 ? Array.from({ length: t - windowStart + 1 }, (_, x) => windowStart + x) : [];
            const ow = attendList(q, win.map(key), win.map(val), scale, Dv);
            o = oc.map((x, c) => gc * x + gs * os[c]! + gw * ow[c]!);
          }
          out.set(o, ((b * Hq + hq) * T + t) * Dv);
        }
      }
    }
  }
  return { output: tensor([B, Hq, T, Dv], out), blocks };
}

const small = { compressionBlock: 4, compressionStride: 4, selectionBlock: 4, selectedBlocks: 3, window: 6, forceInitial: true, forceLocal: 2 } as const;

function blockRows(s: Selection): number[][] {
  const rows: number[][] = [];
  for (let r = 0; r < s.batch * s.heads * s.rows; r++) rows.push(Array.from(s.indices.subarray(s.offsets[r]!, s.offsets[r + 1]!)));
  return rows;
}

describe('compression visibility at block boundaries', () => {
  it('a window is visible once complete and ending at or before t (block ending exactly at t is visible)', () => {
    expect([0, 1, 2, 3, 4, 6, 7, 8].map((t) => visibleWindows(t, 4, 4))).toEqual([0, 0, 0, 1, 1, 1, 2, 2]);
    // Overlapping windows l = 8, d = 4: windows [0, 8), [4, 12), [8, 16) …
    expect([6, 7, 10, 11, 15].map((t) => visibleWindows(t, 8, 4))).toEqual([0, 1, 1, 2, 3]);
  });

  it('no complete block gives o_cmp = 0; the first complete block gives o_cmp = its mean value', () => {
    const w = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 6, headDim: 4, seed: 3 });
    const onlyCompression = { ...small, combine: 'gated' as const, gates: { compression: 1, selection: 0, window: 0 } };
    const out = nsaAttention(w.input, onlyCompression).output.data;
    // t = 0, 1, 2: no complete window → exactly 0 (FLA semantics, never NaN).
    for (let h = 0; h < 2; h++) for (let t = 0; t < 3; t++) for (let c = 0; c < 4; c++) expect(out[(h * 6 + t) * 4 + c]).toBe(0);
    // t = 3, 4, 5: one visible window → softmax weight 1 → o_cmp = mean(v[0..3]).
    const mean = [0, 1, 2, 3].map((c) => (w.input.v.data[c]! + w.input.v.data[4 + c]! + w.input.v.data[8 + c]! + w.input.v.data[12 + c]!) / 4);
    for (let h = 0; h < 2; h++) for (let t = 3; t < 6; t++) for (let c = 0; c < 4; c++) expect(out[(h * 6 + t) * 4 + c]).toBeCloseTo(mean[c]!, 6);
  });
});

describe('block selection', () => {
  it('hand-worked: the block whose pooled key matches the query wins the free slot', () => {
    // D = 2, l = l′ = d = 2, T = 8: block 1 (tokens 2, 3) has keys along the query; others are orthogonal.
    const k = [0, 1, 0, 1, 5, 0, 5, 0, 0, 1, 0, 1, 0, 1, 0, 1];
    const q = new Array<number>(16).fill(0);
    q[14] = 1; // query at t = 7 points along +x
    const input = { q: tensor([1, 1, 8, 2], q), k: tensor([1, 1, 8, 2], k), v: tensor([1, 1, 8, 2], Array.from({ length: 16 }, (_, i) => i)) };
    const result = nsaAttention(input, { compressionBlock: 2, compressionStride: 2, selectionBlock: 2, selectedBlocks: 2, window: 0, forceInitial: false, forceLocal: 1 });
    const rows = blockRows(result.selection!);
    expect(rows[7]).toEqual([1, 3]); // current block 3 forced, block 1 chosen by its pooled key
    const exact = referenceAttention({ q: tensor([1, 1, 1, 2], [1, 0]), k: tensor([1, 1, 4, 2], [5, 0, 5, 0, 0, 1, 0, 1]), v: tensor([1, 1, 4, 2], [4, 5, 6, 7, 12, 13, 14, 15]), causal: false });
    expect(Array.from(result.output.data.subarray(14, 16))).toEqual(Array.from(exact.output.data).map((x) => expect.closeTo(x, 6)));
  });

  it('reproduces the FLA reference run (T = 11, block 4, S = 3, G = 2): blocks ≤ t // 4 only', () => {
    const w = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 11, headDim: 8, seed: 11 });
    const rows = blockRows(nsaAttention(w.input, { ...small, window: 0 }).selection!);
    const expected = [[0], [0], [0], [0], [0, 1], [0, 1], [0, 1], [0, 1], [0, 1, 2], [0, 1, 2], [0, 1, 2]];
    expect(rows).toEqual(expected);
  });

  it('forced blocks (first, current, previous) are always selected; nothing after the query (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 90 }), fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 3, max: 6 }), (seq, seed, n) => {
        const w = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: seq, headDim: 8, seed });
        const result = nsaAttention(w.input, { ...small, selectedBlocks: n, window: 0 });
        const s = result.selection!;
        for (let r = 0; r < s.batch * s.heads * s.rows; r++) {
          const t = r % s.rows;
          const current = Math.floor(t / 4);
          const row = Array.from(s.indices.subarray(s.offsets[r]!, s.offsets[r + 1]!));
          expect(row).toContain(0);
          expect(row).toContain(current);
          if (current >= 1) expect(row).toContain(current - 1);
          expect(row.length).toBe(Math.min(n, current + 1));
          expect(Math.max(...row)).toBeLessThanOrEqual(current);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('a GQA group shares one selection: the group-summed probabilities decide, not each head', () => {
    // Two query heads on one KV head. Head 0 strongly wants block 1 (p ≈ 1); head 1 mildly prefers
    // block 2 (p ≈ 0.31 vs 0.17). Group sum: block 1 ≈ 1.17 > block 2 ≈ 0.31, so the group picks 1.
    const D = 2;
    const k = [0, 0, 0, 0, 40, 0, 40, 0, 0, 0.8, 0, 0.8, 0, 0, 0, 0, 0, 0, 0, 0];
    const q = new Array<number>(2 * 10 * D).fill(0);
    q[9 * D] = 1; // head 0, t = 9: along block 1's key
    q[(10 + 9) * D + 1] = 1; // head 1, t = 9: along block 2's (weak) key
    const input = { q: tensor([1, 2, 10, D], q), k: tensor([1, 1, 10, D], k), v: tensor([1, 1, 10, D], Array.from({ length: 20 }, (_, i) => i)) };
    const config = { compressionBlock: 2, compressionStride: 2, selectionBlock: 2, selectedBlocks: 2, window: 0, forceInitial: false, forceLocal: 1 };
    const result = nsaAttention(input, config);
    expect(result.selection!.headScope).toBe('kv');
    expect(result.selection!.heads).toBe(1);
    expect(blockRows(result.selection!)[9]).toEqual([1, 4]);
    // Alone, head 1 would have picked block 2.
    const alone = nsaAttention({ q: sliceHead(input.q, 1), k: input.k, v: input.v }, config);
    expect(blockRows(alone.selection!)[9]).toEqual([2, 4]);
  });

  it('equals a straightforward re-computation of the selection and the union (random inputs, overlap mapping)', () => {
    for (const [cfg, seq, hq, hkv, seed] of [
      [{ ...small, window: 6 }, 37, 4, 2, 1],
      [{ compressionBlock: 8, compressionStride: 4, selectionBlock: 8, selectedBlocks: 4, window: 5, forceInitial: true, forceLocal: 2 }, 61, 2, 1, 2],
      [{ compressionBlock: 4, compressionStride: 2, selectionBlock: 8, selectedBlocks: 3, window: 0, forceInitial: false, forceLocal: 1 }, 45, 3, 1, 3],
    ] as const) {
      const w = createWorkload('gaussian', { queryHeads: hq, kvHeads: hkv, seqLength: seq, headDim: 8, seed });
      const result = nsaAttention(w.input, cfg);
      const naive = naiveNsa(w.input, cfg);
      const rows = blockRows(result.selection!);
      // Union rows hold the window blocks too; the selection-branch blocks must be among them.
      naive.blocks.forEach((blocks, r) => blocks.forEach((j) => expect(rows[r]).toContain(j)));
      expect(relativeL2Error(result.output, naive.output)).toBeLessThan(1e-5);
    }
  });
});

function sliceHead(t: { data: Float32Array; shape: readonly number[] }, h: number) {
  const [, , s, d] = t.shape as [number, number, number, number];
  return tensor([1, 1, s, d], t.data.slice(h * s * d, (h + 1) * s * d));
}

describe('gated combination', () => {
  const cfg = { compressionBlock: 8, compressionStride: 4, selectionBlock: 8, selectedBlocks: 3, window: 7, forceInitial: true, forceLocal: 2 } as const;
  const w = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: 43, headDim: 8, valueDim: 6, seed: 21 });

  it('per-head constant gates equal a straightforward re-computation of the three branches', () => {
    const gates = { compression: [0.2, 0.5, 0.9, 0.1], selection: 0.7, window: [0.3, 0.6, 0.1, 1] };
    const result = nsaAttention(w.input, { ...cfg, combine: 'gated', gates });
    const naive = naiveNsa(w.input, cfg, (_b, h) => [gates.compression[h]!, 0.7, gates.window[h]!]);
    expect(relativeL2Error(result.output, naive.output)).toBeLessThan(1e-5);
    expect(blockRows(result.selection!)).toEqual(naive.blocks);
  });

  it('a per-token gate tensor [B, Hq, T, 3] equals the re-computation', () => {
    const data = Float32Array.from({ length: 4 * 43 * 3 }, (_, i) => ((i * 37) % 101) / 101);
    const gates = tensor([1, 4, 43, 3], data);
    const result = nsaAttention(w.input, { ...cfg, combine: 'gated' }, { gates });
    const naive = naiveNsa(w.input, cfg, (_b, h, t) => {
      const o = (h * 43 + t) * 3;
      return [data[o]!, data[o + 1]!, data[o + 2]!];
    });
    expect(relativeL2Error(result.output, naive.output)).toBeLessThan(1e-5);
  });

  it('decode step by step equals prefill (constant and per-token gates)', () => {
    const method = nsaMethod.create({ ...cfg, combine: 'gated', gates: { compression: 0.3, selection: 0.4, window: 0.3 } });
    expect(relativeL2Error(decodeTokenByToken(method, w.input), method.prefill(w.input).output)).toBeLessThan(1e-5);
    const data = Float32Array.from({ length: 4 * 43 * 3 }, (_, i) => ((i * 13) % 29) / 29);
    const decoder = createNsaDecoder({ batch: 1, queryHeads: 4, kvHeads: 2, headDim: 8, valueDim: 6 }, { ...cfg, combine: 'gated' });
    const prefill = nsaAttention(w.input, { ...cfg, combine: 'gated' }, { gates: tensor([1, 4, 43, 3], data) });
    for (let t = 0; t < 43; t++) {
      const g = new Float32Array(4 * 3);
      for (let h = 0; h < 4; h++) g.set(data.subarray((h * 43 + t) * 3, (h * 43 + t + 1) * 3), h * 3);
      const step = decoder.step({ q: sliceSeq(w.input.q, t, t + 1), k: sliceSeq(w.input.k, t, t + 1), v: sliceSeq(w.input.v, t, t + 1) }, tensor([1, 4, 1, 3], g));
      for (let h = 0; h < 4; h++) {
        for (let c = 0; c < 6; c++) expect(step.output.data[h * 6 + c]).toBeCloseTo(prefill.output.data[(h * 43 + t) * 6 + c]!, 5);
      }
    }
  });

  it('rejects bad gates with typed errors', () => {
    expect(() => nsaAttention(w.input, { ...cfg, combine: 'gated', gates: { compression: [1, 2], selection: 1, window: 1 } })).toThrow(ConfigError);
    expect(() => nsaAttention(w.input, { ...cfg, combine: 'gated' }, { gates: tensor([1, 4, 43, 2]) })).toThrow(ShapeError);
    const nan = tensor([1, 4, 43, 3]);
    nan.data[7] = Number.NaN;
    expect(() => nsaAttention(w.input, { ...cfg, combine: 'gated' }, { gates: nan })).toThrow(NumericError);
  });
});

describe('union combination', () => {
  it('with a budget covering every block equals dense attention (defaults, S not a multiple of 64)', () => {
    const w = createWorkload('structured', { queryHeads: 4, kvHeads: 2, seqLength: 301, headDim: 16, seed: 4 });
    const result = nsaAttention(w.input, { selectedBlocks: 5 });
    expect(relativeL2Error(result.output, referenceAttention(w.input).output)).toBeLessThan(1e-5);
    expect(result.stats.density).toBeCloseTo(1, 12);
  });

  it('is genuinely sparse at the defaults on a long sequence and keeps the structured mass', () => {
    const w = createWorkload('structured', { queryHeads: 2, kvHeads: 1, seqLength: 4096, headDim: 32, seed: 5 });
    const result = nsaAttention(w.input, {});
    expect(result.stats.density).toBeLessThan(0.5);
    expect(result.diagnostics!['meanSelectedBlocks']).toBeLessThanOrEqual(16);
    expect(attentionMassRecall(w.input, result.selection!, { maxQueries: 16 })).toBeGreaterThan(0.95);
  });

  it('decode in chunks (first step = a prompt) and a primed decoder equal prefill', () => {
    const cfg = { compressionBlock: 8, compressionStride: 8, selectionBlock: 8, selectedBlocks: 4, window: 12 };
    const w = createWorkload('structured', { queryHeads: 4, kvHeads: 1, seqLength: 150, headDim: 16, seed: 6 });
    const method = nsaMethod.create(cfg);
    const prefill = method.prefill(w.input);
    expect(relativeL2Error(decodeTokenByToken(method, w.input, 7), prefill.output)).toBeLessThan(1e-5);
    const decoder = createNsaDecoder({ batch: 1, queryHeads: 4, kvHeads: 1, headDim: 16 }, cfg);
    decoder.prime(sliceSeq(w.input.k, 0, 140), sliceSeq(w.input.v, 0, 140));
    const tail = decoder.step({ q: sliceSeq(w.input.q, 140, 150), k: sliceSeq(w.input.k, 140, 150), v: sliceSeq(w.input.v, 140, 150) });
    expect(relativeL2Error(tail.output, sliceSeq(prefill.output, 140, 150))).toBeLessThan(1e-5);
    expect(decoder.length).toBe(150);
    decoder.reset();
    expect(decoder.length).toBe(0);
  });

  it('selects a planted needle at every depth with the paper defaults (S = 2048)', () => {
    // Mean pooling over l = 64 keys divides the needle's logit margin by 64 in the compressed score,
    // so at the defaults the needle must stand out by ~48 logits (against N(0, 1) distractors) to
    // win its block reliably; the kit's needle test (logit 16) runs with l = 8.
    for (const depth of [0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1]) {
      const w = createWorkload('needle', { queryHeads: 4, kvHeads: 2, seqLength: 2048, headDim: 64, needleDepth: depth, needleQueries: 4, needleLogit: 48, seed: 40 + depth * 8 });
      const result = nsaAttention(w.input, {});
      const retrieval = needleRetrieval(w.input, w.needle!, result.output, result.selection);
      expect(retrieval.selected, `depth ${depth}`).toBe(1);
      expect(retrieval.dominated, `depth ${depth}`).toBeGreaterThanOrEqual(0.75);
    }
  });

  it("with compressionScore 'quest' selects a lone needle at every depth with the paper defaults and needle logit 16 (mean pooling cannot)", () => {
    let meanFound = 0;
    for (const depth of [0.1, 0.3, 0.5, 0.7, 0.9]) {
      const w = createWorkload('needle', { queryHeads: 4, kvHeads: 2, seqLength: 2048, headDim: 64, needleDepth: depth, needleQueries: 4, seed: 70 + depth * 10 });
      const quest = nsaAttention(w.input, { compressionScore: 'quest' });
      const retrieval = needleRetrieval(w.input, w.needle!, quest.output, quest.selection);
      expect(retrieval.selected, `depth ${depth}`).toBe(1);
      expect(retrieval.dominated, `depth ${depth}`).toBeGreaterThanOrEqual(0.75);
      const mean = nsaAttention(w.input, {});
      meanFound += needleRetrieval(w.input, w.needle!, mean.output, mean.selection).selected;
    }
    expect(meanFound).toBeLessThan(5);
    expect(() => nsaMethod.create({ compressionScore: 'quest', combine: 'gated' })).toThrow(ConfigError);
  });

  it('rejects non-causal input and exposes a budget sweep ending at full coverage', () => {
    const w = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 8, headDim: 4 });
    expect(() => nsaAttention({ ...w.input, causal: false })).toThrow(ConfigError);
    const points = nsaMethod.budgets!(4096);
    expect(points.map((p) => p.config['selectedBlocks'])).toEqual([4, 8, 16, 32, 64]);
    expect(nsaMethod.budgets!(300).map((p) => p.config['selectedBlocks'])).toEqual([4, 5]);
    expect(rowKeys(nsaAttention(w.input, { selectedBlocks: 3 }).selection!, 7)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});
