import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { referenceAttention } from './reference-attention.js';
import { forEachKeyRange, SelectionBuilder, selectionRow, type Selection } from './selection.js';
import { mergeAttention, sparseAttention } from './sparse-executor.js';
import { relativeL2Error, rowOffset, sliceSeq, tensor } from './tensor.js';
import { validateAttentionInput, type AttentionInput } from './attention.js';
import { KVCache } from './kv-cache.js';
import { createWorkload } from './workloads.js';
import { Rng } from './random.js';
import { ShapeError } from './errors.js';

function fullSelection(batch: number, heads: number, seq: number, keySeq: number, scope: 'query' | 'kv'): Selection {
  const b = new SelectionBuilder({ kind: 'token', headScope: scope, batch, heads, rows: seq, keySeq });
  for (let r = 0; r < batch * heads * seq; r++) b.pushRange(0, keySeq);
  return b.finish();
}

/** Dense attention restricted to a key mask, computed by the reference on a gathered copy. */
function restrictedReference(q: Float32Array, k: Float32Array, v: Float32Array, keys: number[], dim: number, scale: number): Float32Array {
  const kk = new Float32Array(keys.length * dim);
  const vv = new Float32Array(keys.length * dim);
  keys.forEach((j, i) => {
    kk.set(k.subarray(j * dim, (j + 1) * dim), i * dim);
    vv.set(v.subarray(j * dim, (j + 1) * dim), i * dim);
  });
  if (keys.length === 0) return new Float32Array(dim);
  return referenceAttention({ q: tensor([1, 1, 1, dim], q), k: tensor([1, 1, keys.length, dim], kk), v: tensor([1, 1, keys.length, dim], vv), causal: false, scale }).output.data;
}

