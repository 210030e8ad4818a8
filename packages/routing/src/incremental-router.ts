/**
 * Kernel: incremental (causal) routing state of one routing head — spec routing.md §5.
 *
 *   key t:   R_k = top-r_k x̂_t·μ_c ; members[c] ← members[c] ∪ {t} for c ∈ R_k ;
 *            (EMA) μ_c* ← norm(d·μ_c* + (1−d)·x̂_t) for the nearest c*
 *   query t: R = top-r_c x̂_q·μ_c ; attends to ∪_{c∈R} members[c] ∪ {t}
 *   fit:     when no centroids yet and t = calibrationTokens, or (refit 'doubling') t = 2^k·calibrationTokens:
 *            spherical k-means on keys 0..t−1, then every key reassigned to its top-r_k centroids
 *
 * Membership is decided per token from keys ≤ t only, so processing a sequence in one call or
 * token by token gives identical state: prefill equals decode. A decode step costs
 * O(C·D + (t/C)·D) (routing + the routed keys); refits cost O(t·C·D) at doubling lengths,
 * O(C·D) per token amortised.
 */
import { normalizeRows, type RoutingNormalization } from './normalize-rows.js';
import { assignTopClusters, emaUpdateCentroid, sphericalKMeans, topCentroids } from './spherical-kmeans.js';
import { resolveClusters, resolveSampleSize } from './routing-config.js';

/** Options of an {@link IncrementalRouter}. */
export interface IncrementalRouterOptions {
  readonly dim: number;
  readonly normalization: RoutingNormalization;
  /** Clusters r_k each key joins (its most similar centroids). */
  readonly keyClusters: number;
  /** C; 0 = round(√length) at each fit. */
  readonly clusters: number;
  /** Keys to see before the first fit (tokens before it attend densely). */
  readonly calibrationTokens: number;
  readonly refit: 'doubling' | 'never';
  readonly kmeansIterations: number;
  readonly kmeansSampleSize: number;
  readonly seed: number;
  /** EMA decay of the online centroid update, or `null` for frozen centroids. */
  readonly emaDecay: number | null;
}

/** Incremental routing state of one (batch, routing head). */
export class IncrementalRouter {
  private readonly options: IncrementalRouterOptions;
  private centroidData: Float32Array | null = null;
  private clusterCount = 0;
  private lists: Int32Array[] = [];
  private sizes = new Int32Array(0);
  private keys = 0;
  private nextFit: number;
  private readonly scratch: Float32Array;
  private similarityScratch = new Float32Array(1);
  private readonly chosen: Int32Array;
  /** Milliseconds spent fitting centroids so far (the bench's k-means time share). */
  kmeansMs = 0;

  constructor(options: IncrementalRouterOptions) {
    this.options = options;
    this.nextFit = options.calibrationTokens;
    this.scratch = new Float32Array(options.dim);
    this.chosen = new Int32Array(Math.max(1, options.keyClusters));
  }

  /**
   * A router continuing from a balanced prefill: given centroids and per-cluster keys (ascending,
   * CSR), for a sequence of `length` keys. It never refits (the prompt defined the clusters).
   */
  static fromClusters(options: IncrementalRouterOptions, centroids: Float32Array, clusters: number, offsets: Int32Array, members: Int32Array, length: number): IncrementalRouter {
    const router = new IncrementalRouter({ ...options, refit: 'never' });
    router.centroidData = centroids.slice();
    router.clusterCount = clusters;
    router.sizes = new Int32Array(clusters);
    router.lists = [];
    for (let c = 0; c < clusters; c++) {
      const size = offsets[c + 1]! - offsets[c]!;
      const list = new Int32Array(Math.max(8, size * 2));
      list.set(members.subarray(offsets[c]!, offsets[c + 1]!));
      router.lists.push(list);
      router.sizes[c] = size;
    }
    router.keys = length;
    router.nextFit = Infinity;
    return router;
  }

  /** Keys routed so far. */
  get length(): number {
    return this.keys;
  }

