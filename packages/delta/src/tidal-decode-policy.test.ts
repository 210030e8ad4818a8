import { rowKeys } from '@sparse-attn/core';
import { createRandomModel, type LayerRecord } from '@sparse-attn/model';
import { describe, expect, it } from 'vitest';
import { createDeltaPolicy } from './delta.js';
import { planLayers, collectAttentionTrace } from './hylra-planner.js';
import { topKIndices } from './top-k.js';
import { createTidalDecodePolicy } from './tidal-decode.js';

const model = createRandomModel({ num_hidden_layers: 6, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, intermediate_size: 96, vocab_size: 128 }, { seed: 5 });
const prompt = Array.from({ length: 90 }, (_, i) => (i * 29 + 3) % 128);

describe('TidalDecode on a model session', () => {
  it('selects per query head at the selection and correction layers, within the budget, reused by the layers after them', () => {
    const policy = createTidalDecodePolicy({ layers: 6, config: { tokenBudget: 20, selectionLayer: 1, correctionLayer: 3 } });
    expect(policy.plan.roles).toEqual(['full', 'delta', 'sparse', 'delta', 'sparse', 'sparse']);
    const queries = new Map<number, Float32Array>();
    const directives: string[] = [];
    const session = model.createSession({
      policy,
      observers: [{ beginStep: () => { directives.length = 0; }, onAttention: (r: LayerRecord) => { directives.push(r.directive); queries.set(r.layer, r.q.data.slice()); } }],
    });
    session.forward(prompt);
    expect(policy.lastStep!.active).toBe(false);
    for (let s = 0; s < 3; s++) {
      session.forward([s + 7]);
      const report = policy.lastStep!;
      const N = prompt.length + s + 1;
      expect(report.active).toBe(true);
      expect(directives).toEqual(['dense', 'dense', 'selection', 'dense', 'selection', 'selection']);
      for (const layer of session.layers) expect(layer.cache.length).toBe(N);
      for (const l of [1, 3]) {
        const sel = report.selections[l]!;
        expect(sel.kind).toBe('token');
        expect(sel.headScope).toBe('query');
        expect(sel.heads).toBe(4);
        const perHead = [0, 1, 2, 3].map((h) => rowKeys(sel, h));
        const cache = session.layers[l]!.cache.keys();
        const cap = cache.seqCapacity ?? N;
        for (const [h, keys] of perHead.entries()) {
          expect(keys).toHaveLength(20);
          // The head's top-20 raw logits, brute force in float64 from its query and the layer's cache.
          const q = queries.get(l)!;
          const kv = Math.floor(h / 2);
          const logits = Array.from({ length: N }, (_, t) => {
            let dot = 0;
            for (let c = 0; c < 16; c++) dot += q[h * 16 + c]! * cache.data[(kv * cap + t) * 16 + c]!;
            return dot;
          });
          expect(keys).toEqual(Array.from(topKIndices(logits, 20)));
        }
        expect(new Set(perHead.map((k) => k.join())).size).toBeGreaterThan(1);
      }
      expect(report.selections[2]).toBe(report.selections[1]);
      expect(report.selections[4]).toBe(report.selections[3]);
      expect(report.selections[5]).toBe(report.selections[3]);
      for (const l of [2, 4, 5]) expect(report.attendedKeys[l]).toBeLessThanOrEqual(20);
    }
  });

  it('a budget covering the context decodes exactly as the dense model', () => {
    const dense = model.createSession();
    const tidal = model.createSession({ policy: createTidalDecodePolicy({ layers: 6, config: { tokenBudget: 200 } }) });
    expect(tidal.forward(prompt).logits).toEqual(dense.forward(prompt).logits);
    for (let s = 0; s < 3; s++) expect(tidal.forward([s]).logits).toEqual(dense.forward([s]).logits);
  });
});

describe('a HyLRA plan runs through the DELTA policy', () => {
  it('plans from a calibration trace and decodes with it', () => {
    const trace = collectAttentionTrace(model, prompt, 2);
    const plan = planLayers(trace, { pageSize: 8, pageBudget: 4, recentPages: 1, rollbackLayers: 1, maxRecomputes: 2 });
    const policy = createDeltaPolicy({ layers: 6, config: { pageSize: 8, pageBudget: 4, recentPages: 1 }, plan });
    expect(policy.plan).toBe(plan);
    const session = model.createSession({ policy });
    session.forward(prompt);
    session.forward([1]);
    const report = policy.lastStep!;
    expect(report.active).toBe(true);
    for (const [l, role] of plan.roles.entries()) {
      if (role === 'sparse') expect(report.selections[l]).toBe(report.selections[plan.sources[l]!]);
      if (role === 'full') expect(report.selections[l]).toBeUndefined();
    }
  });
});
