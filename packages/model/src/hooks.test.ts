import { ConfigError, Rng, SelectionBuilder, ShapeError, attentionProbabilities, denseMethod, maxAbsDiff, sliceSeq, sparseAttention, tensor, type AttentionMethod, type Selection } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import {
  attentionScores,
  createRandomModel,
  resolveCaptureQueries,
  type AttentionScores,
  type LayerPolicy,
  type LayerRecord,
  type LayerSummary,
  type LlamaConfigInput,
  type ScoreCapture,
} from './index.js';

const config: LlamaConfigInput = {
  num_hidden_layers: 3,
  hidden_size: 32,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 48,
  vocab_size: 53,
  rope_theta: 1000,
};
const model = createRandomModel(config, { seed: 21, std: 0.3 });
const rng = new Rng(4);
const tokens = Array.from({ length: 19 }, () => rng.int(53));

/** A token-level, KV-head-scoped selection with the same key list for every head and query row. */
function tokenSelection(keys: number[], keySeq: number): Selection {
  const b = new SelectionBuilder({ kind: 'token', headScope: 'kv', batch: 1, heads: 2, rows: 1, keySeq });
  for (let h = 0; h < 2; h++) b.pushRow(keys);
  return b.finish();
}

describe('layer policy', () => {
  it('a forced selection is honoured: the layer output is core sparseAttention over its cache with that selection', () => {
    const session = model.createSession();
    session.forward(tokens.slice(0, 18));
    const keep = [0, 3, 9, 17, 18];
    const records: LayerRecord[] = [];
    let cacheKeys: ReturnType<typeof session.layers[0]['cache']['keys']> | undefined;
    const policy: LayerPolicy = {
      planLayer: ({ layer, step }) => (layer === 1 ? { kind: 'selection', selection: tokenSelection(keep, step.cacheLengthBefore + 1) } : undefined),
      afterAttention: ({ layer, cache }, record) => {
        if (layer === 1) cacheKeys = { ...cache.keys(), data: cache.keys().data.slice() };
        records.push(record);
      },
    };
    const sparse = session.forward([tokens[18]!], { policy });
    const layer1 = records[1]!;
    expect(layer1.directive).toBe('selection');
    expect(layer1.selection!.indices).toEqual(tokenSelection(keep, 19).indices);
    expect(layer1.stats.pairs).toBe(4 * keep.length);
    const expected = sparseAttention({ q: layer1.q, k: cacheKeys!, v: session.layers[1]!.cache.values(), scale: model.scale }, tokenSelection(keep, 19));
    expect(maxAbsDiff(layer1.output, expected.output)).toBe(0);
    expect(sparse.trace[1]!.directive).toBe('selection');
    expect(sparse.trace[0]!.directive).toBe('method');

    // The same step without the policy differs; with a selection of every key it equals dense.
    const dense = model.createSession();
    dense.forward(tokens.slice(0, 18));
    const denseStep = dense.forward([tokens[18]!]);
    expect(maxAbsDiff(tensor([53], sparse.logits), tensor([53], denseStep.logits))).toBeGreaterThan(1e-3);
    const all = model.createSession();
    all.forward(tokens.slice(0, 18));
    const allKeys = Array.from({ length: 19 }, (_, i) => i);
    const full = all.forward([tokens[18]!], { policy: { planLayer: ({ step }) => ({ kind: 'selection', selection: tokenSelection(allKeys, step.cacheLengthBefore + 1) }) } });
    expect(maxAbsDiff(tensor([53], full.logits), tensor([53], denseStep.logits))).toBeLessThan(1e-5);
  });

  it('a forced selection also applies to a multi-token prefill, masked causally', () => {
    const keySeq = 7;
    const b = new SelectionBuilder({ kind: 'block', blockSize: 4, headScope: 'kv', batch: 1, heads: 2, rows: keySeq, keySeq });
    for (let h = 0; h < 2; h++) for (let r = 0; r < keySeq; r++) b.pushRow([0, 1]);
    const selection = b.finish();
    const full = model.forward(tokens.slice(0, keySeq), { policy: { planLayer: () => ({ kind: 'selection', selection }) } });
    const dense = model.forward(tokens.slice(0, keySeq));
    // Blocks 0 and 1 cover keys 0..6: every causally visible key, so this is dense.
    expect(maxAbsDiff(tensor([7, 53], full.logits), tensor([7, 53], dense.logits))).toBeLessThan(1e-5);
  });

  it('a selection for the wrong key length is a ShapeError from the executor', () => {
    const session = model.createSession();
    session.forward(tokens.slice(0, 5));
    expect(() => session.forward([1], { policy: { planLayer: () => ({ kind: 'selection', selection: tokenSelection([0], 5) }) } })).toThrow(ShapeError);
  });

  it('captured scores equal core attention probabilities, later layers see them in the trace, and a layer can reuse them', () => {
    const session = model.createSession();
    session.forward(tokens.slice(0, 18));
    const seen: LayerSummary[][] = [];
    const records: LayerRecord[] = [];
    const policy: LayerPolicy = {
      planLayer: ({ layer, trace }) => {
        seen.push([...trace]);
        if (layer === 0) return { kind: 'dense', capture: { queries: 'last' } };
        // Layer 1 keeps layer 0's 5 most attended keys (max over query heads), TidalDecode-style.
        const scores = trace[0]!.scores!;
        const tokenScore = Array.from({ length: scores.keySeq }, (_, t) => Math.max(...Array.from({ length: scores.queryHeads }, (_, h) => scores.probabilities[h * scores.keySeq + t]!)));
        const top = tokenScore.map((s, t) => [s, t] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 5).map(([, t]) => t).sort((a, b) => a - b);
        if (layer === 1) return { kind: 'selection', selection: tokenSelection(top, scores.keySeq), capture: { queries: [0] } };
        return undefined;
      },
      afterAttention: (_c, record) => records.push(record),
    };
    const result = session.forward([tokens[18]!], { policy });
    expect(seen.map((t) => t.length)).toEqual([0, 1, 2]);
    const scores0 = records[0]!.scores!;
    expect(scores0.keySeq).toBe(19);
    expect(Array.from(scores0.queries)).toEqual([0]);
    const cache0 = session.layers[0]!.cache;
    for (let h = 0; h < 4; h++) {
      const truth = attentionProbabilities({ q: records[0]!.q, k: cache0.keys(), v: cache0.values(), scale: model.scale }, 0, h, 0);
      const mine = scores0.probabilities.subarray(h * 19, (h + 1) * 19);
      for (let j = 0; j < 19; j++) expect(Math.abs(mine[j]! - truth[j]!)).toBeLessThan(1e-6);
    }
    // Layer 1's captured probabilities live on its 5 selected keys only and sum to 1 per head.
    const scores1 = records[1]!.scores!;
    const chosen = new Set(result.trace[1]!.selection!.indices);
    for (let h = 0; h < 4; h++) {
      let sum = 0;
      for (let j = 0; j < 19; j++) {
        const p = scores1.probabilities[h * 19 + j]!;
        if (!chosen.has(j)) {
          expect(p).toBe(0);
          expect(scores1.logits[h * 19 + j]).toBe(-Infinity);
        }
        sum += p;
      }
      expect(sum).toBeCloseTo(1, 5);
    }
    expect(result.trace[2]!.scores).toBeUndefined();
  });

  it('the policy sees every step and phase in order', () => {
    const events: string[] = [];
    const session = model.createSession({
      policy: {
        beginStep: (s) => events.push(`begin ${s.index} ${s.phase} ${s.cacheLengthBefore}`),
        endStep: (s, trace) => events.push(`end ${s.index} ${trace.length}`),
      },
    });
    session.forward(tokens.slice(0, 3));
    session.forward([4]);
    session.forward([5, 6]);
    expect(events).toEqual(['begin 0 prefill 0', 'end 0 3', 'begin 1 decode 3', 'end 1 3', 'begin 2 prefill 4', 'end 2 3']);
  });
});

