import { ConfigError } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { deltaStackSuite } from './delta-stack-suite.js';
import { decodeStackDims, resolveDeltaStackPlan } from './gpu-delta-stack.js';

describe('the GPU layer-stack benchmark (CPU side)', () => {
  it("uses the CPU benchmark's DELTA plan for 28 layers: full 0 1, Δ 2 14 22, 23 sparse layers reusing the latest Δ-layer", () => {
    const { plan, config } = resolveDeltaStackPlan(28);
    expect(config).toMatchObject({ pageSize: 16, pageBudget: 64, recentPages: 8 });
    expect(plan.roles.flatMap((r, l) => (r === 'full' ? [l] : []))).toEqual([0, 1]);
    expect(plan.roles.flatMap((r, l) => (r === 'delta' ? [l] : []))).toEqual([2, 14, 22]);
    expect(plan.sources[3]).toBe(2);
    expect(plan.sources[13]).toBe(2);
    expect(plan.sources[15]).toBe(14);
    expect(plan.sources[27]).toBe(22);
  });

  it("rejects bad configs and plans with the CPU policy's errors", () => {
    expect(() => resolveDeltaStackPlan(4, { config: { pageBudget: 2, recentPages: 3 } })).toThrow(ConfigError);
    expect(() => resolveDeltaStackPlan(2, { plan: { roles: ['full', 'sparse'], sources: [-1, 0] } })).toThrow(ConfigError);
    expect(() => resolveDeltaStackPlan(0)).toThrow(ConfigError);
  });

  it('decode dims: one causal query per head at the last of keySeq positions', () => {
    const d = decodeStackDims(1, 32, 8, 65536, 128);
    expect(d).toMatchObject({ querySeq: 1, queryOffset: 65535, groupSize: 4, causal: true, scale: 1 / Math.sqrt(128) });
  });

  it('gives no rows on the CPU backend (the CPU suites cover DELTA there)', async () => {
    expect(await deltaStackSuite.run({ quick: true, seqLengths: [2048], repeats: 1, seed: 1, backend: 'cpu' })).toEqual([]);
  });
});
