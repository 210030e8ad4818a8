import { describe, expect, it } from 'vitest';
import type { AttentionInput } from './attention.js';
import { ConfigError, ShapeError } from './errors.js';
import { denseMethod } from './dense-method.js';
import { attentionMassRecall, needleRetrieval, selectionDensity, topKRecall } from './metrics.js';
import { SelectionBuilder, type Selection } from './selection.js';
import { sparseAttention } from './sparse-executor.js';
import { tensor } from './tensor.js';
import { createWorkload } from './workloads.js';

/**
 * D = 1, scale 1, every query q = 1, keys 0, ln 2, ln 3: the last query's probabilities are
 * exactly 1/6, 2/6, 3/6; query 1 sees keys 0, 1 with 1/3, 2/3; query 0 sees key 0 alone.
 */
const small: AttentionInput = {
  q: tensor([1, 1, 3, 1], [1, 1, 1]),
  k: tensor([1, 1, 3, 1], [0, Math.log(2), Math.log(3)]),
  v: tensor([1, 1, 3, 1], [1, 2, 3]),
  causal: true,
  scale: 1,
};

function rows(list: readonly (readonly number[])[], options: { heads?: number; scope?: 'query' | 'kv'; keySeq?: number } = {}): Selection {
  const heads = options.heads ?? 1;
  const b = new SelectionBuilder({ kind: 'token', headScope: options.scope ?? 'query', batch: 1, heads, rows: list.length / heads, keySeq: options.keySeq ?? 3 });
  for (const r of list) b.pushRow(r);
  return b.finish();
}

describe('attentionMassRecall', () => {
  it('is 1 for a selection of every key (GQA, shared across the group)', () => {
    const w = createWorkload('structured', { queryHeads: 4, kvHeads: 2, seqLength: 70, headDim: 16, seed: 8 });
    const b = new SelectionBuilder({ kind: 'token', headScope: 'kv', batch: 1, heads: 2, rows: 70, keySeq: 70 });
    for (let r = 0; r < 140; r++) b.pushRange(0, 70);
    expect(attentionMassRecall(w.input, b.finish())).toBeCloseTo(1, 12);
  });

  it('matches a hand-computed case, per query and averaged', () => {
    const selection = rows([[0], [1], [1, 2]]);
    // Keys are float32, so ln 2 and ln 3 carry ~1e-8 rounding: compare to 7 digits.
    expect(attentionMassRecall(small, selection, { queries: [2] })).toBeCloseTo(5 / 6, 7);
    expect(attentionMassRecall(small, selection, { queries: [1] })).toBeCloseTo(2 / 3, 7);
    expect(attentionMassRecall(small, selection)).toBeCloseTo((1 + 2 / 3 + 5 / 6) / 3, 7);
    // Keys a causal query cannot see add nothing: query 0 selecting {2} recalls 0.
    expect(attentionMassRecall(small, rows([[2], [0], [0]]), { queries: [0] })).toBe(0);
  });

  it('samples queries deterministically and always includes the last one', () => {
    const w = createWorkload('gaussian', { queryHeads: 1, seqLength: 50, headDim: 8, seed: 1 });
    const b = new SelectionBuilder({ kind: 'token', headScope: 'query', batch: 1, heads: 1, rows: 50, keySeq: 50 });
    for (let r = 0; r < 49; r++) b.pushRow([]);
    b.pushRange(0, 50);
    const onlyLast = b.finish();
    expect(attentionMassRecall(w.input, onlyLast, { maxQueries: 1 })).toBeCloseTo(1, 12);
    const sampled = attentionMassRecall(w.input, onlyLast, { maxQueries: 10, seed: 3 });
    expect(sampled).toBeCloseTo(1 / 10, 12);
    expect(attentionMassRecall(w.input, onlyLast, { maxQueries: 10, seed: 3 })).toBe(sampled);
  });
});

describe('metric arguments', () => {
  const selection = rows([[0], [0, 1], [0, 1, 2]]);
  it('rejects query indices outside [0, querySeq) with a ShapeError naming them', () => {
    for (const bad of [3, -1, 1.5, Number.NaN]) {
      expect(() => attentionMassRecall(small, selection, { queries: [0, bad] })).toThrow(ShapeError);
      expect(() => topKRecall(small, selection, 1, { queries: [bad] })).toThrow(ShapeError);
    }
    expect(() => attentionMassRecall(small, selection, { queries: [1, 3] })).toThrow(/queries\[1\] = 3 is outside the 3 queries of this call/);
  });

  it('rejects a non-positive maxQueries or k with a ConfigError', () => {
    expect(() => attentionMassRecall(small, selection, { maxQueries: 0 })).toThrow(ConfigError);
    expect(() => topKRecall(small, selection, 0)).toThrow(/k must be a positive integer, got 0/);
    expect(() => topKRecall(small, selection, 1.5)).toThrow(ConfigError);
  });
});