describe('sparseAttention', () => {
  it('with every key selected equals dense (causal and not, GQA, decode alignment)', () => {
    for (const [hq, hkv, sq, sk, causal] of [[4, 2, 33, 33, true], [2, 2, 5, 40, true], [3, 1, 17, 17, false], [2, 1, 1, 9, true]] as const) {
      const w = createWorkload('gaussian', { queryHeads: hq, kvHeads: hkv, seqLength: sk, headDim: 8, seed: sq });
      const q = tensor([1, hq, sq, 8], w.input.q.data.slice(0, hq * sq * 8));
      const input = { q, k: w.input.k, v: w.input.v, causal };
      for (const scope of ['query', 'kv'] as const) {
        const sel = fullSelection(1, scope === 'query' ? hq : hkv, sq, sk, scope);
        const out = sparseAttention(input, sel);
        expect(relativeL2Error(out.output, referenceAttention(input).output)).toBeLessThan(1e-5);
      }
    }
  });

  it('equals dense attention restricted to random selections (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 1000 }), fc.boolean(), (seq, seed, causal) => {
        const dim = 8;
        const rng = new Rng(seed);
        const w = createWorkload('gaussian', { queryHeads: 1, kvHeads: 1, seqLength: seq, headDim: dim, seed });
        const builder = new SelectionBuilder({ kind: 'token', headScope: 'query', batch: 1, heads: 1, rows: seq, keySeq: seq });
        const rows: number[][] = [];
        for (let i = 0; i < seq; i++) {
          const keys = Array.from({ length: seq }, (_, j) => j).filter(() => rng.next() < 0.4);
          rows.push(keys);
          builder.pushRow(keys);
        }
        const input = { ...w.input, causal };
        const out = sparseAttention(input, builder.finish());
        for (let i = 0; i < seq; i++) {
          const visible = rows[i]!.filter((j) => !causal || j <= i);
          const expected = restrictedReference(w.input.q.data.subarray(i * dim, (i + 1) * dim), w.input.k.data, w.input.v.data, visible, dim, 1 / Math.sqrt(dim));
          const got = out.output.data.subarray(i * dim, (i + 1) * dim);
          for (let c = 0; c < dim; c++) expect(got[c]).toBeCloseTo(expected[c]!, 5);
          if (visible.length === 0) expect(out.lse[i]).toBe(-Infinity);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('masks future keys a causal selection names, and counts only scored pairs', () => {
    const w = createWorkload('gaussian', { queryHeads: 1, kvHeads: 1, seqLength: 8, headDim: 4, seed: 3 });
    const all = fullSelection(1, 1, 8, 8, 'query');
    const out = sparseAttention(w.input, all);
    expect(relativeL2Error(out.output, referenceAttention(w.input).output)).toBeLessThan(1e-6);
    expect(out.stats.pairs).toBe(36);
    expect(out.stats.density).toBe(1);
  });

  it('block-level selections cover their blocks, clipped at the sequence end', () => {
    const w = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 10, headDim: 4, seed: 4 });
    const b = new SelectionBuilder({ kind: 'block', blockSize: 4, headScope: 'kv', batch: 1, heads: 1, rows: 1, queryBlockSize: 10, keySeq: 10 });
    b.pushRow([0, 1, 2]);
    const out = sparseAttention(w.input, b.finish());
    expect(relativeL2Error(out.output, referenceAttention(w.input).output)).toBeLessThan(1e-5);
  });

  it('merging two disjoint partial attentions equals attention over their union', () => {
    const w = createWorkload('gaussian', { queryHeads: 2, kvHeads: 2, seqLength: 20, headDim: 8, seed: 5 });
    const make = (pick: (j: number) => boolean) => {
      const b = new SelectionBuilder({ kind: 'token', headScope: 'query', batch: 1, heads: 2, rows: 20, keySeq: 20 });
      for (let r = 0; r < 40; r++) b.pushRow(Array.from({ length: 20 }, (_, j) => j).filter(pick));
      return b.finish();
    };
    const even = sparseAttention(w.input, make((j) => j % 2 === 0));
    const odd = sparseAttention(w.input, make((j) => j % 2 === 1));
    const merged = mergeAttention({ output: even.output.data, lse: even.lse }, { output: odd.output.data, lse: odd.lse }, 8);
    expect(relativeL2Error(tensor([1, 2, 20, 8], merged.output), referenceAttention(w.input).output)).toBeLessThan(1e-5);
  });

  it('rejects selections that do not fit the input', () => {
    const w = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 8, headDim: 4 });
    expect(() => sparseAttention(w.input, fullSelection(1, 1, 8, 8, 'query'))).toThrow(ShapeError);
    expect(() => sparseAttention(w.input, fullSelection(1, 1, 7, 8, 'kv'))).toThrow(ShapeError);
    const bad = new SelectionBuilder({ kind: 'token', headScope: 'kv', batch: 1, heads: 1, rows: 8, keySeq: 8 });
    for (let r = 0; r < 8; r++) bad.pushRow([3, 1]);
    expect(() => sparseAttention(w.input, bad.finish())).toThrow(ShapeError);
  });
});