  /** Current clusters (0 while calibrating). */
  get clusters(): number {
    return this.clusterCount;
  }

  /** True once centroids exist. */
  get calibrated(): boolean {
    return this.centroidData !== null;
  }

  /** Current centroids (`[clusters × dim]`), or `null` while calibrating. */
  get centroids(): Float32Array | null {
    return this.centroidData;
  }

  /** The keys of cluster `c` (ascending) and how many there are. */
  members(c: number): { readonly list: Int32Array; readonly size: number } {
    return { list: this.lists[c]!, size: this.sizes[c]! };
  }

  /** Size of the largest cluster. */
  largestCluster(): number {
    let m = 0;
    for (const s of this.sizes) m = Math.max(m, s);
    return m;
  }

  /**
   * Routes the next key (position `length`), whose raw row sits at `keys[base + length·dim]`;
   * `keys[base ..)` must hold every earlier key too (for fits). Fits or refits first when due.
   */
  addKey(keys: Float32Array, base: number): void {
    const dim = this.options.dim;
    const t = this.keys;
    if (t >= this.nextFit && t > 0) this.fit(keys, base, t);
    if (this.centroidData) {
      normalizeRows(keys, base + t * dim, this.scratch, 0, 1, dim, this.options.normalization);
      const count = this.topClusters(this.scratch, 0, this.options.keyClusters, this.chosen);
      for (let m = 0; m < count; m++) this.push(this.chosen[m]!, t);
      if (this.options.emaDecay !== null) emaUpdateCentroid(this.centroidData, this.chosen[0]!, dim, this.scratch, 0, this.options.emaDecay);
    }
    this.keys = t + 1;
  }

  /** The top-`r` clusters of a raw query row, written to `out`; returns their count (0 while calibrating). */
  routeQuery(query: Float32Array, offset: number, r: number, out: Int32Array): number {
    if (!this.centroidData) return 0;
    const dim = this.options.dim;
    normalizeRows(query, offset, this.scratch, 0, 1, dim, this.options.normalization);
    return this.topClusters(this.scratch, 0, r, out);
  }

  /** The top-`r` clusters of a normalised row (calibrated routers only). */
  private topClusters(x: Float32Array, offset: number, r: number, out: Int32Array): number {
    if (this.similarityScratch.length < this.clusterCount) this.similarityScratch = new Float32Array(this.clusterCount);
    return topCentroids(x, offset, this.centroidData!, this.clusterCount, this.options.dim, r, out, this.similarityScratch);
  }

  private fit(keys: Float32Array, base: number, count: number): void {
    const started = performance.now();
    const o = this.options;
    const normalized = new Float32Array(count * o.dim);
    normalizeRows(keys, base, normalized, 0, count, o.dim, o.normalization);
    const clusters = resolveClusters(o.clusters, count);
    const fit = sphericalKMeans(normalized, count, o.dim, { clusters, iterations: o.kmeansIterations, seed: o.seed, sampleSize: resolveSampleSize(o.kmeansSampleSize, clusters) });
    this.centroidData = fit.centroids;
    this.clusterCount = clusters;
    const expected = Math.max(8, Math.ceil((2 * count) / clusters));
    this.lists = Array.from({ length: clusters }, () => new Int32Array(expected));
    this.sizes = new Int32Array(clusters);
    const r = Math.min(o.keyClusters, clusters);
    const assignment = new Int32Array(count * r);
    assignTopClusters(normalized, count, o.dim, fit.centroids, clusters, r, assignment);
    for (let i = 0; i < count; i++) for (let m = 0; m < r; m++) this.push(assignment[i * r + m]!, i);
    this.nextFit = o.refit === 'doubling' ? 2 * count : Infinity;
    this.kmeansMs += performance.now() - started;
  }

  private push(c: number, position: number): void {
    let list = this.lists[c]!;
    const size = this.sizes[c]!;
    if (size === list.length) {
      const grown = new Int32Array(list.length * 2);
      grown.set(list);
      this.lists[c] = list = grown;
    }
    list[size] = position;
    this.sizes[c] = size + 1;
  }
}