describe('topKRecall', () => {
  it('counts the share of the k most probable keys that are selected', () => {
    expect(topKRecall(small, rows([[0], [0], [2]]), 1, { queries: [2] })).toBe(1);
    expect(topKRecall(small, rows([[0], [0], [0, 1]]), 1, { queries: [2] })).toBe(0);
    expect(topKRecall(small, rows([[0], [0], [1]]), 2, { queries: [2] })).toBe(0.5);
    // k is clipped to the visible keys: query 0 sees one key.
    expect(topKRecall(small, rows([[0], [0, 1], [0, 1, 2]]), 10)).toBe(1);
    expect(topKRecall(small, rows([[0], [0], [0, 1, 2]]), 10, { queries: [1] })).toBe(0.5);
  });
});

describe('selectionDensity', () => {
  it('counts only causally visible selected pairs against dense causal pairs', () => {
    expect(selectionDensity(small, rows([[0], [0, 1], [0, 1, 2]]))).toBe(1);
    expect(selectionDensity(small, rows([[0], [0, 1], [0]]))).toBeCloseTo(4 / 6, 12);
    expect(selectionDensity(small, rows([[0, 1, 2], [2], [2]]))).toBeCloseTo(2 / 6, 12);
    expect(selectionDensity({ ...small, causal: false }, rows([[0, 1, 2], [2], [2]]))).toBeCloseTo(5 / 9, 12);
  });
});

describe('needleRetrieval on the needle workload', () => {
  const w = createWorkload('needle', { queryHeads: 4, kvHeads: 2, seqLength: 300, headDim: 32, needleDepth: 0.3, needleQueries: 4, seed: 12 });
  const needle = w.needle!;

  it('dense attention retrieves the needle on every needle query and head', () => {
    const dense = denseMethod.create().prefill(w.input);
    expect(needleRetrieval(w.input, needle, dense.output)).toEqual({ selected: 1, dominated: 1 });
  });

  it('a selection that holds the needle retrieves it; one that drops it does not', () => {
    const build = (keep: (key: number) => boolean) => {
      const b = new SelectionBuilder({ kind: 'token', headScope: 'kv', batch: 1, heads: 2, rows: 300, keySeq: 300 });
      const list: number[] = [];
      for (let r = 0; r < 600; r++) {
        list.length = 0;
        for (let j = 0; j < 300; j++) if (j % 3 === 1 || keep(j)) list.push(j);
        b.pushRow(list);
      }
      return b.finish();
    };
    const withNeedle = build((j) => j === needle.position);
    const without = build(() => false);
    expect(needle.position % 3).not.toBe(1);
    const hit = sparseAttention(w.input, withNeedle);
    expect(needleRetrieval(w.input, needle, hit.output, withNeedle)).toEqual({ selected: 1, dominated: 1 });
    const miss = sparseAttention(w.input, without);
    expect(needleRetrieval(w.input, needle, miss.output, without)).toEqual({ selected: 0, dominated: 0 });
  });

  it('maps needle queries to a decode chunk\'s local indices and ignores queries outside it', () => {
    const last = needle.queries[needle.queries.length - 1]!;
    const q = tensor([1, 4, 2, 32], new Float32Array(4 * 2 * 32));
    for (let h = 0; h < 4; h++) {
      for (let i = 0; i < 2; i++) {
        const src = (h * 300 + last - 1 + i) * 32;
        q.data.set(w.input.q.data.subarray(src, src + 32), (h * 2 + i) * 32);
      }
    }
    const chunk = { ...w.input, q };
    const out = denseMethod.create().prefill(chunk).output;
    // Only the last two needle queries fall in this 2-query chunk.
    expect(needleRetrieval(chunk, needle, out)).toEqual({ selected: 1, dominated: 1 });
    expect(needleRetrieval(chunk, { ...needle, queries: [0, 1] }, out)).toEqual({ selected: 0, dominated: 0 });
  });
});
