import { ConfigError, createWorkload, validateAttentionInput } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { balancedRouting, withNearestMembership } from '../balanced-routing.js';
import { routingConfigSchema } from '../routing-config.js';
import { routingMethod } from '../routing-method.js';
import { centroidSimilarities, sphericalKMeans } from '../spherical-kmeans.js';
import { normalizeRows } from '../normalize-rows.js';
import { kmeansSampleIndices } from './gpu-routing-kmeans.js';
import { routingPlan } from './gpu-routing.js';
import { balancedTopWWgsl, clusterCountWgsl, clusterListWgsl, clusterOffsetsWgsl, headScanWgsl, nearestFlagsWgsl, routedRowsWgsl, rowScanWgsl, similaritiesWgsl } from './routing-selection-wgsl.js';
import { kmeansAssignWgsl, kmeansNormalizeWgsl, kmeansSampleWgsl, kmeansSumWgsl, normalizeRowsWgsl, topCentroidsWgsl } from './spherical-kmeans-wgsl.js';
import { copyFloatsWgsl } from './copy-slots-wgsl.js';

function input(seq: number, seed = 1) {
  return createWorkload('gaussian', { batch: 1, queryHeads: 2, kvHeads: 1, seqLength: seq, headDim: 16, seed }).input;
}

describe('routing GPU plan (no GPU needed)', () => {
  it.each([
    [{}, 150],
    [{ clusters: 7 }, 100],
    [{ clusters: 4, window: 40 }, 90],
    [{}, 1],
  ])('has the CPU method\'s clusters and window: %j S %i', (config, seq) => {
    const x = input(seq);
    const cpu = routingMethod.create(config).prefill(x);
    const plan = routingPlan(validateAttentionInput(x), routingConfigSchema.parse(config));
    expect(plan.clusters).toBe(cpu.diagnostics!['clusters']);
    expect(plan.window).toBe(cpu.diagnostics!['window']);
  });

  it('bounds the cluster lists by their CPU sizes (balanced top-w plus nearest)', () => {
    for (const [config, seq] of [[{ clusters: 6 }, 150], [{ clusters: 4, window: 60, keyClusters: 3 }, 100]] as const) {
      const x = input(seq, 3);
      const d = validateAttentionInput(x);
      const resolved = routingConfigSchema.parse(config);
      const plan = routingPlan(d, resolved);
      const keys = new Float32Array(seq * 16);
      normalizeRows(x.k.data, 0, keys, 0, seq, 16, 'l2');
      const fit = sphericalKMeans(keys, seq, 16, { clusters: plan.clusters, iterations: 10, seed: resolved.seed, sampleSize: 256 });
      const sims = centroidSimilarities(keys, seq, 16, fit.centroids, plan.clusters);
      const members = withNearestMembership(balancedRouting(sims, seq, plan.clusters, plan.window), sims, seq, plan.keyClusters);
      expect(members.offsets[plan.clusters]!).toBeLessThanOrEqual(plan.listCapacity);
    }
  });

  it('refuses the CPU-only modes with a ConfigError', () => {
    const d = validateAttentionInput(input(20));
    expect(() => routingPlan(d, routingConfigSchema.parse({ sharedQK: true }))).toThrow(ConfigError);
    expect(() => routingPlan(d, routingConfigSchema.parse({ combine: 'mean' }))).toThrow(ConfigError);
  });

  it('draws the k-means subsample as distinct ascending row indices (all rows when they fit)', () => {
    expect(Array.from(kmeansSampleIndices(5, 10, 3))).toEqual([0, 1, 2, 3, 4]);
    const picked = kmeansSampleIndices(1000, 100, 7);
    expect(picked.length).toBe(100);
    for (let i = 1; i < picked.length; i++) expect(picked[i]!).toBeGreaterThan(picked[i - 1]!);
    expect(picked[99]!).toBeLessThan(1000);
    expect(Array.from(kmeansSampleIndices(1000, 100, 7))).toEqual(Array.from(picked));
  });

  it('generates kernels with a main entry point and no reserved identifiers', () => {
    const kernels = [
      similaritiesWgsl(16), balancedTopWWgsl(), nearestFlagsWgsl(), clusterCountWgsl(), clusterOffsetsWgsl(), clusterListWgsl(), routedRowsWgsl(false), routedRowsWgsl(true), rowScanWgsl(), headScanWgsl(),
      normalizeRowsWgsl(), kmeansSampleWgsl(), kmeansAssignWgsl(), kmeansSumWgsl(), kmeansNormalizeWgsl(), topCentroidsWgsl(2), copyFloatsWgsl(),
    ];
    for (const code of kernels) {
      expect(code).toContain('fn main(');
      expect(code).not.toMatch(/\b(shared|local)\b/);
    }
  });
});
