/**
 * Kernel: an inverted-file (IVF) index over one head's keys for maximum-inner-product search.
 *
 *   build:  k-means (Lloyd, L2) on a strided sample of the keys → centroids c_1..c_C;
 *           every key joins the cell of its nearest centroid; r_c = max ‖k − c‖ over the cell
 *   probe:  rank cells by max_h q_h·c (`centroid`) or by the bound max_h (q_h·c + ‖q_h‖·r_c)
 *           (`bound`, ≥ every member's score by Cauchy–Schwarz), scan the best `probe` cells
 *   search: exact top-k of max_h q_h·k over the scanned keys
 *
 * Members are stored in position order, so a causal search stops scanning a cell at the first
 * key past its limit. Keys added after the build join their nearest cell (no re-clustering).
 */
import { Rng } from '@sparse-attn/core';
import { TopKScratch, topKIndices } from './top-k.js';

/** How cells are ranked against a query. */
export type ProbeMode = 'centroid' | 'bound';

/** Reusable buffers of {@link IvfIndex.search}. */
export class IvfScratch {
  cellScores = new Float64Array(0);
  cellIds = new Int32Array(0);
  probed = new Int32Array(0);
  keyScores = new Float64Array(0);
  keyIds = new Int32Array(0);
  /** `positions[i] = i`: scan slots to rank. */
  positions = new Int32Array(0);
  picked = new Int32Array(0);
  readonly topK = new TopKScratch();

  ensureCells(cells: number): void {
    if (this.cellScores.length >= cells) return;
    this.cellScores = new Float64Array(cells);
    this.cellIds = Int32Array.from({ length: cells }, (_, i) => i);
    this.probed = new Int32Array(cells);
  }

  ensureKeys(keys: number): void {
    if (this.keyScores.length >= keys) return;
    const n = Math.max(keys, 2 * this.keyScores.length);
    this.keyScores = new Float64Array(n);
    this.keyIds = new Int32Array(n);
    this.positions = Int32Array.from({ length: n }, (_, i) => i);
  }
}

/** Result of one search: how many keys were written and how many were scanned. */
export interface IvfSearchResult {
  readonly found: number;
  readonly scanned: number;
}

/** An IVF index over the keys of one (batch, KV head) stream. */
export class IvfIndex {
  readonly dim: number;
  readonly cells: number;
  readonly centroids: Float32Array;
  /** Squared norms of the centroids (nearest-centroid assignment). */
  private readonly centroidNorms: Float64Array;
  /** Max distance of a member to its centroid, per cell (for `bound` probing). */
  readonly radius: Float32Array;
  private members: Int32Array[];
  private readonly counts: Int32Array;
  private size = 0;

  private constructor(dim: number, centroids: Float32Array) {
    this.dim = dim;
    this.cells = centroids.length / dim;
    this.centroids = centroids;
    this.centroidNorms = new Float64Array(this.cells);
    for (let c = 0; c < this.cells; c++) {
      let n = 0;
      for (let x = 0; x < dim; x++) n += centroids[c * dim + x]! ** 2;
      this.centroidNorms[c] = n;
    }
    this.radius = new Float32Array(this.cells);
    this.members = Array.from({ length: this.cells }, () => new Int32Array(8));
    this.counts = new Int32Array(this.cells);
  }

  /**
   * Trains centroids by k-means on a strided sample (at most `64 · cells` keys) of the keys at
   * `positions` (rows of `data` starting at `base`, `dim` floats each), then inserts every one of
   * them. Deterministic for a given seed.
   */
  static build(data: Float32Array, base: number, dim: number, positions: readonly number[], cells: number, iterations: number, seed: number): IvfIndex {
    const n = positions.length;
    const cellCount = Math.max(1, Math.min(cells, n));
    const sampleStride = Math.max(1, Math.floor(n / (64 * cellCount)));
    const sample: number[] = [];
    for (let i = 0; i < n; i += sampleStride) sample.push(positions[i]!);
    // Initial centroids: distinct sample keys picked by a seeded partial shuffle.
    const rng = new Rng(seed);
    const order = sample.slice();
    const centroids = new Float32Array(cellCount * dim);
    for (let c = 0; c < cellCount; c++) {
      const pick = c + rng.int(order.length - c);
      [order[c], order[pick]] = [order[pick]!, order[c]!];
      centroids.set(data.subarray(base + order[c]! * dim, base + (order[c]! + 1) * dim), c * dim);
    }
    const sums = new Float64Array(cellCount * dim);
    const sizes = new Int32Array(cellCount);
    for (let it = 0; it < iterations; it++) {
      const index = new IvfIndex(dim, centroids);
      sums.fill(0);
      sizes.fill(0);
      for (const p of sample) {
        const c = index.nearest(data, base + p * dim);
        sizes[c]!++;
        for (let x = 0; x < dim; x++) sums[c * dim + x]! += data[base + p * dim + x]!;
      }
      for (let c = 0; c < cellCount; c++) {
        if (sizes[c] === 0) continue; // an empty cell keeps its centroid
        for (let x = 0; x < dim; x++) centroids[c * dim + x] = sums[c * dim + x]! / sizes[c]!;
      }
    }
    const index = new IvfIndex(dim, centroids);
    for (const p of positions) index.insert(data, base + p * dim, p);
    return index;
  }

