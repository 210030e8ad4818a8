import { describe, expect, it } from 'vitest';
import { denseAttention } from './dense-attention.js';
import { denseMethod } from './dense-method.js';
import { ShapeError } from './errors.js';
import { KVCache } from './kv-cache.js';
import { referenceAttention } from './reference-attention.js';
import { concatSeq, maxAbsDiff, relativeL2Error, sliceSeq, tensor, type Tensor } from './tensor.js';
import { decodeTokenByToken } from './testing.js';
import { createWorkload } from './workloads.js';

/** `[b, h, s, d]` holding `1000b + 100h + 10(s + offset) + d`. */
function indexed(batch: number, heads: number, seq: number, dim: number, offset = 0): Tensor {
  const data = new Float32Array(batch * heads * seq * dim);
  let i = 0;
  for (let b = 0; b < batch; b++) for (let h = 0; h < heads; h++) for (let s = 0; s < seq; s++) for (let d = 0; d < dim; d++) data[i++] = 1000 * b + 100 * h + 10 * (s + offset) + d;
  return tensor([batch, heads, seq, dim], data);
}

describe('KVCache', () => {
  it('appends chunks, grows by doubling and keeps every row', () => {
    const cache = new KVCache({ batch: 2, kvHeads: 3, headDim: 4, valueDim: 2, initialCapacity: 2 });
    expect(cache.length).toBe(0);
    expect(cache.allocatedBytes).toBe(2 * 3 * 2 * (4 + 2) * 4);
    const keys: Tensor[] = [];
    const values: Tensor[] = [];
    let at = 0;
    for (const chunk of [1, 2, 0, 5, 1]) {
      const k = indexed(2, 3, chunk, 4, at);
      const v = indexed(2, 3, chunk, 2, at + 100);
      cache.append(k, v);
      keys.push(k);
      values.push(v);
      at += chunk;
      expect(cache.length).toBe(at);
      expect(maxAbsDiff(sliceSeq(cache.keys(), 0, at), concatSeq(keys))).toBe(0);
      expect(maxAbsDiff(sliceSeq(cache.values(), 0, at), concatSeq(values))).toBe(0);
    }
    // 9 tokens from capacity 2: 2 → 4 → 16.
    expect(cache.keys().seqCapacity).toBe(16);
    expect(cache.allocatedBytes).toBe(2 * 3 * 16 * (4 + 2) * 4);
  });

  it('hands out zero-copy views of the cache storage', () => {
    const cache = new KVCache({ batch: 1, kvHeads: 1, headDim: 2, valueDim: 2, initialCapacity: 4 });
    cache.append(indexed(1, 1, 2, 2), indexed(1, 1, 2, 2));
    const view = cache.keys();
    expect(view.shape).toEqual([1, 1, 2, 2]);
    expect(view.seqCapacity).toBe(4);
    cache.append(indexed(1, 1, 1, 2, 2), indexed(1, 1, 1, 2, 2));
    // Appending within capacity writes into the same buffer the earlier view reads.
    expect(cache.keys().data).toBe(view.data);
    expect(view.data[4]).toBe(20);
  });

  it('rejects appends that do not match the cache shape', () => {
    const cache = new KVCache({ batch: 1, kvHeads: 2, headDim: 4, valueDim: 3 });
    expect(() => cache.append(tensor([1, 1, 2, 4]), tensor([1, 1, 2, 3]))).toThrow(/KVCache\.append: k \[1, 1, 2, 4\] does not match cache \[1, 2, \*, 4\]/);
    expect(() => cache.append(tensor([1, 2, 2, 4]), tensor([1, 2, 3, 3]))).toThrow(ShapeError);
    expect(() => cache.append(tensor([1, 2, 2, 4]), tensor([1, 2, 2, 4]))).toThrow(/v \[1, 2, 2, 4\] does not match/);
    expect(() => new KVCache({ batch: 1, kvHeads: 0, headDim: 4, valueDim: 4 })).toThrow(/KVCache: kvHeads must be a positive integer, got 0/);
    expect(cache.length).toBe(0);
  });

  it('retain keeps the listed rows per (batch, head) in order; reset empties', () => {
    const cache = new KVCache({ batch: 1, kvHeads: 2, headDim: 2, valueDim: 1, initialCapacity: 8 });
    cache.append(indexed(1, 2, 6, 2), indexed(1, 2, 6, 1));
    cache.retain([[0, 3, 5], [1, 2, 4]]);
    expect(cache.length).toBe(3);
    expect([...sliceSeq(cache.keys(), 0, 3).data]).toEqual([0, 1, 30, 31, 50, 51, 110, 111, 120, 121, 140, 141]);
    expect([...sliceSeq(cache.values(), 0, 3).data]).toEqual([0, 30, 50, 110, 120, 140]);
    cache.append(indexed(1, 2, 1, 2, 9), indexed(1, 2, 1, 1, 9));
    expect([...sliceSeq(cache.keys(), 3, 4).data]).toEqual([90, 91, 190, 191]);
    expect(() => cache.retain([[0, 1]])).toThrow(/KVCache\.retain: need 2 lists, got 1/);
    expect(() => cache.retain([[0, 1], [2]])).toThrow(/list 1 keeps 1 rows, list 0 keeps 2/);
    expect(() => cache.retain([[1, 0], [0, 1]])).toThrow(/list 0 must be sorted, unique and within \[0, 4\)/);
    expect(() => cache.retain([[0, 4], [0, 1]])).toThrow(ShapeError);
    cache.reset();
    expect(cache.length).toBe(0);
    expect(cache.keys().shape).toEqual([1, 2, 0, 2]);
  });

  it('dense attention over a padded cache view equals attention over the compacted tensors', () => {
    const w = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: 19, headDim: 8, seed: 4 });
    const cache = new KVCache({ batch: 1, kvHeads: 2, headDim: 8, valueDim: 8, initialCapacity: 3 });
    cache.append(sliceSeq(w.input.k, 0, 7), sliceSeq(w.input.v, 0, 7));
    cache.append(sliceSeq(w.input.k, 7, 19), sliceSeq(w.input.v, 7, 19));
    expect(cache.keys().seqCapacity).toBe(24);
    const q = sliceSeq(w.input.q, 16, 19);
    const fromCache = denseAttention({ q, k: cache.keys(), v: cache.values() });
    expect(relativeL2Error(fromCache.output, referenceAttention({ q, k: w.input.k, v: w.input.v }).output)).toBeLessThan(1e-6);
  });
});