describe('reduced captures', () => {
  /** Captures layer 1's scores of a 19-token prefill under `capture`. */
  function capture(options: Omit<ScoreCapture, 'queries'>, queries: ScoreCapture['queries'] = 'all') {
    let scores: AttentionScores | undefined;
    model.forward(tokens, {
      policy: {
        planLayer: ({ layer }) => (layer === 1 ? { kind: 'method', capture: { queries, ...options } } : undefined),
        afterAttention: (_c, record) => { if (record.layer === 1) scores = record.scores; },
      },
    });
    return scores!;
  }

  it('sum, mean, max and weighted folds equal folding the full per-query rows by hand', () => {
    const full = capture({});
    const [heads, nq, keys] = [full.queryHeads, full.queries.length, full.keySeq];
    expect([heads, nq, keys]).toEqual([4, 19, 19]);
    const weights = Array.from({ length: nq }, (_, i) => i / (nq - 1));
    const fold = (op: (acc: number, p: number, i: number) => number, init: number) => {
      const out = new Float64Array(heads * keys).fill(init);
      for (let h = 0; h < heads; h++) for (let i = 0; i < nq; i++) for (let j = 0; j < keys; j++) out[h * keys + j] = op(out[h * keys + j]!, full.probabilities[(h * nq + i) * keys + j]!, i);
      return out;
    };
    const cases: [Omit<ScoreCapture, 'queries'>, Float64Array][] = [
      [{ reduce: 'sum' }, fold((a, p) => a + p, 0)],
      [{ reduce: 'mean' }, fold((a, p) => a + p / nq, 0)],
      [{ reduce: 'max' }, fold((a, p) => Math.max(a, p), 0)],
      [{ reduce: 'max', weights }, fold((a, p, i) => Math.max(a, weights[i]! * p), 0)],
      [{ reduce: 'sum', weights }, fold((a, p, i) => a + weights[i]! * p, 0)],
    ];
    for (const [options, expected] of cases) {
      const scores = capture(options);
      expect(scores.reduction).toBe(options.reduce);
      expect(scores.probabilities.length).toBe(0);
      expect(scores.reduced!.length).toBe(heads * keys);
      for (let x = 0; x < expected.length; x++) expect(Math.abs(scores.reduced![x]! - expected[x]!)).toBeLessThan(1e-5);
    }
    // Causal: the last key is seen by the last query only, so its column sum is that query's probability.
    const sum = capture({ reduce: 'sum' });
    expect(sum.reduced![keys - 1]).toBeCloseTo(full.probabilities[(nq - 1) * keys + keys - 1]!, 6);
  });

  it('query chunking does not change the result, and weights need a reduction and one weight per query', () => {
    const session = model.createSession();
    let record: LayerRecord | undefined;
    session.forward(tokens, { policy: { afterAttention: (_c, r) => { if (r.layer === 0) record = r; } } });
    const keys = session.layers[0]!.cache.keys();
    const queries = resolveCaptureQueries('all', 19);
    const whole = attentionScores(record!.q, keys, queries, model.scale, undefined, { reduce: 'sum' });
    const chunked = attentionScores(record!.q, keys, queries, model.scale, undefined, { reduce: 'sum', queryChunk: 4 });
    expect(maxAbsDiff(tensor([4, 19], chunked.reduced!), tensor([4, 19], whole.reduced!))).toBeLessThan(1e-6);
    const plain = attentionScores(record!.q, keys, queries, model.scale);
    const plainChunked = attentionScores(record!.q, keys, queries, model.scale, undefined, { queryChunk: 5 });
    expect(maxAbsDiff(tensor([plain.probabilities.length], plainChunked.probabilities), tensor([plain.probabilities.length], plain.probabilities))).toBeLessThan(1e-6);
    expect(() => capture({ weights: [1] }, 'last')).toThrow(/weights apply before a reduction/);
    expect(() => capture({ reduce: 'max', weights: [1, 2] }, 'last')).toThrow(/2 weights for 1 captured queries/);
  });

  it('a per-query capture too large to materialise is refused up front with a pointer to reduce', () => {
    const length = 6000;
    const q = tensor([1, 4, length, 8], new Float32Array(4 * length * 8));
    const k = tensor([1, 2, length, 8], new Float32Array(2 * length * 8));
    expect(() => attentionScores(q, k, resolveCaptureQueries('all', length), 1)).toThrow(ConfigError);
    expect(() => attentionScores(q, k, resolveCaptureQueries('all', length), 1)).toThrow(/1099 MiB of scores.*capture\.reduce/);
  });
});

