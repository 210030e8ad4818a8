import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TopKSelector } from './select-top-k.js';

describe('TopKSelector', () => {
  it('equals sorting by (score desc, index desc), returned ascending (property, with ties and +∞)', () => {
    const selector = new TopKSelector(4);
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constant(Infinity)), { minLength: 0, maxLength: 60 }),
        fc.integer({ min: 0, max: 70 }),
        (values, k) => {
          const scores = Float64Array.from(values);
          const out = new Int32Array(values.length);
          const count = selector.select(scores, values.length, k, out);
          const expected = values
            .map((s, j) => ({ s, j }))
            .sort((a, b) => b.s - a.s || b.j - a.j)
            .slice(0, Math.max(0, k))
            .map((x) => x.j)
            .sort((a, b) => a - b);
          expect(Array.from(out.subarray(0, count))).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('breaks ties toward the most recent index', () => {
    const out = new Int32Array(5);
    expect(new TopKSelector().select([1, 1, 1, 1, 1], 5, 2, out)).toBe(2);
    expect(Array.from(out.subarray(0, 2))).toEqual([3, 4]);
  });
});
