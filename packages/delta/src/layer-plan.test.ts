import { ConfigError } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { defaultFullCacheLayers, layerPlanFromFullCacheLayers, layerPlanFromRoles, roleCounts, validateLayerPlan } from './layer-plan.js';

describe('layerPlanFromFullCacheLayers', () => {
  it('derives the reference roles for 0 1 2 14 22 on 28 layers', () => {
    const plan = layerPlanFromFullCacheLayers([0, 1, 2, 14, 22], 28);
    expect(plan.roles.slice(0, 4)).toEqual(['full', 'full', 'delta', 'sparse']);
    expect(plan.roles[14]).toBe('delta');
    expect(plan.roles[22]).toBe('delta');
    expect(roleCounts(plan)).toEqual({ full: 2, delta: 3, sparse: 23 });
    // Sparse layers reuse the most recent Δ-layer: 3–13 → 2, 15–21 → 14, 23–27 → 22.
    for (let l = 3; l <= 13; l++) expect(plan.sources[l]).toBe(2);
    for (let l = 15; l <= 21; l++) expect(plan.sources[l]).toBe(14);
    for (let l = 23; l <= 27; l++) expect(plan.sources[l]).toBe(22);
    expect(plan.sources[2]).toBe(-1);
  });

  it('full layers followed by full layers or the end are plain dense', () => {
    expect(layerPlanFromFullCacheLayers([0, 1, 5], 6).roles).toEqual(['full', 'delta', 'sparse', 'sparse', 'sparse', 'full']);
    expect(layerPlanFromFullCacheLayers([3], 4).roles).toEqual(['sparse', 'sparse', 'sparse', 'full']);
  });

  it('sparse layers before any Δ-layer have no source (placeholder of the last pages)', () => {
    const plan = layerPlanFromFullCacheLayers([2], 5);
    expect(plan.roles).toEqual(['sparse', 'sparse', 'delta', 'sparse', 'sparse']);
    expect(plan.sources).toEqual([-1, -1, -1, 2, 2]);
  });

  it('an empty list and the full list both make every layer dense', () => {
    expect(layerPlanFromFullCacheLayers([], 4).roles).toEqual(['full', 'full', 'full', 'full']);
    expect(layerPlanFromFullCacheLayers([0, 1, 2, 3], 4).roles).toEqual(['full', 'full', 'full', 'full']);
  });

  it('rejects out-of-range, fractional and repeated layers', () => {
    expect(() => layerPlanFromFullCacheLayers([0, 4], 4)).toThrow(ConfigError);
    expect(() => layerPlanFromFullCacheLayers([1.5], 4)).toThrow(ConfigError);
    expect(() => layerPlanFromFullCacheLayers([1, 1], 4)).toThrow(ConfigError);
    expect(() => layerPlanFromFullCacheLayers([0], 0)).toThrow(ConfigError);
  });
});

describe('defaultFullCacheLayers', () => {
  it('is the reference placement on 28 layers and scales with depth', () => {
    expect(defaultFullCacheLayers(28)).toEqual([0, 1, 2, 14, 22]);
    expect(defaultFullCacheLayers(8)).toEqual([0, 1, 2, 4, 6]);
    expect(defaultFullCacheLayers(12)).toEqual([0, 1, 2, 6, 9]);
    expect(defaultFullCacheLayers(3)).toEqual([0, 1, 2]);
    expect(roleCounts(layerPlanFromFullCacheLayers(defaultFullCacheLayers(48), 48)).delta).toBe(3);
  });
});

describe('validateLayerPlan', () => {
  it('accepts derived plans and rejects bad sources', () => {
    validateLayerPlan(layerPlanFromRoles(['full', 'delta', 'sparse']), 3);
    expect(() => validateLayerPlan(layerPlanFromRoles(['full', 'delta']), 3)).toThrow(ConfigError);
    expect(() => validateLayerPlan({ roles: ['full', 'delta', 'sparse'], sources: [-1, -1, 0] })).toThrow(ConfigError);
    expect(() => validateLayerPlan({ roles: ['delta', 'sparse', 'sparse'], sources: [-1, 0, 2] })).toThrow(ConfigError);
    expect(() => validateLayerPlan({ roles: ['delta', 'full'], sources: [-1, 0] })).toThrow(ConfigError);
    expect(() => validateLayerPlan({ roles: ['delta', 'dense' as never], sources: [-1, -1] })).toThrow(ConfigError);
  });
});