describe('observers', () => {
  it('see post-RoPE q/k/v and the attention output of every layer, and the residual stream', () => {
    const records: { layer: number; q: number[]; k: number[]; v: number[]; out: number[]; keySeq: number }[] = [];
    let hiddenRows = 0;
    let lastKeys: Float32Array | undefined;
    const session = model.createSession({
      observers: [{
        onAttention: (r) => {
          lastKeys = r.k.data.slice();
          records.push({ layer: r.layer, q: [...r.q.shape], k: [...r.k.shape], v: [...r.v.shape], out: [...r.output.shape], keySeq: r.keySeq });
        },
        onLayerOutput: (_l, h) => { hiddenRows = h.length / 32; },
      }],
    });
    session.forward(tokens.slice(0, 6));
    session.forward([1]);
    expect(records).toHaveLength(6);
    expect(records[0]).toEqual({ layer: 0, q: [1, 4, 6, 8], k: [1, 2, 6, 8], v: [1, 2, 6, 8], out: [1, 4, 6, 8], keySeq: 6 });
    expect(records[5]).toEqual({ layer: 2, q: [1, 4, 1, 8], k: [1, 2, 1, 8], v: [1, 2, 1, 8], out: [1, 4, 1, 8], keySeq: 7 });
    expect(hiddenRows).toBe(1);
    // The cached keys are exactly the post-RoPE keys the observer saw.
    const cached = sliceSeq(session.layers[2]!.cache.keys(), 6, 7);
    expect(Array.from(cached.data)).toEqual(Array.from(lastKeys!));
  });
});

