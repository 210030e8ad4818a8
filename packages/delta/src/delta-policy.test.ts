import { referenceAttention, relativeL2Error, rowKeys, tensor, type Selection } from '@sparse-attn/core';
import { createRandomModel, type ForwardObserver, type LayerRecord, type ModelSession } from '@sparse-attn/model';
import { describe, expect, it } from 'vitest';
import { createDeltaPolicy } from './delta.js';
import type { ReuseStepReport } from './layer-reuse-policy.js';
import { pageScores, selectPages } from './select-pages.js';

const config = { num_hidden_layers: 8, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, intermediate_size: 96, vocab_size: 128 };
const model = createRandomModel(config, { seed: 11 });
const prompt = Array.from({ length: 150 }, (_, i) => (i * 37 + 5) % 128);
// P = 4, K = 8, L = 2: T = 38 pages at the first decode step, so the subset is active.
const sparse = { pageSize: 4, pageBudget: 8, recentPages: 2 };

/** Greedy decode of `steps` tokens after the prompt; returns tokens and per-step logits. */
function run(session: ModelSession, steps: number) {
  const logits: Float32Array[] = [];
  const tokens: number[] = [];
  let last = session.forward(prompt).logits;
  logits.push(last);
  for (let s = 0; s < steps; s++) {
    let best = 0;
    for (let i = 1; i < last.length; i++) if (last[i]! > last[best]!) best = i;
    tokens.push(best);
    last = session.forward([best]).logits;
    logits.push(last);
  }
  return { tokens, logits };
}

/** Keeps each layer's post-RoPE query and attention output of every call, plus the cache views. */
function recorder() {
  const records: { layer: number; q: Float32Array; output: Float32Array; selection?: Selection; directive: string }[][] = [];
  const observer: ForwardObserver = {
    beginStep: () => void records.push([]),
    onAttention: (r: LayerRecord) => {
      records.at(-1)!.push({ layer: r.layer, q: r.q.data.slice(), output: r.output.data.slice(), selection: r.selection, directive: r.directive });
    },
  };
  return { records, observer };
}