describe('sparseAttention reads only the selected keys', () => {
  /** A one-token decode step over 5000 keys selecting 3 blocks of 64; every other K/V row is NaN. */
  function poisonedDecode(storage: 'js' | 'kernel') {
    const seq = 5000;
    const dim = 16;
    const w = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: seq, headDim: dim, seed: 12 });
    const blocks = [0, 40, 78];
    const keep = new Uint8Array(seq);
    for (const block of blocks) keep.fill(1, block * 64, Math.min(seq, (block + 1) * 64));
    const poisoned = (t: typeof w.input.k) => {
      const data = t.data.slice();
      for (let h = 0; h < 2; h++) for (let j = 0; j < seq; j++) if (!keep[j]) data.fill(Number.NaN, (h * seq + j) * dim, (h * seq + j + 1) * dim);
      return tensor(t.shape, data);
    };
    const cache = new KVCache({ batch: 1, kvHeads: 2, headDim: dim, valueDim: dim, initialCapacity: seq, storage });
    cache.append(poisoned(w.input.k), poisoned(w.input.v));
    const builder = new SelectionBuilder({ kind: 'block', blockSize: 64, headScope: 'kv', batch: 1, heads: 2, rows: 1, keySeq: seq });
    for (let h = 0; h < 2; h++) builder.pushRow(blocks);
    const q = sliceSeq(w.input.q, seq - 1, seq);
    const result = sparseAttention({ q, k: cache.keys(), v: cache.values() }, builder.finish(), { checkFinite: false });
    const dense = sparseAttention({ q, k: w.input.k, v: w.input.v }, builder.finish());
    return { result, dense, storage: cache.storage };
  }

  for (const storage of ['js', 'kernel'] as const) {
    it(`a decode step over a ${storage}-storage cache never touches unselected rows (NaN there) and equals the clean result`, () => {
      const { result, dense, storage: actual } = poisonedDecode(storage);
      expect(actual).toBe(storage);
      expect(result.backend.kernel).toBe('executor-wasm-simd');
      expect(result.output.data.every(Number.isFinite)).toBe(true);
      expect(relativeL2Error(result.output, dense.output)).toBeLessThan(1e-6);
      expect(result.stats.pairs).toBe(4 * (64 + 64 + 8)); // block 78 is clipped at key 5000
    });
  }
});

