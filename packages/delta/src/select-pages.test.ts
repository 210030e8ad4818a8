import { ConfigError, Rng, validateSelection } from '@sparse-attn/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pageScores, pageSelection, recentPages, selectPages } from './select-pages.js';
import { topKIndices } from './top-k.js';

/** Brute force: Σ_{t ∈ page} max_h p[h][t], straight from the definition. */
function bruteForcePageScores(p: Float32Array, heads: number, keySeq: number, pageSize: number): number[] {
  const out: number[] = [];
  for (let u = 0; u * pageSize < keySeq; u++) {
    let sum = 0;
    for (let t = u * pageSize; t < Math.min(keySeq, (u + 1) * pageSize); t++) {
      let m = -Infinity;
      for (let h = 0; h < heads; h++) m = Math.max(m, p[h * keySeq + t]!);
      sum += m;
    }
    out.push(sum);
  }
  return out;
}

/** Brute force selection: sort every page by (forced recent first, score desc, index asc). */
function bruteForceSelect(scores: readonly number[], budget: number, recent: number): number[] {
  const total = scores.length;
  const rank = scores.map((s, u) => ({ u, s: u >= total - recent ? Infinity : Number.isNaN(s) ? -Infinity : s }));
  rank.sort((a, b) => (b.s === a.s ? a.u - b.u : b.s > a.s ? 1 : -1));
  return rank.slice(0, Math.min(total, budget)).map((r) => r.u).sort((a, b) => a - b);
}

describe('pageScores', () => {
  it('equals the brute-force sum over each page of the max over heads (partial last page)', () => {
    const rng = new Rng(3);
    for (const [heads, keySeq, pageSize] of [[4, 37, 16], [1, 16, 16], [3, 5, 8], [8, 130, 4]] as const) {
      const p = Float32Array.from({ length: heads * keySeq }, () => rng.next());
      const fast = pageScores(p, heads, keySeq, pageSize);
      const slow = bruteForcePageScores(p, heads, keySeq, pageSize);
      expect(fast.length).toBe(Math.ceil(keySeq / pageSize));
      for (let u = 0; u < slow.length; u++) expect(fast[u]).toBeCloseTo(slow[u]!, 12);
    }
  });
});

describe('selectPages', () => {
  it('keeps the last L pages, min(T, K) pages, sorted, unique and in range; ties to the lowest index', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 4 }).map((x) => x / 4), fc.constant(Number.NaN)), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 20 }),
        (scores, budget, recentRaw) => {
          const recent = Math.min(recentRaw, budget);
          const chosen = Array.from(selectPages(scores, budget, recent));
          const total = scores.length;
          expect(chosen.length).toBe(Math.min(total, budget));
          for (let i = 1; i < chosen.length; i++) expect(chosen[i]!).toBeGreaterThan(chosen[i - 1]!);
          for (const u of chosen) expect(u >= 0 && u < total).toBe(true);
          for (let u = Math.max(0, total - recent); u < total; u++) expect(chosen).toContain(u);
          expect(chosen).toEqual(bruteForceSelect(scores, budget, recent));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('prefers the earliest page among equal scores (the attention-sink page)', () => {
    expect(Array.from(selectPages([1, 1, 1, 1, 1, 1], 3, 1))).toEqual([0, 1, 5]);
    expect(Array.from(selectPages([0, 2, 2, 0, 5, 0], 3, 0))).toEqual([1, 2, 4]);
  });

  it('rejects a recency window larger than the budget and non-positive budgets', () => {
    expect(() => selectPages([1, 2, 3], 2, 3)).toThrow(ConfigError);
    expect(() => selectPages([1, 2, 3], 0, 0)).toThrow(ConfigError);
  });
});

describe('topKIndices', () => {
  it('matches a full sort with ties to the lower index', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 0, maxLength: 200 }), fc.integer({ min: 0, max: 210 }), (values, k) => {
        const expected = values
          .map((v, i) => ({ v, i }))
          .sort((a, b) => b.v - a.v || a.i - b.i)
          .slice(0, k)
          .map((x) => x.i)
          .sort((a, b) => a - b);
        expect(Array.from(topKIndices(values, k))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});

describe('pageSelection / recentPages', () => {
  it('builds a valid block selection shared by every KV head', () => {
    const s = pageSelection(Int32Array.from([0, 3, 6]), 2, 100, 16);
    validateSelection(s);
    expect(s.headScope).toBe('kv');
    expect(Array.from(s.indices)).toEqual([0, 3, 6, 0, 3, 6]);
    expect(Array.from(recentPages(100, 16, 3))).toEqual([4, 5, 6]);
    expect(Array.from(recentPages(20, 16, 3))).toEqual([0, 1]);
  });
});
