import { describe, expect, it } from 'vitest';
import { EXECUTOR_VARIANTS, syntheticRows } from './executor-profile.js';

describe('synthetic executor rows (--executor)', () => {
  it('hold sorted, unique, causally visible blocks: the own block, the window, and the random picks before them', () => {
    const d = { querySeq: 3000, queryOffset: 0 };
    for (const variant of EXECUTOR_VARIANTS) {
      const { stride, bounds, indices } = syntheticRows(d, 2 * d.querySeq, variant, 3);
      for (let r = 0; r < 2 * d.querySeq; r++) {
        const pos = r % d.querySeq;
        const row = Array.from(indices.subarray(bounds[2 * r]!, bounds[2 * r + 1]!));
        expect(bounds[2 * r]).toBe(r * stride);
        expect(row.length).toBeLessThanOrEqual(stride);
        expect(row).toEqual([...new Set(row)].sort((a, b) => a - b));
        const current = Math.floor(pos / variant.blockSize);
        expect(Math.max(...row, 0)).toBeLessThanOrEqual(current);
        if (variant.own || variant.window > 0) expect(row).toContain(current);
        const first = variant.window > 0 ? Math.max(0, Math.floor((pos - variant.window + 1) / variant.blockSize)) : current;
        expect(row.filter((b) => b < first)).toHaveLength(Math.min(variant.random, first));
      }
    }
  });
});
