import { describe, expect, it } from 'vitest';
import { ConfigError, validateSelection } from '@sparse-attn/core';
import { maxLogitDifference, restrictedReplayPolicy } from './__fixtures__/restricted-replay.js';
import { createRandomModel } from '@sparse-attn/model';
import { DraftModel } from './draft-model.js';
import { specKvGenerate, verticalSlash } from './speckv.js';
import { specKvPcGenerate } from './speckv-pc.js';
import { specPcGenerate } from './specpc.js';
import { tinyDraftConfig, tinyPair, tinyPrompt } from './tiny-models.js';

const { target, draft } = tinyPair(3);
const N = 80;
const prompt = tinyPrompt(N, 11);
const NEW = 5;
const C = 24;
const w = 4;

describe('SpecKV on a target/draft pair', () => {
  const run = specKvGenerate(target, draft, prompt, NEW, { capacity: C, window: w, kernel: 3 });

  it('drafts the whole answer length by default and crops every layer to exactly C', () => {
    expect(run.compressed).toBe(true);
    expect(run.lookahead.length).toBe(NEW);
    expect(Array.from(run.lookahead)).toEqual(Array.from(draft.generate(prompt, NEW).tokens));
    expect(run.keptPerLayer).toEqual([C, C, C]);
  });

  it('keeps C − w selected entries, then the last w prompt tokens before x[N−1], then re-feeds x[N−1] at N−1 and decodes at N + t', () => {
    for (const layer of run.session.layers) {
      for (let h = 0; h < layer.cache.kvHeads; h++) {
        const positions = Array.from(layer.cache.positions(h));
        expect(positions).toHaveLength(C + NEW);
        const selected = positions.slice(0, C - w);
        expect(selected.every((p, i) => p < N - w - 1 && (i === 0 || p > selected[i - 1]!))).toBe(true);
        expect(positions.slice(C - w, C)).toEqual(Array.from({ length: w }, (_, i) => N - w - 1 + i));
        expect(positions.slice(C)).toEqual([N - 1, ...Array.from({ length: NEW - 1 }, (_, t) => N + t)]);
      }
    }
    expect(run.session.nextPosition).toBe(N + NEW - 1);
  });

  it('decode reads exactly the kept entries: a dense replay restricted to them generates the same tokens', () => {
    // Dense replay of [x ‖ y], then x[N−1] re-fed and decoding, each decode step restricted to the
    // cache indices holding SpecKV's kept entries (prompt index = position; the re-fed token and
    // the generated ones sit after the lookahead).
    const L = run.lookahead.length;
    const positions = run.session.layers.map((l) => Array.from({ length: l.cache.kvHeads }, (_, h) => Array.from(l.cache.positions(h))));
    const indexOf = (p: number) => (p < N - 1 ? p : N + L + (p - (N - 1)));
    const session = target.createSession({ policy: restrictedReplayPolicy(target, (layer, h) => positions[layer]![h]!.map(indexOf)) });
    session.forward(Int32Array.from([...prompt, ...run.lookahead]), { logits: 'none' });
    session.forward([prompt[N - 1]!], { positions: [N - 1] });
    const replay = session.generate([], NEW);
    expect(Array.from(replay.tokens)).toEqual(Array.from(run.tokens));
    expect(maxLogitDifference(run.session.lastLogits!, session.lastLogits!)).toBeLessThan(1e-4);
  });

  it('memory: the cache holds C + generated entries instead of N + generated', () => {
    const d = target.dims;
    expect(run.kvBytes).toBe(d.layers * (C + NEW) * d.kvHeads * d.headDim * 8);
    expect(run.kvBytes).toBeLessThan(run.denseKvBytes);
  });

  it('an explicit lookahead length and the sparse (vertical-slash) prefill', () => {
    const sparse = specKvGenerate(target, draft, prompt, NEW, { capacity: C, window: w, kernel: 3, lookahead: 2, sparsePrefill: true, prefillWindow: 64, prefillVertical: 8 });
    expect(sparse.lookahead.length).toBe(2);
    expect(sparse.sparsePrefill).toBe(true);
    expect(sparse.keptPerLayer).toEqual([C, C, C]);
    for (const t of sparse.tokens) expect(t >= 0 && t < 128).toBe(true);
    const plain = specKvGenerate(target, draft, prompt, NEW, { capacity: C, window: w, kernel: 3, lookahead: 2 });
    expect(plain.sparsePrefill).toBe(false);
  });

  it('rejects bad configs and a draft with another vocabulary', () => {
    expect(() => specKvGenerate(target, draft, prompt, NEW, { kernel: 4 })).toThrow(ConfigError);
    expect(() => specKvGenerate(target, draft, prompt, NEW, { capacity: 8, window: 16 })).toThrow(ConfigError);
    expect(() => specKvGenerate(target, draft, prompt, NEW, { prefillWindow: 100 })).toThrow(ConfigError);
    const other = new DraftModel(createRandomModel({ ...tinyDraftConfig, vocab_size: 64 }, { seed: 2 }));
    expect(() => specKvGenerate(target, other, prompt, NEW)).toThrow(ConfigError);
  });
});

