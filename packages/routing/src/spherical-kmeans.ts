/**
 * Kernel: spherical k-means (cosine Lloyd iterations) on normalised routing vectors.
 *
 *   init:    k-means++ on the unit directions x̂ᵢ = xᵢ/‖xᵢ‖ with d(x) = 1 − max_c x̂·μ_c (seeded)
 *   assign:  a(i) = argmax_c x̂ᵢ·μ_c                          (ties → lower c)
 *   update:  μ_c = normalise(Σ_{a(i)=c} x̂ᵢ); empty clusters keep μ_c   (LUCID `kmeans_iter`)
 *   EMA:     μ_c ← normalise(decay·μ_c + (1 − decay)·x̂)       (LUCID/GR decay 0.999)
 *
 * Reference: Routing Transformer (arXiv:2003.05997) §4; spec routing.md §4. LUCID initialises by
 * sampling C vectors uniformly; we seed with k-means++ (also deterministic given the seed)
 * because uniform sampling often puts two seeds in one true cluster, which 10 Lloyd steps
 * rarely repair, and training-free routing has no later training to fix it.
 */
import { ConfigError, Rng, matmul } from '@sparse-attn/core';
import { normalizeInPlace } from './normalize-rows.js';

/** Options of {@link sphericalKMeans}. */
export interface SphericalKMeansOptions {
  /** Number of centroids C (≥ 1). */
  readonly clusters: number;
  /** Lloyd iterations after seeding; stops early at a fixed point (same result, less work). */
  readonly iterations: number;
  /** Seed of the k-means++ draws and of the subsample. */
  readonly seed: number;
  /**
   * At most this many rows are used to fit (a seeded uniform subsample): fitting then costs
   * O(iterations · sampleSize · C · D) whatever the sequence length, while routing every token
   * still costs O(S · C · D).
   */
  readonly sampleSize: number;
}

/** Fitted centroids. */
export interface SphericalKMeansResult {
  /** `[clusters × dim]` unit vectors, row-major. */
  readonly centroids: Float32Array;
  readonly clusters: number;
  readonly dim: number;
  /** Lloyd iterations actually run (≤ the requested number: a fixed point ends the loop). */
  readonly iterationsRun: number;
  /** Rows the fit used (after subsampling). */
  readonly sampleCount: number;
}

/**
 * Fits C unit centroids to `count` rows of `rows` (`[count × dim]`, any norm; the fit uses
 * their directions). Deterministic for a given seed. With fewer rows than clusters, seeds
 * repeat (LUCID samples with replacement too) and the duplicates stay empty.
 */
