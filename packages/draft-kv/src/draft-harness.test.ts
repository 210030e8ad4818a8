import { describe, expect, it } from 'vitest';
import { createDraftHarness, harnessFidelity, harnessKeep } from './draft-harness.js';

describe('model-free draft harness', () => {
  const h = createDraftHarness({ seqLength: 2048, seed: 4 });
  const C = 128;

  it("the draft's importance estimate selects the planted needles that the window misses", () => {
    const snap = harnessFidelity(h, harnessKeep(h, 'snapkv', { capacity: C }));
    const spec = harnessFidelity(h, harnessKeep(h, 'speckv', { capacity: C, epsilon: 0.25 }));
    // SpecPC keeps one token set for every head, each top token with 7 neighbours: 8 needles × 7 + the window need ~2C.
    const pc = harnessFidelity(h, harnessKeep(h, 'specpc', { capacity: 2 * C, epsilon: 0.25 }));
    expect(spec.needleRecall).toBe(1);
    expect(pc.needleRecall).toBe(1);
    expect(snap.needleRecall).toBeLessThan(0.5);
    expect(spec.futureMassRecall).toBeGreaterThan(snap.futureMassRecall + 0.2);
    expect(spec.outputError).toBeLessThan(snap.outputError);
  });

  it('the oracle bounds every method, draft noise degrades SpecKV, and the full budget is exact', () => {
    const oracle = harnessFidelity(h, harnessKeep(h, 'oracle', { capacity: C }));
    const clean = harnessFidelity(h, harnessKeep(h, 'speckv', { capacity: C, epsilon: 0 }));
    const noisy = harnessFidelity(h, harnessKeep(h, 'speckv', { capacity: C, epsilon: 8 }));
    expect(oracle.futureMassRecall).toBeGreaterThanOrEqual(clean.futureMassRecall - 1e-6);
    expect(noisy.futureMassRecall).toBeLessThan(clean.futureMassRecall);
    const full = harnessFidelity(h, harnessKeep(h, 'snapkv', { capacity: 2048 }));
    expect(full.futureMassRecall).toBeCloseTo(1, 5);
    expect(full.outputError).toBeLessThan(1e-5);
  });

  it('every method keeps exactly C entries per head, the window included', () => {
    for (const method of ['snapkv', 'speckv', 'specpc', 'streaming-llm', 'oracle'] as const) {
      const keep = harnessKeep(h, method, { capacity: C, epsilon: 0.5 });
      for (const list of keep) {
        expect(list.length).toBe(C);
        expect(list[C - 1]).toBe(2047);
      }
    }
  });
});
