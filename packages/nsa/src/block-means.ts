/**
 * Kernel: mean pooling of key (and value) windows.
 *
 *   k̃_i = (1/l) Σ_{j = i·d}^{i·d + l − 1} k_j,   ṽ_i likewise,   for every complete window i
 *   (i·d + l ≤ length), i.e. `floor((length − l) / d) + 1` windows once `length ≥ l`.
 *
 * This is NSA's training-free compression φ (FLA's `mean_pooling`, NSA paper Eq. 7 with φ = mean;
 * stride d < l gives overlapping windows as in the paper), MoBA's block keys (l = d = block size)
 * and the hierarchical indexer's block representatives. Windows are appended incrementally as a
 * KV cache grows, and prefill runs the very same code, so the pooled keys of a decode step are
 * bit-identical to those of a prefill over the same tokens.
 */
import { ShapeError, dims4, rowOffset, type Tensor } from '@sparse-attn/core';

/** Geometry of a {@link BlockMeans} store. */
export interface BlockMeansShape {
  readonly batch: number;
  readonly heads: number;
  readonly headDim: number;
  /** Value dim; pooled values are kept only when given (NSA's gated compression branch needs them). */
  readonly valueDim?: number;
  /**
   * Also keep each window's per-channel key bounds `[max | min]` (2·headDim floats), the Quest-style
   * representative NSA's `compressionScore: 'quest'` scores.
   */
  readonly bounds?: boolean;
  /** Window length `l` (tokens pooled per entry). */
  readonly length: number;
  /** Window stride `d` (`1 ≤ d ≤ l`). */
  readonly stride: number;
}

/** Number of complete windows of length `l`, stride `d` in a sequence of `sequenceLength` tokens. */
export function completeWindows(sequenceLength: number, length: number, stride: number): number {
  return sequenceLength >= length ? Math.floor((sequenceLength - length) / stride) + 1 : 0;
}

/**
 * Growable store of pooled windows laid out `[batch, heads, capacity, dim]`, so a view of it is a
 * core `Tensor` (with `seqCapacity`) that the exact sparse executor reads directly.
 */
export class BlockMeans {
  readonly batch: number;
  readonly heads: number;
  readonly headDim: number;
  readonly valueDim: number | undefined;
  readonly length: number;
  readonly stride: number;
  private capacity: number;
  private k: Float32Array;
  private v: Float32Array | undefined;
  private b: Float32Array | undefined;
  private windows = 0;
  private readonly sum: Float64Array;

  constructor(shape: BlockMeansShape, initialCapacity = 16) {
    if (!(Number.isInteger(shape.length) && shape.length >= 1 && Number.isInteger(shape.stride) && shape.stride >= 1 && shape.stride <= shape.length)) {
      throw new ShapeError(`BlockMeans: window length ${shape.length} and stride ${shape.stride} must be integers with 1 ≤ stride ≤ length`);
    }
    this.batch = shape.batch;
    this.heads = shape.heads;
    this.headDim = shape.headDim;
    this.valueDim = shape.valueDim;
    this.length = shape.length;
    this.stride = shape.stride;
    this.capacity = Math.max(1, initialCapacity);
    this.k = new Float32Array(this.batch * this.heads * this.capacity * this.headDim);
    this.v = this.valueDim === undefined ? undefined : new Float32Array(this.batch * this.heads * this.capacity * this.valueDim);
    this.b = shape.bounds ? new Float32Array(this.batch * this.heads * this.capacity * 2 * this.headDim) : undefined;
    this.sum = new Float64Array(Math.max(this.headDim, this.valueDim ?? 0));
  }

  /** Complete windows pooled so far. */
  get count(): number {
    return this.windows;
  }

  /** Allocated rows per head: the row stride of {@link keyData}. */
  get rowCapacity(): number {
    return this.capacity;
  }

  /** Pooled keys, `[batch, heads, rowCapacity, headDim]` row-major (valid until the next extend). */
  get keyData(): Float32Array {
    return this.k;
  }

  /** Offset of pooled key `[b, h, i, 0]` in {@link keyData}. */
  keyOffset(b: number, h: number, i: number): number {
    return ((b * this.heads + h) * this.capacity + i) * this.headDim;
  }

  /** Per-window key bounds `[max | min]`, `[batch, heads, rowCapacity, 2·headDim]` (valid until the next extend). */
  get boundData(): Float32Array {
    if (!this.b) throw new ShapeError('BlockMeans.boundData: this store keeps no bounds (bounds: false)');
    return this.b;
  }

  /** Offset of the bounds of window `[b, h, i]` in {@link boundData}. */
  boundOffset(b: number, h: number, i: number): number {
    return ((b * this.heads + h) * this.capacity + i) * 2 * this.headDim;
  }