describe('KV cache editing', () => {
  /** Keeps every other prompt entry plus the last one in every layer, right after prefill. */
  const evictAfterPrefill = (keep: number[]): LayerPolicy => ({
    afterAttention: ({ step, cache }) => {
      if (step.phase === 'prefill') cache.retain([keep, keep]);
    },
  });

  it('retain keeps original positions; decode continues at N + t and equals sparse attention over the kept keys', () => {
    const prompt = tokens.slice(0, 12);
    const keep = [0, 2, 4, 6, 8, 10, 11];
    const evicted = model.createSession({ policy: evictAfterPrefill(keep) });
    evicted.forward(prompt);
    for (const layer of evicted.layers) {
      expect(layer.cache.length).toBe(7);
      expect(Array.from(layer.cache.positions(0))).toEqual(keep);
      expect(Array.from(layer.cache.positions(1))).toEqual(keep);
    }
    const step = evicted.forward([tokens[12]!]);
    expect(Array.from(step.step.positions)).toEqual([12]);
    expect(Array.from(evicted.layers[0]!.cache.positions(1))).toEqual([...keep, 12]);

    // Reference: full cache, the decode step restricted to the kept keys plus the new one.
    const reference = model.createSession();
    reference.forward(prompt);
    const selected = [...keep, 12];
    const expected = reference.forward([tokens[12]!], { policy: { planLayer: () => ({ kind: 'selection', selection: tokenSelection(selected, 13) }) } });
    expect(maxAbsDiff(tensor([53], step.logits), tensor([53], expected.logits))).toBeLessThan(1e-5);
  });

  it('re-indexing: explicit positions override the default N + t', () => {
    const session = model.createSession({ policy: evictAfterPrefill([1, 3]) });
    session.forward(tokens.slice(0, 4));
    const step = session.forward([7], { positions: [session.cacheLength] });
    expect(Array.from(step.step.positions)).toEqual([2]);
    expect(session.nextPosition).toBe(3);
  });

  it('crop keeps the first entries; edits are refused on decoder-driven layers and by bad lists', () => {
    const session = model.createSession();
    session.forward(tokens.slice(0, 6));
    session.layers[0]!.cache.crop(4);
    expect(session.layers[0]!.cache.length).toBe(4);
    expect(() => session.layers[0]!.cache.retain([[0, 0], [0, 1]])).toThrow(ShapeError);
    expect(() => session.layers[0]!.cache.crop(9)).toThrow(ShapeError);

    const driven = model.createSession({ attention: denseMethod.create(), driver: (layer) => (layer === 1 ? 'decoder' : 'cache') });
    driven.forward(tokens.slice(0, 6));
    expect(driven.layers[1]!.cache.editable).toBe(false);
    expect(() => driven.layers[1]!.cache.crop(2)).toThrow(ConfigError);
    expect(() => driven.forward([1], { policy: { planLayer: () => ({ kind: 'dense' }) } })).toThrow(/driven by method 'dense''s own decoder/);
  });
});

describe('per-layer methods', () => {
  it("each layer runs its own method on the call's queries over its whole cache (cache driver)", () => {
    const calls: string[] = [];
    const recording = (name: string): AttentionMethod => {
      const inner = denseMethod.create();
      return {
        ...inner,
        methodId: name,
        prefill: (input) => {
          calls.push(`${name} q${input.q.shape[2]} k${input.k.shape[2]}`);
          return inner.prefill(input);
        },
      };
    };
    const session = model.createSession({ attention: [recording('a'), denseMethod.create(), recording('c')] });
    const first = session.forward(tokens.slice(0, 5));
    session.forward([9]);
    expect(calls).toEqual(['a q5 k5', 'c q5 k5', 'a q1 k6', 'c q1 k6']);
    expect(session.layers.map((l) => l.method.methodId)).toEqual(['a', 'dense', 'c']);
    // Wrapped dense equals the session's direct dense path.
    const plain = model.createSession().forward(tokens.slice(0, 5));
    expect(Array.from(first.logits)).toEqual(Array.from(plain.logits));
  });
});
