import { describe, expect, it } from 'vitest';
import { Rng } from '@sparse-attn/core';
import { assignNearest, emaUpdateCentroid, nearestCentroid, sphericalKMeans, topCentroids } from './spherical-kmeans.js';

function unit(rng: Rng, dim: number): Float32Array {
  const u = rng.fillNormal(new Float32Array(dim));
  const n = Math.hypot(...u);
  return u.map((x) => x / n);
}

/** `perCluster` rows around each of `clusters` random directions (noise σ per coordinate), shuffled. */
function planted(clusters: number, perCluster: number, dim: number, noise: number, seed: number) {
  const rng = new Rng(seed);
  const directions = Array.from({ length: clusters }, () => unit(rng, dim));
  const count = clusters * perCluster;
  const labels = Array.from({ length: count }, (_, i) => i % clusters);
  for (let i = count - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [labels[i], labels[j]] = [labels[j]!, labels[i]!];
  }
  const rows = new Float32Array(count * dim);
  labels.forEach((label, i) => {
    for (let c = 0; c < dim; c++) rows[i * dim + c] = 3 * directions[label]![c]! + noise * rng.normal();
  });
  return { rows, labels, directions, count };
}

describe('sphericalKMeans', () => {
  it('is deterministic for a seed and returns unit centroids', () => {
    const { rows, count } = planted(6, 30, 16, 0.5, 1);
    const a = sphericalKMeans(rows, count, 16, { clusters: 6, iterations: 10, seed: 3, sampleSize: 1000 });
    const b = sphericalKMeans(rows, count, 16, { clusters: 6, iterations: 10, seed: 3, sampleSize: 1000 });
    expect(Array.from(a.centroids)).toEqual(Array.from(b.centroids));
    const c = sphericalKMeans(rows, count, 16, { clusters: 6, iterations: 0, seed: 4, sampleSize: 1000 });
    const d = sphericalKMeans(rows, count, 16, { clusters: 6, iterations: 0, seed: 3, sampleSize: 1000 });
    expect(Array.from(c.centroids)).not.toEqual(Array.from(d.centroids));
    for (let k = 0; k < 6; k++) expect(Math.hypot(...a.centroids.subarray(k * 16, (k + 1) * 16))).toBeCloseTo(1, 5);
  });

  it('recovers planted clusters: one centroid per direction and the planted partition', () => {
    const clusters = 5;
    const dim = 32;
    const { rows, labels, directions, count } = planted(clusters, 40, dim, 0.3, 7);
    const fit = sphericalKMeans(rows, count, dim, { clusters, iterations: 10, seed: 0, sampleSize: 4096 });
    const match: number[] = [];
    for (const direction of directions) {
      let best = -1;
      let bestCos = -Infinity;
      for (let c = 0; c < clusters; c++) {
        let cos = 0;
        for (let j = 0; j < dim; j++) cos += direction[j]! * fit.centroids[c * dim + j]!;
        if (cos > bestCos) [best, bestCos] = [c, cos];
      }
      expect(bestCos).toBeGreaterThan(0.98);
      match.push(best);
    }
    expect(new Set(match).size).toBe(clusters);
    const assigned = new Int32Array(count);
    assignNearest(rows, count, dim, fit.centroids, clusters, assigned);
    for (let i = 0; i < count; i++) expect(assigned[i]).toBe(match[labels[i]!]);
  });

  it('subsamples deterministically and handles fewer rows than clusters', () => {
    const { rows, count } = planted(3, 50, 8, 0.2, 2);
    const fit = sphericalKMeans(rows, count, 8, { clusters: 3, iterations: 5, seed: 1, sampleSize: 20 });
    expect(fit.sampleCount).toBe(20);
    const few = sphericalKMeans(rows, 2, 8, { clusters: 4, iterations: 3, seed: 1, sampleSize: 10 });
    expect(few.centroids.every(Number.isFinite)).toBe(true);
  });

  it('nearest, top-r and blocked assignment agree', () => {
    const { rows, count } = planted(4, 20, 12, 1, 5);
    const fit = sphericalKMeans(rows, count, 12, { clusters: 4, iterations: 10, seed: 0, sampleSize: 100 });
    const assigned = new Int32Array(count);
    assignNearest(rows, count, 12, fit.centroids, 4, assigned);
    const top = new Int32Array(4);
    for (let i = 0; i < count; i++) {
      const nearest = nearestCentroid(rows, i * 12, fit.centroids, 4, 12);
      expect(assigned[i]).toBe(nearest);
      expect(topCentroids(rows, i * 12, fit.centroids, 4, 12, 3, top, new Float32Array(4))).toBe(3);
      expect(top[0]).toBe(nearest);
      expect(new Set(top.subarray(0, 3)).size).toBe(3);
    }
  });

  it('EMA update moves a centroid toward the routed vector and keeps it unit', () => {
    const centroids = Float32Array.from([1, 0, 0, 0, 1, 0]);
    const x = Float32Array.from([0, 0, 5]);
    emaUpdateCentroid(centroids, 1, 3, x, 0, 0.9);
    expect(centroids[5]).toBeGreaterThan(0);
    expect(Math.hypot(centroids[3]!, centroids[4]!, centroids[5]!)).toBeCloseTo(1, 6);
    expect(Array.from(centroids.subarray(0, 3))).toEqual([1, 0, 0]);
    expect(centroids[5]! / centroids[4]!).toBeCloseTo(0.1 / 0.9, 5);
  });
});