describe('decode through the dense method equals prefill', () => {
  const cases = [
    { label: 'S=1', batch: 1, queryHeads: 1, kvHeads: 1, seq: 1, headDim: 8 },
    { label: 'S=37, GQA 4:2', batch: 1, queryHeads: 4, kvHeads: 2, seq: 37, headDim: 16 },
    { label: 'B=2, S=29, GQA 6:3, Dv≠D', batch: 2, queryHeads: 6, kvHeads: 3, seq: 29, headDim: 8, valueDim: 12 },
  ];
  for (const c of cases) {
    it(`${c.label}: token by token and in chunks of 3 and 5`, () => {
      const { input } = createWorkload('structured', { ...c, seqLength: c.seq, seed: 21 });
      const method = denseMethod.create();
      const prefill = method.prefill(input);
      expect(relativeL2Error(prefill.output, referenceAttention(input).output)).toBeLessThan(1e-5);
      for (const chunk of [1, 3, 5]) {
        const decoded = decodeTokenByToken(method, input, chunk);
        expect(decoded.shape).toEqual(prefill.output.shape);
        expect(relativeL2Error(decoded, prefill.output), `chunk ${chunk}`).toBeLessThan(1e-5);
      }
    });
  }

  it('a decoder resets to an empty cache and checks its step shapes', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 6, headDim: 4, seed: 2 });
    const decoder = denseMethod.create().createDecoder({ batch: 1, queryHeads: 2, kvHeads: 1, headDim: 4 });
    const first = decoder.step({ q: sliceSeq(input.q, 0, 6), k: input.k, v: input.v });
    expect(decoder.length).toBe(6);
    decoder.reset();
    expect(decoder.length).toBe(0);
    const again = decoder.step({ q: sliceSeq(input.q, 0, 6), k: input.k, v: input.v });
    expect(maxAbsDiff(again.output, first.output)).toBe(0);
    expect(() => decoder.step({ q: sliceSeq(input.q, 0, 1), k: sliceSeq(input.k, 0, 2), v: sliceSeq(input.v, 0, 2) })).toThrow(/decoder step: q has 1 tokens, k has 2/);
    expect(() => decoder.step({ q: tensor([1, 3, 1, 4]), k: sliceSeq(input.k, 0, 1), v: sliceSeq(input.v, 0, 1) })).toThrow(/decoder step: q must be \[1, 2, T, 4\], got \[1, 3, 1, 4\]/);
  });
});