describe('DELTA on a model session', () => {
  it('K ≥ T gives exactly the dense model (bitwise logits, same tokens)', () => {
    const dense = run(model.createSession(), 6);
    const policy = createDeltaPolicy({ layers: 8, config: { pageSize: 4, pageBudget: 64, recentPages: 2 } });
    const delta = run(model.createSession({ policy }), 6);
    expect(delta.tokens).toEqual(dense.tokens);
    for (let s = 0; s < dense.logits.length; s++) expect(delta.logits[s]).toEqual(dense.logits[s]);
    expect(policy.lastStep!.active).toBe(false);
  });

  it('all layers full gives exactly the dense model', () => {
    const dense = run(model.createSession(), 4);
    const policy = createDeltaPolicy({ layers: 8, config: { ...sparse, fullCacheLayers: [0, 1, 2, 3, 4, 5, 6, 7] } });
    const delta = run(model.createSession({ policy }), 4);
    for (let s = 0; s < dense.logits.length; s++) expect(delta.logits[s]).toEqual(dense.logits[s]);
    expect(policy.plan.roles.every((r) => r === 'full')).toBe(true);
  });

  it('prefill is never sparsified; decode steps are, with the reuse structure of the plan', () => {
    const reports: ReuseStepReport[] = [];
    const policy = createDeltaPolicy({ layers: 8, config: sparse });
    policy.onStep = (r) => reports.push(r);
    const { records, observer } = recorder();
    const session = model.createSession({ policy, observers: [observer] });
    const densePrefill = model.createSession().forward(prompt).logits;
    const prefill = session.forward(prompt).logits;
    expect(prefill).toEqual(densePrefill);
    expect(records[0]!.every((r) => r.directive === 'dense')).toBe(true);
    expect(reports[0]!.active).toBe(false);
    expect(reports[0]!.selections.every((s) => s === undefined)).toBe(true);

    // Plan for 8 layers: full 0 1, Δ 2 4 6, sparse 3 5 7.
    expect(policy.plan.roles).toEqual(['full', 'full', 'delta', 'sparse', 'delta', 'sparse', 'delta', 'sparse']);
    for (let s = 0; s < 5; s++) {
      session.forward([(s * 13) % 128]);
      const report = reports.at(-1)!;
      const step = records.at(-1)!;
      const N = prompt.length + s + 1;
      expect(report.active).toBe(true);
      expect(report.keySeq).toBe(N);
      // Cache length N in every layer: nothing is evicted.
      for (const layer of session.layers) expect(layer.cache.length).toBe(N);
      // Full and Δ-layers dense; sparse layers attend to exactly their Δ-layer's selection object.
      expect(step.map((r) => r.directive)).toEqual(['dense', 'dense', 'dense', 'selection', 'dense', 'selection', 'dense', 'selection']);
      for (const [l, source] of [[3, 2], [5, 4], [7, 6]] as const) {
        expect(step[l]!.selection).toBe(report.selections[source]);
        expect(report.selections[l]).toBe(report.selections[source]);
      }
      // A new Δ-layer replaces the selection (the three Δ-layers do not all agree here).
      const lists = [2, 4, 6].map((l) => rowKeys(report.selections[l]!, 0).join());
      if (s === 0) expect(new Set(lists).size).toBeGreaterThan(1);
      // |sel| = min(T, K) pages, the last L pages always in, sorted, shared by both KV heads.
      const T = Math.ceil(N / 4);
      for (const l of [2, 4, 6]) {
        const sel = report.selections[l]!;
        expect(sel.kind).toBe('block');
        expect(sel.heads).toBe(2);
        const pages = Array.from(sel.indices.subarray(sel.offsets[0]!, sel.offsets[1]!));
        expect(Array.from(sel.indices.subarray(sel.offsets[1]!, sel.offsets[2]!))).toEqual(pages);
        expect(pages.length).toBe(Math.min(T, 8));
        expect(pages).toContain(T - 1);
        expect(pages).toContain(T - 2);
        expect([...pages].sort((a, b) => a - b)).toEqual(pages);
      }
      // Attended keys: dense layers N, sparse layers at most K·P.
      expect(report.attendedKeys[0]).toBe(N);
      for (const l of [3, 5, 7]) expect(report.attendedKeys[l]).toBeLessThanOrEqual(32);
    }
  });

  it('Δ-layer page scores equal the brute force from the layer’s own q and cache; sparse layers equal exact attention over the pages', () => {
    const policy = createDeltaPolicy({ layers: 8, config: sparse });
    const { records, observer } = recorder();
    const session = model.createSession({ policy, observers: [observer] });
    session.forward(prompt);
    session.forward([42]);
    const report = policy.lastStep!;
    const step = records.at(-1)!;
    const N = report.keySeq;
    const d = model.dims;
    for (const l of [2, 4, 6]) {
      // Brute force in float64: p[h][t] = softmax_t(scale · q_h · k_t) over the layer's whole cache.
      const keys = session.layers[l]!.cache.keys();
      const cap = keys.seqCapacity ?? N;
      const q = step[l]!.q;
      const p = new Float32Array(d.queryHeads * N);
      for (let h = 0; h < d.queryHeads; h++) {
        const kv = Math.floor(h / (d.queryHeads / d.kvHeads));
        const logits = Array.from({ length: N }, (_, t) => {
          let dot = 0;
          for (let c = 0; c < d.headDim; c++) dot += q[h * d.headDim + c]! * keys.data[(kv * cap + t) * d.headDim + c]!;
          return dot * model.scale;
        });
        const max = Math.max(...logits);
        const sum = logits.reduce((a, x) => a + Math.exp(x - max), 0);
        for (let t = 0; t < N; t++) p[h * N + t] = Math.exp(logits[t]! - max) / sum;
      }
      const expected = Array.from(selectPages(pageScores(p, d.queryHeads, N, 4), 8, 2));
      expect(rowKeys(report.selections[l]!, 0).filter((t) => t % 4 === 0).map((t) => t / 4)).toEqual(expected);
    }
    for (const l of [3, 5, 7]) {
      // Gather the selected tokens of the layer's own cache and run the float64 reference over them.
      const tokens = rowKeys(report.selections[l]!, 0);
      const keys = session.layers[l]!.cache.keys();
      const values = session.layers[l]!.cache.values();
      const cap = keys.seqCapacity ?? N;
      const gather = (t: { data: Float32Array }) => {
        const out = new Float32Array(d.kvHeads * tokens.length * d.headDim);
        for (let h = 0; h < d.kvHeads; h++) for (const [i, j] of tokens.entries()) out.set(t.data.subarray((h * cap + j) * d.headDim, (h * cap + j + 1) * d.headDim), (h * tokens.length + i) * d.headDim);
        return tensor([1, d.kvHeads, tokens.length, d.headDim], out);
      };
      const reference = referenceAttention({ q: tensor([1, d.queryHeads, 1, d.headDim], step[l]!.q), k: gather(keys), v: gather(values) });
      expect(relativeL2Error(tensor([1, d.queryHeads, 1, d.headDim], step[l]!.output), reference.output)).toBeLessThanOrEqual(1e-5);
    }
  });

  it('decoding stays finite and close to the dense model at a moderate budget', () => {
    const dense = run(model.createSession(), 4);
    const policy = createDeltaPolicy({ layers: 8, config: { pageSize: 4, pageBudget: 24, recentPages: 4 } });
    const delta = run(model.createSession({ policy }), 4);
    for (let s = 1; s < dense.logits.length; s++) {
      const a = tensor([dense.logits[s]!.length], delta.logits[s]!);
      const b = tensor([dense.logits[s]!.length], dense.logits[s]!);
      expect(relativeL2Error(a, b)).toBeLessThan(0.5);
    }
  });

  it('rejects bad configs and a plan for another depth with typed errors', () => {
    expect(() => createDeltaPolicy({ layers: 8, config: { pageBudget: 4, recentPages: 8 } })).toThrow(/recentPages/);
    expect(() => createDeltaPolicy({ layers: 8, config: { fullCacheLayers: [9] } })).toThrow(/fullCacheLayers/);
    const policy = createDeltaPolicy({ layers: 6 });
    expect(() => model.createSession({ policy }).forward([1, 2])).toThrow(/6 roles/);
  });
});