  /** Keys held. */
  get length(): number {
    return this.size;
  }

  /** Bytes held: centroids, radii, member lists (allocated capacity). */
  get bytes(): number {
    let total = this.centroids.byteLength + this.radius.byteLength + this.centroidNorms.byteLength;
    for (const m of this.members) total += m.byteLength;
    return total;
  }

  /** Adds the key at `data[offset..offset+dim)` with sequence position `position` (positions must grow). */
  insert(data: Float32Array, offset: number, position: number): void {
    const c = this.nearest(data, offset);
    let list = this.members[c]!;
    if (this.counts[c]! >= list.length) {
      const grown = new Int32Array(2 * list.length);
      grown.set(list);
      this.members[c] = list = grown;
    }
    list[this.counts[c]!++] = position;
    let dist = 0;
    for (let x = 0; x < this.dim; x++) dist += (data[offset + x]! - this.centroids[c * this.dim + x]!) ** 2;
    const r = Math.sqrt(dist);
    if (r > this.radius[c]!) this.radius[c] = r;
    this.size++;
  }

  private nearest(data: Float32Array, offset: number): number {
    let best = 0;
    let bestScore = Infinity;
    for (let c = 0; c < this.cells; c++) {
      let dot = 0;
      const at = c * this.dim;
      for (let x = 0; x < this.dim; x++) dot += data[offset + x]! * this.centroids[at + x]!;
      const score = this.centroidNorms[c]! - 2 * dot; // ‖k − c‖² − ‖k‖²
      if (score < bestScore) {
        bestScore = score;
        best = c;
      }
    }
    return best;
  }

  /**
   * Top-`k` keys with positions in `[from, to)` for the queries at `q[queryOffsets[h]..]` (a
   * key's score is its max over the queries), scanning the best `probe` cells. Writes ascending
   * positions to `out` (a number array, appended) and returns counts.
   */
  search(
    q: Float32Array,
    queryOffsets: readonly number[],
    queryNorms: readonly number[],
    keys: Float32Array,
    keyBase: number,
    from: number,
    to: number,
    probe: number,
    k: number,
    mode: ProbeMode,
    scratch: IvfScratch,
    out: number[],
  ): IvfSearchResult {
    const dim = this.dim;
    scratch.ensureCells(this.cells);
    for (let c = 0; c < this.cells; c++) {
      let best = -Infinity;
      const at = c * dim;
      for (const [h, qo] of queryOffsets.entries()) {
        let s = 0;
        for (let x = 0; x < dim; x++) s += q[qo + x]! * this.centroids[at + x]!;
        if (mode === 'bound') s += queryNorms[h]! * this.radius[c]!;
        if (s > best) best = s;
      }
      scratch.cellScores[c] = this.counts[c] === 0 ? -Infinity : best;
    }
    const probed = topKIndices(scratch.cellScores, scratch.cellIds, this.cells, probe, scratch.probed, scratch.topK);
    let candidates = 0;
    for (let p = 0; p < probed; p++) candidates += this.counts[scratch.probed[p]!]!;
    scratch.ensureKeys(candidates);
    let scanned = 0;
    for (let p = 0; p < probed; p++) {
      const c = scratch.probed[p]!;
      const list = this.members[c]!;
      const count = this.counts[c]!;
      for (let m = 0; m < count; m++) {
        const pos = list[m]!;
        if (pos >= to) break;
        if (pos < from) continue;
        const ko = keyBase + pos * dim;
        let best = -Infinity;
        for (const qo of queryOffsets) {
          let s = 0;
          for (let x = 0; x < dim; x++) s += q[qo + x]! * keys[ko + x]!;
          if (s > best) best = s;
        }
        scratch.keyScores[scanned] = best;
        scratch.keyIds[scanned] = pos;
        scanned++;
      }
    }
    if (scratch.picked.length < k) scratch.picked = new Int32Array(k);
    const found = topKIndices(scratch.keyScores, scratch.positions, scanned, k, scratch.picked, scratch.topK);
    const start = out.length;
    for (let x = 0; x < found; x++) out.push(scratch.keyIds[scratch.picked[x]!]!);
    // Scan slots are in cell order; the selection wants ascending positions.
    const tail = out.slice(start).sort((a, b) => a - b);
    for (let x = 0; x < found; x++) out[start + x] = tail[x]!;
    return { found, scanned };
  }
}