  /**
   * Pools every window that is complete within `k` (and `v`) but not pooled yet. `k`/`v` hold the
   * whole sequence so far (a prefill input or a KV-cache view); tokens already pooled are not reread.
   */
  extend(k: Tensor, v?: Tensor): void {
    const kd = dims4(k, 'k');
    if (kd.batch !== this.batch || kd.heads !== this.heads || kd.dim !== this.headDim) {
      throw new ShapeError(`BlockMeans.extend: k shape [${k.shape.join(', ')}] does not match [${this.batch}, ${this.heads}, *, ${this.headDim}]`);
    }
    const vd = this.v && v ? dims4(v, 'v') : undefined;
    if (this.v && (!vd || vd.dim !== this.valueDim || vd.seq !== kd.seq || vd.heads !== this.heads || vd.batch !== this.batch)) {
      throw new ShapeError(`BlockMeans.extend: pooled values need v [${this.batch}, ${this.heads}, ${kd.seq}, ${this.valueDim}], got ${v ? `[${v.shape.join(', ')}]` : 'none'}`);
    }
    const target = completeWindows(kd.seq, this.length, this.stride);
    if (target <= this.windows) return;
    this.reserve(target);
    const inv = 1 / this.length;
    for (let b = 0; b < this.batch; b++) {
      for (let h = 0; h < this.heads; h++) {
        for (let i = this.windows; i < target; i++) {
          const start = i * this.stride;
          this.pool(k.data, rowOffset(kd, b, h, start), this.headDim, inv, this.k, this.keyOffset(b, h, i));
          if (this.b) this.bound(k.data, rowOffset(kd, b, h, start), this.b, this.boundOffset(b, h, i));
          if (this.v && vd) this.pool(v!.data, rowOffset(vd, b, h, start), vd.dim, inv, this.v, ((b * this.heads + h) * this.capacity + i) * vd.dim);
        }
      }
    }
    this.windows = target;
  }

  /** Makes room for at least `rows` pooled rows per head (the executor needs keySeq ≥ querySeq). */
  reserve(rows: number): void {
    if (rows <= this.capacity) return;
    let capacity = this.capacity * 2;
    while (capacity < rows) capacity *= 2;
    const grow = (old: Float32Array, dim: number) => {
      const next = new Float32Array(this.batch * this.heads * capacity * dim);
      for (let bh = 0; bh < this.batch * this.heads; bh++) {
        next.set(old.subarray(bh * this.capacity * dim, (bh * this.capacity + this.windows) * dim), bh * capacity * dim);
      }
      return next;
    };
    this.k = grow(this.k, this.headDim);
    if (this.v) this.v = grow(this.v, this.valueDim!);
    if (this.b) this.b = grow(this.b, 2 * this.headDim);
    this.capacity = capacity;
  }

  /**
   * Pooled keys and values as executor-ready tensor views `[batch, heads, rows, dim]` with
   * `rows = max(count, minRows)`: rows past `count` are zero padding that no selection names
   * (core's executor requires at least as many keys as queries, even for non-causal calls).
   */
  tensors(minRows: number): { k: Tensor; v: Tensor } {
    if (!this.v) throw new ShapeError('BlockMeans.tensors: this store pools keys only (no valueDim given)');
    const rows = Math.max(this.windows, minRows);
    this.reserve(rows);
    for (const [data, dim] of [[this.k, this.headDim], [this.v, this.valueDim!]] as const) {
      for (let bh = 0; bh < this.batch * this.heads; bh++) data.fill(0, (bh * this.capacity + this.windows) * dim, (bh * this.capacity + rows) * dim);
    }
    return {
      k: { data: this.k, shape: [this.batch, this.heads, rows, this.headDim], seqCapacity: this.capacity },
      v: { data: this.v, shape: [this.batch, this.heads, rows, this.valueDim!], seqCapacity: this.capacity },
    };
  }

  /** Per-channel maxima then minima of the window's `length` keys starting at `at`. */
  private bound(src: Float32Array, at: number, dst: Float32Array, to: number): void {
    const dim = this.headDim;
    for (let c = 0; c < dim; c++) {
      dst[to + c] = src[at + c]!;
      dst[to + dim + c] = src[at + c]!;
    }
    for (let j = 1; j < this.length; j++) {
      const o = at + j * dim;
      for (let c = 0; c < dim; c++) {
        const x = src[o + c]!;
        if (x > dst[to + c]!) dst[to + c] = x;
        if (x < dst[to + dim + c]!) dst[to + dim + c] = x;
      }
    }
  }

  private pool(src: Float32Array, at: number, dim: number, inv: number, dst: Float32Array, to: number): void {
    const sum = this.sum;
    sum.fill(0, 0, dim);
    for (let j = 0; j < this.length; j++) {
      const o = at + j * dim;
      for (let c = 0; c < dim; c++) sum[c]! += src[o + c]!;
    }
    for (let c = 0; c < dim; c++) dst[to + c] = sum[c]! * inv;
  }
}