export function sphericalKMeans(rows: Float32Array, count: number, dim: number, options: SphericalKMeansOptions): SphericalKMeansResult {
  const { clusters, iterations, seed } = options;
  if (!(Number.isInteger(clusters) && clusters >= 1)) throw new ConfigError(`sphericalKMeans: clusters must be a positive integer, got ${clusters}`);
  if (!(Number.isInteger(iterations) && iterations >= 0)) throw new ConfigError(`sphericalKMeans: iterations must be a non-negative integer, got ${iterations}`);
  if (!(Number.isInteger(options.sampleSize) && options.sampleSize >= 1)) throw new ConfigError(`sphericalKMeans: sampleSize must be a positive integer, got ${options.sampleSize}`);
  if (!(Number.isInteger(count) && count >= 1)) throw new ConfigError(`sphericalKMeans: need at least one row, got ${count}`);
  const rng = new Rng(seed);
  const n = Math.min(count, options.sampleSize);
  const sample = new Float32Array(n * dim);
  if (n === count) {
    sample.set(rows.subarray(0, count * dim));
  } else {
    // Partial Fisher–Yates: the first n entries of a seeded permutation, then sorted for locality.
    const order = new Int32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
    for (let i = 0; i < n; i++) {
      const j = i + rng.int(count - i);
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    const picked = order.subarray(0, n).sort();
    for (let i = 0; i < n; i++) sample.set(rows.subarray(picked[i]! * dim, (picked[i]! + 1) * dim), i * dim);
  }
  for (let i = 0; i < n; i++) normalizeInPlace(sample, i * dim, dim);

  const centroids = seedPlusPlus(sample, n, dim, clusters, rng);
  const assignment = new Int32Array(n).fill(-1);
  const sums = new Float64Array(clusters * dim);
  const sizes = new Int32Array(clusters);
  const sims = new Float32Array(n * clusters);
  let run = 0;
  for (; run < iterations; run++) {
    matmul(sample, centroids, n, dim, clusters, sims, { transposeB: true });
    let changed = false;
    for (let i = 0; i < n; i++) {
      const c = argmaxRow(sims, i * clusters, clusters);
      if (c !== assignment[i]) changed = true;
      assignment[i] = c;
    }
    if (!changed) break;
    sums.fill(0);
    sizes.fill(0);
    for (let i = 0; i < n; i++) {
      const c = assignment[i]!;
      sizes[c]!++;
      const o = c * dim;
      for (let j = 0; j < dim; j++) sums[o + j]! += sample[i * dim + j]!;
    }
    for (let c = 0; c < clusters; c++) {
      if (sizes[c] === 0) continue; // empty cluster: keep the previous centroid (LUCID torch.where)
      const o = c * dim;
      normalizeInPlace(sums, o, dim);
      for (let j = 0; j < dim; j++) centroids[o + j] = sums[o + j]!;
    }
  }
  return { centroids, clusters, dim, iterationsRun: run, sampleCount: n };
}

/** k-means++ seeding on unit rows with distance 1 − cos (seeded draws, O(n·C·D)). */
function seedPlusPlus(sample: Float32Array, n: number, dim: number, clusters: number, rng: Rng): Float32Array {
  const centroids = new Float32Array(clusters * dim);
  const distance = new Float64Array(n).fill(Infinity);
  let chosen = rng.int(n);
  for (let c = 0; c < clusters; c++) {
    if (c > 0) {
      let total = 0;
      for (let i = 0; i < n; i++) total += distance[i]! * distance[i]!;
      if (total <= 0) {
        chosen = rng.int(n);
      } else {
        let target = rng.next() * total;
        chosen = n - 1;
        for (let i = 0; i < n; i++) {
          target -= distance[i]! * distance[i]!;
          if (target < 0) {
            chosen = i;
            break;
          }
        }
      }
    }
    centroids.set(sample.subarray(chosen * dim, (chosen + 1) * dim), c * dim);
    normalizeInPlace(centroids, c * dim, dim);
    for (let i = 0; i < n; i++) {
      const d = Math.max(0, 1 - dotRows(sample, i * dim, centroids, c * dim, dim));
      if (d < distance[i]!) distance[i] = d;
    }
  }
  return centroids;
}

/** Dot product of two `dim`-vectors with four accumulators (the JIT keeps them in registers). */
export function dotRows(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (const end = dim - (dim % 4); j < end; j += 4) {
    s0 += a[ao + j]! * b[bo + j]!;
    s1 += a[ao + j + 1]! * b[bo + j + 1]!;
    s2 += a[ao + j + 2]! * b[bo + j + 2]!;
    s3 += a[ao + j + 3]! * b[bo + j + 3]!;
  }
  for (; j < dim; j++) s0 += a[ao + j]! * b[bo + j]!;
  return s0 + s1 + s2 + s3;
}

/** Rows per block of {@link assignTopClusters}: bounds its similarity scratch to 4096 × C floats. */
const ASSIGN_BLOCK = 4096;

/**
 * Nearest centroid of each of `count` rows (`out[i]`), by blocked matrix products (core's GEMM):
 * O(count·C·D) at GEMM speed instead of one scalar dot loop per row.
 */
export function assignNearest(rows: Float32Array, count: number, dim: number, centroids: Float32Array, clusters: number, out: Int32Array): void {
  assignTopClusters(rows, count, dim, centroids, clusters, 1, out);
}

/**
 * The `r` most similar centroids of each of `count` rows, most similar first (ties → lower
 * index), written to `out[i·r .. i·r + r)`; blocked matrix products as in {@link assignNearest}.
 */
export function assignTopClusters(rows: Float32Array, count: number, dim: number, centroids: Float32Array, clusters: number, r: number, out: Int32Array): void {
  const block = Math.min(count, ASSIGN_BLOCK);
  const sims = new Float32Array(block * clusters);
  const take = Math.min(r, clusters);
  for (let start = 0; start < count; start += block) {
    const n = Math.min(block, count - start);
    matmul(rows.subarray(start * dim, (start + n) * dim), centroids, n, dim, clusters, sims, { transposeB: true });
    for (let i = 0; i < n; i++) {
      const o = i * clusters;
      for (let t = 0; t < take; t++) {
        const best = argmaxRow(sims, o, clusters);
        out[(start + i) * r + t] = best;
        sims[o + best] = -Infinity;
      }
    }
  }
}

function argmaxRow(values: Float32Array, offset: number, length: number): number {
  let best = 0;
  let bestValue = values[offset]!;
  for (let c = 1; c < length; c++) {
    const v = values[offset + c]!;
    if (v > bestValue) {
      bestValue = v;
      best = c;
    }
  }
  return best;
}

/**
 * Similarities of every row with every centroid, cluster-major: `out[c · count + i] = x_i · μ_c`
 * (`[clusters × count]`), so each cluster's column is contiguous for its top-w selection.
 */
export function centroidSimilarities(rows: Float32Array, count: number, dim: number, centroids: Float32Array, clusters: number, out?: Float32Array): Float32Array {
  return matmul(centroids, rows, clusters, dim, count, out, { transposeB: true });
}

/** Index of the centroid most similar to `x[offset .. offset + dim)` (ties → lower index). */
export function nearestCentroid(x: Float32Array, offset: number, centroids: Float32Array, clusters: number, dim: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let c = 0; c < clusters; c++) {
    const dot = dotRows(x, offset, centroids, c * dim, dim);
    if (dot > bestValue) {
      bestValue = dot;
      best = c;
    }
  }
  return best;
}