describe('vertical-slash prefill selection', () => {
  it('each 64-query block reads the top vertical keys before its band plus the band', () => {
    const scores = Float32Array.from({ length: 2 * 100 }, (_, i) => ((i * 37) % 101) / 101);
    const s = verticalSlash(scores, 2, 130, 100, 5, 64);
    validateSelection(s);
    expect(s.rows).toBe(3);
    const row = (h: number, r: number) => Array.from(s.indices.subarray(s.offsets[h * 3 + r]!, s.offsets[h * 3 + r + 1]!));
    expect(row(0, 0)).toEqual(Array.from({ length: 64 }, (_, i) => i));
    const last = row(1, 2);
    expect(last.filter((j) => j >= 64)).toEqual(Array.from({ length: 66 }, (_, i) => 64 + i));
    expect(last.filter((j) => j < 64).length).toBeLessThanOrEqual(5);
  });
});

describe('SpecPC on a target/draft pair', () => {
  it('the target sees exactly C prompt tokens, the tail window included, at re-indexed positions', () => {
    const run = specPcGenerate(target, draft, prompt, NEW, { capacity: C, window: w, kernel: 5, startLayer: 1 });
    expect(run.keptIndices).toHaveLength(C);
    expect(Array.from(run.keptIndices.slice(-w))).toEqual(Array.from({ length: w }, (_, i) => N - w + i));
    expect(run.positionMode).toBe('reindexed');
    expect(Array.from(run.session.layers[0]!.cache.positions(0).slice(0, C))).toEqual(Array.from({ length: C }, (_, i) => i));
    // Equivalent to plain generation on the kept tokens.
    const plain = target.createSession().generate(Int32Array.from(run.keptIndices, (i) => prompt[i]!), NEW);
    expect(Array.from(run.tokens)).toEqual(Array.from(plain.tokens));
    expect(run.draftMs).toBeGreaterThan(0);
  });
  it('the position-preserving option runs the kept tokens at their original positions', () => {
    const run = specPcGenerate(target, draft, prompt, NEW, { capacity: C, window: w, kernel: 5, positions: 'original' });
    expect(Array.from(run.session.layers[1]!.cache.positions(1).slice(0, C))).toEqual(Array.from(run.keptIndices));
    expect(run.session.nextPosition).toBe(N + NEW - 1);
  });
  it('the window may not exceed the prompt; the capacity must hold the window', () => {
    expect(() => specPcGenerate(target, draft, prompt, NEW, { capacity: 8, window: 16 })).toThrow(ConfigError);
  });
});

describe('SpecKV-PC cascade', () => {
  it('compresses the prompt to the SpecPC budget, then the KV cache to the SpecKV budget, reusing the draft lookahead', () => {
    const run = specKvPcGenerate(target, draft, prompt, NEW, {
      promptCompression: { capacity: 48, window: 8, kernel: 4, neighbors: 4 },
      kvCompression: { capacity: 16, window: 4, kernel: 3 },
    });
    expect(run.keptIndices).toHaveLength(48);
    expect(run.lookahead.length).toBe(NEW);
    expect(run.keptPerLayer).toEqual([16, 16, 16]);
  });
});

describe('the draft model', () => {
  it('resets its cache between calls and can release it', () => {
    const a = draft.generate(prompt, 3).tokens;
    expect(draft.kvBytes).toBeGreaterThan(0);
    const b = draft.generate(prompt, 3).tokens;
    expect(Array.from(a)).toEqual(Array.from(b));
    draft.reset();
    expect(draft.kvBytes).toBe(0);
    draft.release();
    expect(draft.kvBytes).toBe(0);
  });
  it('observe returns one score per prompt token and rejects a window longer than the prompt', () => {
    const o = draft.observe(prompt, 2, { window: 8, fromLayer: 8, weighted: true, reduction: 'max' });
    expect(o.scores).toHaveLength(N);
    expect(o.tokens).toHaveLength(2);
    expect(Math.max(...o.scores)).toBeGreaterThan(0);
    expect(() => draft.observe(prompt.slice(0, 4), 1, { window: 8, fromLayer: 0, weighted: true, reduction: 'max' })).toThrow(ConfigError);
  });
});
