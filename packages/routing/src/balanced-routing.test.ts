import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { balancedRouting, countBelow, invertMembership } from './balanced-routing.js';
import { selectTopKPositions } from './select-top-k-positions.js';

describe('selectTopKPositions', () => {
  it('matches a stable sort (ties toward earlier positions), ascending output', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 60 }), fc.nat(70), (values, k) => {
        const v = Float32Array.from(values);
        const out = new Int32Array(values.length);
        const n = selectTopKPositions(v, 0, v.length, k, out, new Float32Array(v.length));
        const expected = values
          .map((x, i) => [x, i] as const)
          .sort((a, b) => b[0] - a[0] || a[1] - b[1])
          .slice(0, Math.min(k, values.length))
          .map(([, i]) => i)
          .sort((a, b) => a - b);
        expect(Array.from(out.subarray(0, n))).toEqual(expected);
      }),
    );
  });
});

describe('balancedRouting', () => {
  it('gives every cluster exactly min(w, n) sorted members; inversion agrees', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 50 }), fc.integer(), (n, clusters, w, seed) => {
        let state = seed;
        const sims = Float32Array.from({ length: clusters * n }, () => ((state = (state * 1103515245 + 12345) | 0) % 1000) / 1000);
        const m = balancedRouting(sims, n, clusters, w);
        for (let c = 0; c < clusters; c++) {
          const list = Array.from(m.members.subarray(m.offsets[c], m.offsets[c + 1]));
          expect(list.length).toBe(Math.min(w, n));
          for (let i = 1; i < list.length; i++) expect(list[i]!).toBeGreaterThan(list[i - 1]!);
          // Every member scores at least as high as every non-member in this cluster's column.
          const inside = new Set(list);
          const minIn = Math.min(...list.map((i) => sims[c * n + i]!));
          for (let i = 0; i < n; i++) if (!inside.has(i)) expect(sims[c * n + i]!).toBeLessThanOrEqual(minIn);
        }
        const inv = invertMembership(m, n);
        let total = 0;
        for (let i = 0; i < n; i++) {
          for (let j = inv.offsets[i]!; j < inv.offsets[i + 1]!; j++) {
            const c = inv.clusters[j]!;
            expect(Array.from(m.members.subarray(m.offsets[c], m.offsets[c + 1]))).toContain(i);
            total++;
          }
        }
        expect(total).toBe(m.members.length);
      }),
    );
  });

  it('countBelow counts the ascending prefix below a limit', () => {
    const list = Int32Array.from([1, 3, 3, 7, 9]);
    expect(countBelow(list, 0, 5, 0)).toBe(0);
    expect(countBelow(list, 0, 5, 4)).toBe(3);
    expect(countBelow(list, 1, 4, 8)).toBe(3);
    expect(countBelow(list, 0, 5, 100)).toBe(5);
  });
});