describe('sparseAttention flash path (selection rows shared by ≥ 16 query rows)', () => {
  /** Exact float64 attention of every query over its selected, visible keys; with pair count. */
  function expectedOutput(input: AttentionInput, selection: Selection) {
    const d = validateAttentionInput(input);
    const out = new Float64Array(d.batch * d.queryHeads * d.querySeq * d.valueDim);
    const lse = new Float64Array(d.batch * d.queryHeads * d.querySeq);
    let pairs = 0;
    for (let b = 0; b < d.batch; b++) {
      for (let h = 0; h < d.queryHeads; h++) {
        const kvh = Math.floor(h / d.groupSize);
        for (let i = 0; i < d.querySeq; i++) {
          const limit = d.causal ? d.queryOffset + i + 1 : d.keySeq;
          const keys: number[] = [];
          forEachKeyRange(selection, selectionRow(selection, b, h, d.groupSize, i), limit, (s, e) => {
            for (let j = s; j < e; j++) keys.push(j);
          });
          pairs += keys.length;
          const row = (b * d.queryHeads + h) * d.querySeq + i;
          const qo = rowOffset(d.qDims, b, h, i);
          const scores = keys.map((j) => {
            let dot = 0;
            const ko = rowOffset(d.kDims, b, kvh, j);
            for (let c = 0; c < d.headDim; c++) dot += input.q.data[qo + c]! * input.k.data[ko + c]!;
            return dot * d.scale;
          });
          const max = Math.max(...scores);
          let sum = 0;
          for (const [n, j] of keys.entries()) {
            const p = Math.exp(scores[n]! - max);
            sum += p;
            const vo = rowOffset(d.vDims, b, kvh, j);
            for (let c = 0; c < d.valueDim; c++) out[row * d.valueDim + c]! += p * input.v.data[vo + c]!;
          }
          for (let c = 0; c < d.valueDim; c++) out[row * d.valueDim + c]! /= sum || 1;
          lse[row] = keys.length ? max + Math.log(sum) : -Infinity;
        }
      }
    }
    return { out, lse, pairs };
  }

  const caseArbitrary = fc.record({
    seed: fc.integer({ min: 0, max: 1 << 30 }),
    keySeq: fc.integer({ min: 1, max: 300 }),
    queryFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    kvHeads: fc.integer({ min: 1, max: 2 }),
    group: fc.constantFrom(1, 2, 4),
    scope: fc.constantFrom('query' as const, 'kv' as const),
    kind: fc.constantFrom('token' as const, 'block' as const),
    blockSize: fc.constantFrom(8, 16, 64),
    queryBlockSize: fc.constantFrom(16, 64, 100, 128),
    density: fc.double({ min: 0, max: 1, noNaN: true }),
    causal: fc.boolean(),
    headDim: fc.constantFrom(8, 13, 64),
    valueDim: fc.constantFrom(8, 6),
  });

  it('equals exact attention over the selection (random block/token selections, GQA, Sq ≤ Sk, causal or not)', () => {
    fc.assert(
      fc.property(caseArbitrary, (c) => {
        const querySeq = Math.max(1, Math.round(c.queryFraction * c.keySeq));
        const rng = new Rng(c.seed);
        const w = createWorkload('gaussian', { queryHeads: c.kvHeads * c.group, kvHeads: c.kvHeads, seqLength: c.keySeq, headDim: c.headDim, valueDim: c.valueDim, seed: c.seed });
        const input: AttentionInput = { q: sliceSeq(w.input.q, c.keySeq - querySeq, c.keySeq), k: w.input.k, v: w.input.v, causal: c.causal };
        const blockSize = c.kind === 'token' ? 1 : c.blockSize;
        const heads = c.scope === 'kv' ? c.kvHeads : c.kvHeads * c.group;
        const rows = Math.ceil(querySeq / c.queryBlockSize);
        const builder = new SelectionBuilder({ kind: c.kind, blockSize, headScope: c.scope, batch: 1, heads, rows, queryBlockSize: c.queryBlockSize, keySeq: c.keySeq });
        const units = Math.ceil(c.keySeq / blockSize);
        for (let r = 0; r < heads * rows; r++) builder.pushRow(Array.from({ length: units }, (_, j) => j).filter(() => rng.next() < c.density));
        const selection = builder.finish();
        const result = sparseAttention(input, selection);
        const flash = Math.min(c.queryBlockSize, querySeq) * (c.scope === 'kv' ? c.group : 1) >= 16;
        expect(result.backend.kernel).toBe(flash ? 'executor-flash-wasm-simd' : 'executor-wasm-simd');
        const expected = expectedOutput(input, selection);
        expect(result.stats.pairs).toBe(expected.pairs);
        const truth = tensor(result.output.shape, Float32Array.from(expected.out));
        if (expected.pairs > 0) expect(relativeL2Error(result.output, truth)).toBeLessThan(1e-5);
        for (let i = 0; i < expected.lse.length; i++) {
          if (expected.lse[i] === -Infinity) {
            expect(result.lse[i]).toBe(-Infinity);
            for (let e = 0; e < c.valueDim; e++) expect(result.output.data[i * c.valueDim + e]).toBe(0);
          } else {
            expect(Math.abs(result.lse[i]! - expected.lse[i]!)).toBeLessThan(1e-4 * (1 + Math.abs(expected.lse[i]!)));
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('gives identical results with worker threads sharing the tasks, across several jobs', () => {
    const seq = 700;
    const w = createWorkload('structured', { queryHeads: 4, kvHeads: 2, seqLength: seq, headDim: 16, seed: 3 });
    const rng = new Rng(4);
    const builder = new SelectionBuilder({ kind: 'block', blockSize: 64, headScope: 'kv', batch: 1, heads: 2, rows: Math.ceil(seq / 64), queryBlockSize: 64, keySeq: seq });
    for (let r = 0; r < 2 * Math.ceil(seq / 64); r++) {
      const last = r % Math.ceil(seq / 64);
      builder.pushRow(Array.from({ length: last + 1 }, (_, j) => j).filter((j) => j === 0 || j === last || rng.next() < 0.3));
    }
    const selection = builder.finish();
    const alone = sparseAttention(w.input, selection, { threads: 1 });
    const shared = sparseAttention(w.input, selection, { threads: 2, maxJobFloats: 20_000 });
    expect(alone.backend.device).toBe('cpu, 1 thread');
    expect(shared.backend.device).toBe('cpu, 2 threads');
    expect(Array.from(shared.output.data)).toEqual(Array.from(alone.output.data));
    const expected = expectedOutput(w.input, selection);
    expect(relativeL2Error(alone.output, tensor(alone.output.shape, Float32Array.from(expected.out)))).toBeLessThan(1e-5);
    expect(alone.stats.pairs).toBe(expected.pairs);
  });
});
