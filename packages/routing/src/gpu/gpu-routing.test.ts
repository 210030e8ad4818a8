import { ConfigError, createWorkload, Rng, validateAttentionInput } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { balancedRouting, withNearestMembership } from '../balanced-routing.js';
import { routingConfigSchema } from '../routing-config.js';
import { routingMethod } from '../routing-method.js';
import { centroidSimilarities, sphericalKMeans } from '../spherical-kmeans.js';
import { normalizeRows } from '../normalize-rows.js';
import { kmeansSampleIndices } from './gpu-routing-kmeans.js';
import { routingPlan } from './gpu-routing.js';
import { balancedTopWWgsl, clusterCountWgsl, clusterListWgsl, clusterOffsetsWgsl, headScanWgsl, routedRowsWgsl, packRowFlagsWgsl, rowScanWgsl } from './routing-selection-wgsl.js';
import { kmeansGatherWgsl, kmeansNormalizeWgsl, kmeansSumWgsl, NORMALIZE_MAX_DIM, normalizeRowsWgsl, normalizeRowsWorkgroupBytes, rowAffineWgsl } from './spherical-kmeans-wgsl.js';
import { clusterAttentionHooks, clusterMergeWgsl, clusterTileEntriesWgsl, clusterTileOffsetsWgsl, windowAttentionHooks, windowTileRows } from './cluster-attention-wgsl.js';
import { centroidTileWgsl } from './centroid-tile-wgsl.js';
import { nearestBitsWgsl, similarityTileWgsl, simTopWgsl } from './similarity-tile-wgsl.js';
import { seedStepWgsl } from './kmeans-seed-wgsl.js';
import { routingSlotsPerGroup } from './gpu-routing.js';
import { flashAttentionWgsl, type GpuBackend } from '@sparse-attn/backend-gpu';

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

  it('refuses a head dim whose staged row does not fit 16 KiB of workgroup memory, before any GPU work', () => {
    const d = validateAttentionInput(input(20));
    const config = routingConfigSchema.parse({});
    expect(normalizeRowsWorkgroupBytes(NORMALIZE_MAX_DIM)).toBeLessThanOrEqual(16384);
    expect(normalizeRowsWorkgroupBytes(NORMALIZE_MAX_DIM + 1)).toBeGreaterThan(16384);
    expect(() => routingPlan({ ...d, headDim: NORMALIZE_MAX_DIM }, config)).not.toThrow();
    expect(() => routingPlan({ ...d, headDim: NORMALIZE_MAX_DIM + 1 }, config)).toThrow(/headDim 4094 is above the GPU path's 4093/);
  });

  it('draws the k-means subsample as distinct ascending row indices (all rows when they fit)', () => {
    expect(Array.from(kmeansSampleIndices(5, 10, 3))).toEqual([0, 1, 2, 3, 4]);
    const picked = kmeansSampleIndices(1000, 100, 7);
    expect(picked.length).toBe(100);
    for (let i = 1; i < picked.length; i++) expect(picked[i]!).toBeGreaterThan(picked[i - 1]!);
    expect(picked[99]!).toBeLessThan(1000);
    expect(Array.from(kmeansSampleIndices(1000, 100, 7))).toEqual(Array.from(picked));
    // The CPU's partial Fisher–Yates over a full permutation (sphericalKMeans), the same draws.
    for (const [count, n, seed] of [[1000, 100, 7], [65536, 4096, 3], [300, 299, 11]] as const) {
      const rng = new Rng(seed);
      const order = Int32Array.from({ length: count }, (_, i) => i);
      for (let i = 0; i < n; i++) {
        const j = i + rng.int(count - i);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      expect(Array.from(kmeansSampleIndices(count, n, seed))).toEqual(Array.from(order.subarray(0, n).sort()));
    }
  });

  it('sizes window-part tiles so their key list (sinks + band) fills whole key tiles', () => {
    // 4 sinks + a 64-key window: 61 rows need 4 + 61 + 63 = 128 keys (two 64-key tiles), 64 rows 131 (three).
    expect(windowTileRows(64, 64, 4, 64, 1)).toBe(61);
    // No sinks: 64 rows already fill two key tiles exactly.
    expect(windowTileRows(64, 64, 0, 64, 1)).toBe(64);
    // No local window (sinks only): the full tile.
    expect(windowTileRows(64, 64, 4, 64, 0)).toBe(64);
    expect(windowTileRows(16, 64, 4, 64, 2)).toBe(16);
  });

  it('generates kernels with a main entry point and no reserved identifiers', () => {
    const kernels = [
      balancedTopWWgsl(), clusterCountWgsl(), clusterOffsetsWgsl(), clusterListWgsl(), clusterListWgsl(true), routedRowsWgsl(false), routedRowsWgsl(true), rowScanWgsl(), headScanWgsl(),
      rowAffineWgsl(128), normalizeRowsWgsl(128), rowAffineWgsl(20), rowAffineWgsl(4000), normalizeRowsWgsl(4000), kmeansSumWgsl(), kmeansNormalizeWgsl(), clusterTileOffsetsWgsl(), clusterTileEntriesWgsl(), clusterMergeWgsl(128), clusterMergeWgsl(24),
      ...[clusterAttentionHooks(), windowAttentionHooks()].map((hooks) => flashAttentionWgsl({ mode: 'lists', headDim: 128, valueDim: 128, tile: { rows: 64, chunk: 16 }, valueChunk: 16, hooks })),
      kmeansGatherWgsl(128), kmeansGatherWgsl(20), kmeansSumWgsl(true), seedStepWgsl(128), seedStepWgsl(20), packRowFlagsWgsl(), centroidTileWgsl(128, 'assign'), centroidTileWgsl(20, 'top', 3), similarityTileWgsl(128), similarityTileWgsl(18), similarityTileWgsl(128, 2), similarityTileWgsl(18, 1), simTopWgsl(2), nearestBitsWgsl(2),
    ];
    for (const code of kernels) {
      expect(code).toContain('fn main(');
      expect(code).not.toMatch(/\b(shared|local)\b/);
    }
  });

  it('groups KV slots by their flag columns and cluster-executor partials at long lengths (the benchmark shapes)', () => {
    const dims = (seq: number, kvHeads: number) => ({ batch: 1, queryHeads: 32, kvHeads, groupSize: 32 / kvHeads, querySeq: seq, keySeq: seq, queryOffset: 0, headDim: 128, valueDim: 128, causal: true }) as never;
    const backend = { context: { maxBinding: 2 ** 31 } } as GpuBackend;
    const config = routingConfigSchema.parse({});
    // 64k MHA (C = w = 256): partials of (C·w + 2·S + S) rows × 128 floats ≈ 134 MB per query head.
    expect(routingSlotsPerGroup(backend, dims(65536, 32), config)).toBe(16);
    // GQA 32/8 at 64k: four query heads per slot.
    expect(routingSlotsPerGroup(backend, dims(65536, 8), config)).toBe(4);
    // 4k MHA: every slot in one group.
    expect(routingSlotsPerGroup(backend, dims(4096, 32), config)).toBeGreaterThanOrEqual(32);
  });
});
