import { NumericError, ShapeError, formatShape } from './errors.js';

/**
 * A float32 tensor: data in a `Float32Array`, row-major, with an explicit shape.
 * Attention tensors are `[batch, heads, seq, headDim]`.
 */
export interface Tensor {
  /** Row-major elements. Its length is the product of `shape`, except when `seqCapacity` pads the sequence axis. */
  readonly data: Float32Array;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /**
   * Rank-4 tensors only: rows allocated per head on the sequence axis (≥ `shape[2]`).
   * Element `[b, h, s, d]` lives at `((b * heads + h) * seqCapacity + s) * dim + d`.
   * Lets a KV cache grow in place and hand out views without copying; defaults to `shape[2]`.
   */
  readonly seqCapacity?: number;
}

/** Number of elements a shape describes. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(shape: readonly number[], name: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`${name}: every dimension must be a non-negative integer, got ${formatShape(shape)}`);
    }
  }
}

/** Creates a tensor, zero-filled or over the given data (not copied). */
export function tensor(shape: readonly number[], data?: Float32Array | readonly number[], name = 'tensor'): Tensor {
  checkShape(shape, name);
  const size = sizeOf(shape);
  const buffer = data === undefined ? new Float32Array(size) : data instanceof Float32Array ? data : Float32Array.from(data);
  if (buffer.length !== size) {
    throw new ShapeError(`${name}: shape ${formatShape(shape)} needs ${size} elements, data has ${buffer.length}`);
  }
  return { data: buffer, shape: [...shape] };
}

/** A zero-filled tensor. */
export function zeros(shape: readonly number[]): Tensor {
  return tensor(shape);
}

/** Dimensions of a rank-4 attention tensor, with its sequence capacity. */
export interface Dims4 {
  readonly batch: number;
  readonly heads: number;
  readonly seq: number;
  readonly dim: number;
  /** Allocated rows per head on the sequence axis (`seqCapacity ?? seq`). */
  readonly capacity: number;
}

/** Reads `[batch, heads, seq, dim]`, checking rank and storage size. */
export function dims4(t: Tensor, name: string): Dims4 {
  if (t.shape.length !== 4) {
    throw new ShapeError(`${name}: expected rank 4 [batch, heads, seq, headDim], got ${formatShape(t.shape)}`);
  }
  const [batch, heads, seq, dim] = t.shape as [number, number, number, number];
  const capacity = t.seqCapacity ?? seq;
  if (capacity < seq) throw new ShapeError(`${name}: seqCapacity ${capacity} is below seq ${seq}`);
  const needed = batch * heads * capacity * dim;
  if (t.data.length < needed) {
    throw new ShapeError(`${name}: shape ${formatShape(t.shape)} (capacity ${capacity}) needs ${needed} elements, data has ${t.data.length}`);
  }
  return { batch, heads, seq, dim, capacity };
}

/** Offset of row `[b, h, s, 0]` in a rank-4 tensor. */
export function rowOffset(d: Dims4, b: number, h: number, s: number): number {
  return ((b * d.heads + h) * d.capacity + s) * d.dim;
}

/** A copy of one head as `[1, 1, seq, dim]`. */
export function headOf(t: Tensor, batch: number, head: number): Tensor {
  const d = dims4(t, 'tensor');
  if (batch < 0 || batch >= d.batch || head < 0 || head >= d.heads) {
    throw new ShapeError(`headOf: index [${batch}, ${head}] outside ${formatShape(t.shape)}`);
  }
  const start = rowOffset(d, batch, head, 0);
  return tensor([1, 1, d.seq, d.dim], t.data.slice(start, start + d.seq * d.dim));
}

/** A dense copy of sequence rows `[start, end)` of a rank-4 tensor (also compacts a padded one). */
export function sliceSeq(t: Tensor, start: number, end: number): Tensor {
  const d = dims4(t, 'tensor');
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= d.seq)) {
    throw new ShapeError(`sliceSeq: range [${start}, ${end}) outside sequence length ${d.seq}`);
  }
  const len = end - start;
  const out = new Float32Array(d.batch * d.heads * len * d.dim);
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.heads; h++) {
      const src = rowOffset(d, b, h, start);
      out.set(t.data.subarray(src, src + len * d.dim), ((b * d.heads + h) * len) * d.dim);
    }
  }
  return tensor([d.batch, d.heads, len, d.dim], out);
}