describe('KVCache in kernel memory', () => {
  it('reports where its rows live and behaves like a JS cache (append, growth, retain, reset)', () => {
    const js = new KVCache({ batch: 2, kvHeads: 2, headDim: 4, valueDim: 8, initialCapacity: 2 });
    const kernel = new KVCache({ batch: 2, kvHeads: 2, headDim: 4, valueDim: 8, initialCapacity: 2, storage: 'kernel' });
    expect(js.storage).toBe('js');
    expect(kernel.storage).toBe('kernel');
    for (const cache of [js, kernel]) {
      cache.append(indexed(2, 2, 3, 4), indexed(2, 2, 3, 8));
      cache.append(indexed(2, 2, 6, 4, 3), indexed(2, 2, 6, 8, 3));
      cache.retain([[0, 2, 5, 8], [1, 2, 3, 4], [0, 1, 2, 3], [5, 6, 7, 8]]);
    }
    expect(kernel.storage).toBe('kernel');
    expect(maxAbsDiff(kernel.keys(), js.keys())).toBe(0);
    expect(maxAbsDiff(kernel.values(), js.values())).toBe(0);
  });

  const shapes = [
    { label: 'one-token decode, MHA, D = 16 (read in place)', queryHeads: 2, kvHeads: 2, seq: 700, query: 1, headDim: 16, valueDim: 16 },
    { label: 'decode chunk of 3, GQA 4, several key chunks (copied in chunks)', queryHeads: 8, kvHeads: 2, seq: 600, query: 3, headDim: 8, valueDim: 12 },
    { label: 'one-token decode, MHA, several key chunks (read in place)', queryHeads: 3, kvHeads: 3, seq: 4500, query: 1, headDim: 8, valueDim: 4 },
    { label: 'D = 6 (not a whole number of vectors: copied in)', queryHeads: 2, kvHeads: 1, seq: 300, query: 1, headDim: 6, valueDim: 6 },
  ];
  for (const s of shapes) {
    it(`dense attention over the cache equals the reference: ${s.label}`, () => {
      const w = createWorkload('gaussian', { queryHeads: s.queryHeads, kvHeads: s.kvHeads, seqLength: s.seq, headDim: s.headDim, valueDim: s.valueDim, seed: 30 });
      const cache = new KVCache({ batch: 1, kvHeads: s.kvHeads, headDim: s.headDim, valueDim: s.valueDim, initialCapacity: 64, storage: 'kernel' });
      cache.append(sliceSeq(w.input.k, 0, 250), sliceSeq(w.input.v, 0, 250));
      cache.append(sliceSeq(w.input.k, 250, s.seq), sliceSeq(w.input.v, 250, s.seq));
      expect(cache.storage).toBe('kernel');
      const q = sliceSeq(w.input.q, s.seq - s.query, s.seq);
      const truth = referenceAttention({ q, k: w.input.k, v: w.input.v });
      const fast = denseAttention({ q, k: cache.keys(), v: cache.values() });
      expect(fast.backend.kernel).toBe('wasm-simd');
      expect(relativeL2Error(fast.output, truth.output)).toBeLessThan(1e-5);
      for (let i = 0; i < truth.lse.length; i++) expect(fast.lse[i]).toBeCloseTo(truth.lse[i]!, 4);
    });
  }

  it('a decode step over the cache gives identical results on 1 and 2 threads', () => {
    const w = createWorkload('gaussian', { queryHeads: 4, kvHeads: 4, seqLength: 5000, headDim: 32, seed: 31 });
    const cache = new KVCache({ batch: 1, kvHeads: 4, headDim: 32, valueDim: 32, storage: 'kernel' });
    cache.append(w.input.k, w.input.v);
    const q = sliceSeq(w.input.q, 4999, 5000);
    const alone = denseAttention({ q, k: cache.keys(), v: cache.values() }, { threads: 1 });
    const shared = denseAttention({ q, k: cache.keys(), v: cache.values() }, { threads: 2 });
    expect(alone.backend.device).toBe('cpu, 1 thread');
    expect(shared.backend.device).toBe('cpu, 2 threads');
    expect(Array.from(shared.output.data)).toEqual(Array.from(alone.output.data));
    expect(relativeL2Error(alone.output, referenceAttention({ q, k: w.input.k, v: w.input.v }).output)).toBeLessThan(1e-5);
  });

  it('the dense decoder keeps its cache in kernel memory and still equals prefill', () => {
    const { input } = createWorkload('structured', { queryHeads: 4, kvHeads: 2, seqLength: 300, headDim: 16, seed: 5 });
    const method = denseMethod.create();
    expect(relativeL2Error(decodeTokenByToken(method, input, 1), referenceAttention(input).output)).toBeLessThan(1e-5);
  });
});