/**
 * The `r` centroids most similar to `x`, in decreasing similarity (ties → lower index), written
 * to `out`; returns how many were written (`min(r, clusters)`). `scratch` holds `clusters` floats.
 */
export function topCentroids(x: Float32Array, offset: number, centroids: Float32Array, clusters: number, dim: number, r: number, out: Int32Array, scratch: Float32Array): number {
  if (r === 1) {
    out[0] = nearestCentroid(x, offset, centroids, clusters, dim);
    return 1;
  }
  for (let c = 0; c < clusters; c++) scratch[c] = dotRows(x, offset, centroids, c * dim, dim);
  const take = Math.min(r, clusters);
  for (let t = 0; t < take; t++) {
    let best = -1;
    let bestValue = -Infinity;
    for (let c = 0; c < clusters; c++) {
      const v = scratch[c]!;
      if (v > bestValue) {
        bestValue = v;
        best = c;
      }
    }
    out[t] = best;
    scratch[best] = -Infinity;
  }
  return take;
}

/** EMA update of one centroid toward a routed vector: μ ← normalise(decay·μ + (1 − decay)·x̂). */
export function emaUpdateCentroid(centroids: Float32Array, cluster: number, dim: number, x: Float32Array, offset: number, decay: number): void {
  const o = cluster * dim;
  let norm = 0;
  for (let j = 0; j < dim; j++) norm += x[offset + j]! * x[offset + j]!;
  const inv = norm > 0 ? (1 - decay) / Math.sqrt(norm) : 0;
  for (let j = 0; j < dim; j++) centroids[o + j] = decay * centroids[o + j]! + inv * x[offset + j]!;
  normalizeInPlace(centroids, o, dim);
}