/** Concatenates rank-4 tensors along the sequence axis. */
export function concatSeq(parts: readonly Tensor[]): Tensor {
  if (parts.length === 0) throw new ShapeError('concatSeq: no tensors given');
  const ds = parts.map((p, i) => dims4(p, `parts[${i}]`));
  const first = ds[0]!;
  let total = 0;
  for (const [i, d] of ds.entries()) {
    if (d.batch !== first.batch || d.heads !== first.heads || d.dim !== first.dim) {
      throw new ShapeError(`concatSeq: parts[${i}] has shape ${formatShape(parts[i]!.shape)}, incompatible with ${formatShape(parts[0]!.shape)}`);
    }
    total += d.seq;
  }
  const out = new Float32Array(first.batch * first.heads * total * first.dim);
  for (let b = 0; b < first.batch; b++) {
    for (let h = 0; h < first.heads; h++) {
      let at = ((b * first.heads + h) * total) * first.dim;
      for (const [i, d] of ds.entries()) {
        const src = rowOffset(d, b, h, 0);
        out.set(parts[i]!.data.subarray(src, src + d.seq * d.dim), at);
        at += d.seq * d.dim;
      }
    }
  }
  return tensor([first.batch, first.heads, total, first.dim], out);
}

/** Throws a `NumericError` naming the first NaN/Infinity and its index. */
export function assertFinite(t: Tensor, name: string): void {
  const data = t.data;
  const d = t.shape.length === 4 ? dims4(t, name) : undefined;
  if (d && d.capacity !== d.seq) {
    for (let b = 0; b < d.batch; b++) {
      for (let h = 0; h < d.heads; h++) {
        const start = rowOffset(d, b, h, 0);
        const end = start + d.seq * d.dim;
        for (let i = start; i < end; i++) {
          if (!Number.isFinite(data[i]!)) throw new NumericError(`${name}: non-finite value ${data[i]} at [${b}, ${h}, ${Math.floor((i - start) / d.dim)}, ${(i - start) % d.dim}]`);
        }
      }
    }
    return;
  }
  const n = sizeOf(t.shape);
  for (let i = 0; i < n; i++) {
    // x - x is 0 for finite x and NaN for NaN/±Infinity: one cheap test per element.
    const x = data[i]!;
    if (x - x !== 0) throw new NumericError(`${name}: non-finite value ${x} at flat index ${i} of shape ${formatShape(t.shape)}`);
  }
}

/**
 * Calls `visit(aIndex, bIndex, length)` for each contiguous run of logical elements two
 * same-shaped tensors share, in row-major order. Rank-4 tensors are walked per `[batch, head]`
 * over their `seq · dim` logical elements, so the padding rows of a `seqCapacity` view (a KV
 * cache's unused capacity, often stale or NaN) are never read, and a padded view compares
 * equal to a compact copy of the same values.
 */
function forEachLogicalRun(a: Tensor, b: Tensor, visit: (aIndex: number, bIndex: number, length: number) => void): void {
  assertSameShape(a, b);
  if (a.shape.length !== 4) {
    visit(0, 0, sizeOf(a.shape));
    return;
  }
  const da = dims4(a, 'a');
  const db = dims4(b, 'b');
  const run = da.seq * da.dim;
  if (da.capacity === da.seq && db.capacity === db.seq) {
    visit(0, 0, da.batch * da.heads * run);
    return;
  }
  for (let bh = 0; bh < da.batch * da.heads; bh++) visit(bh * da.capacity * da.dim, bh * db.capacity * db.dim, run);
}

/** Largest absolute difference between two same-shaped tensors (NaN when either holds NaN). */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  let m = 0;
  forEachLogicalRun(a, b, (ia, ib, n) => {
    for (let i = 0; i < n; i++) {
      const diff = Math.abs(a.data[ia + i]! - b.data[ib + i]!);
      // Math.max propagates NaN, so a NaN anywhere makes the result NaN (never silently 0).
      m = Math.max(m, diff);
    }
  });
  return m;
}

/** ‖a − b‖₂ / ‖b‖₂ (b is the reference); 0 when both are zero. */
export function relativeL2Error(a: Tensor, b: Tensor): number {
  let num = 0;
  let den = 0;
  forEachLogicalRun(a, b, (ia, ib, n) => {
    for (let i = 0; i < n; i++) {
      const x = a.data[ia + i]!;
      const y = b.data[ib + i]!;
      num += (x - y) * (x - y);
      den += y * y;
    }
  });
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}

/** True when every logical element agrees within `atol + rtol·|b|` (NaN never agrees). */
export function allClose(a: Tensor, b: Tensor, rtol = 1e-5, atol = 1e-6): boolean {
  let close = true;
  forEachLogicalRun(a, b, (ia, ib, n) => {
    for (let i = 0; close && i < n; i++) {
      const x = a.data[ia + i]!;
      const y = b.data[ib + i]!;
      if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) close = false;
    }
  });
  return close;
}

/** Logical shapes must match; storage (`seqCapacity`) may differ. */
function assertSameShape(a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(`shapes differ: ${formatShape(a.shape)} vs ${formatShape(b.shape)}`);
  }
}
