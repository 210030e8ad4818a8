/**
 * Kernel: one query row over a list of key ranges (the inner loop of the exact sparse executor).
 *
 *   s_j = scale · q·k_j for j in the ranges;  m = max s_j;  l = Σ e^{s_j − m}
 *   o = Σ e^{s_j − m} v_j / l;  lse = m + ln l
 *
 * Scores go to a scratch buffer sized by the key count (O(S), reused across rows), so the
 * softmax is exact (two passes, no rescaling error). Rows with no key give o = 0, lse = −∞.
 *
 * Two implementations with the same semantics: WebAssembly SIMD (`wasm-simd`, the default
 * where it loads) and pure JS (`js`). The SIMD path copies each key/value row it needs into
 * the module's memory once per scratch (a scratch lives for one executor call, during which
 * q, k and v cannot change), so a row shared by many queries is copied once.
 */
import { ShapeError } from '../errors.js';
import { resolveKernel, type KernelPreference, type SimdArena } from './simd-runtime.js';

/** Name of the kernel a scratch runs, recorded as `backend.kernel` by its callers. */
export type RowKernel = 'wasm-simd' | 'js';

/** SIMD-side state of a scratch: where its operands live in the module's memory. */
interface SimdResidency {
  readonly arena: SimdArena;
  readonly generation: number;
  readonly dim: number;
  readonly valueDim: number;
  readonly dimPadded: number;
  readonly valuePadded: number;
  /** Where copied-in K/V rows live; allocated on first use (−1 before: in-place reads need none). */
  kPtr: number;
  vPtr: number;
  readonly qPtr: number;
  readonly sPtr: number;
  readonly outPtr: number;
  readonly statsPtr: number;
  rangesPtr: number;
  rangesCapacity: number;
  /** The head whose rows are resident (array identity and base offset). */
  k: Float32Array | undefined;
  kBase: number;
  v: Float32Array | undefined;
  vBase: number;
  /** Keys of the head (rows the residency can hold). */
  readonly keySeq: number;
  /** Key row j of the resident head has been copied in when `loaded[j] === stamp`. */
  loaded: Int32Array;
  /** This head's stamp in `loaded` (a fresh one per resident head: no O(S) clearing). */
  stamp: number;
  /** Rows [0, prefix) are all loaded: the common causal case needs no per-row check. */
  prefix: number;
}

/** Reusable per-call scratch: score buffer, accumulator and the current row's key ranges. */
export class RowScratch {
  scores: Float32Array;
  readonly acc: Float32Array;
  ranges: Int32Array;
  rangeCount = 0;
  /** Keys the caller's K/V heads hold; every range must end at or before it. */
  readonly keySeq: number;
  /** The kernel {@link attendRanges} runs with this scratch. */
  readonly kernel: RowKernel;
  /** Why `wasm-simd` was not used, when it was not (for `backend.fallbackReason`). */
  readonly fallbackReason: string | undefined;
  /** @internal SIMD residency, created on first use. */
  simd: SimdResidency | undefined;
  private readonly arena: SimdArena | undefined;

  constructor(keySeq: number, valueDim: number, preference: KernelPreference = 'auto') {
    this.keySeq = keySeq;
    // Grown on demand by the JS kernel, so a scratch over a long cache costs O(1) to create.
    this.scores = new Float32Array(Math.max(1, Math.min(keySeq, 1024)));
    this.acc = new Float32Array(valueDim);
    this.ranges = new Int32Array(64);
    const resolved = resolveKernel(preference);
    this.arena = resolved.arena;
    this.kernel = resolved.arena ? 'wasm-simd' : 'js';
    this.fallbackReason = preference === 'js' ? undefined : resolved.fallbackReason;
  }

  pushRange(start: number, end: number): void {
    if (2 * this.rangeCount + 2 > this.ranges.length) {
      const grown = new Int32Array(this.ranges.length * 2);
      grown.set(this.ranges);
      this.ranges = grown;
    }
    this.ranges[2 * this.rangeCount] = start;
    this.ranges[2 * this.rangeCount + 1] = end;
    this.rangeCount++;
  }

  /** @internal The arena of a `wasm-simd` scratch. */
  simdArena(): SimdArena | undefined {
    return this.arena;
  }
}

/**
 * A scratch for one executor call over heads of `keySeq` keys and `valueDim` value floats.
 * `preference` picks the kernel: `auto` (WebAssembly SIMD when it loads, else JS), `wasm-simd`
 * (the same, recording why when it falls back), or `js`.
 */
export function createRowScratch(keySeq: number, valueDim: number, preference: KernelPreference = 'auto'): RowScratch {
  return new RowScratch(keySeq, valueDim, preference);
}

/**
 * Attends query `q[qOff .. qOff + dim)` to the key rows in `scratch`'s ranges (row `j` of this
 * head at `kBase + j * dim` / `vBase + j * valueDim`). Writes `valueDim` outputs at `outOff`
 * and the log-sum-exp at `lse[lseOff]`. Returns the number of pairs scored.
 */
export function attendRanges(
  q: Float32Array, qOff: number,
  k: Float32Array, kBase: number,
  v: Float32Array, vBase: number,
  dim: number, valueDim: number, scale: number,
  scratch: RowScratch,
  out: Float32Array, outOff: number,
  lse: Float32Array, lseOff: number,
): number {
  const ranges = scratch.ranges;
  const nRanges = scratch.rangeCount;
  let total = 0;
  for (let r = 0; r < nRanges; r++) total += ranges[2 * r + 1]! - ranges[2 * r]!;
  if (total === 0) {
    out.fill(0, outOff, outOff + valueDim);
    lse[lseOff] = -Infinity;
    return 0;
  }
  const arena = scratch.simdArena();
  if (arena) attendRangesSimd(arena, q, qOff, k, kBase, v, vBase, dim, valueDim, scale, scratch, out, outOff, lse, lseOff);
  else attendRangesJs(q, qOff, k, kBase, v, vBase, dim, valueDim, scale, scratch, total, out, outOff, lse, lseOff);
  return total;
}

/** The pure-JS kernel: four partial sums per dot product, exact two-pass softmax. */
function attendRangesJs(
  q: Float32Array, qOff: number,
  k: Float32Array, kBase: number,
  v: Float32Array, vBase: number,
  dim: number, valueDim: number, scale: number,
  scratch: RowScratch, total: number,
  out: Float32Array, outOff: number,
  lse: Float32Array, lseOff: number,
): void {
  const ranges = scratch.ranges;
  const nRanges = scratch.rangeCount;
  if (scratch.scores.length < total) scratch.scores = new Float32Array(total);
  const scores = scratch.scores;
  let max = -Infinity;
  let n = 0;
  const dim4 = dim - (dim % 4);
  for (let r = 0; r < nRanges; r++) {
    const end = ranges[2 * r + 1]!;
    for (let j = ranges[2 * r]!; j < end; j++) {
      const ko = kBase + j * dim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let c = 0;
      for (; c < dim4; c += 4) {
        s0 += q[qOff + c]! * k[ko + c]!;
        s1 += q[qOff + c + 1]! * k[ko + c + 1]!;
        s2 += q[qOff + c + 2]! * k[ko + c + 2]!;
        s3 += q[qOff + c + 3]! * k[ko + c + 3]!;
      }
      for (; c < dim; c++) s0 += q[qOff + c]! * k[ko + c]!;
      const s = (s0 + s1 + s2 + s3) * scale;
      scores[n++] = s;
      if (s > max) max = s;
    }
  }
  const acc = scratch.acc;
  acc.fill(0);
  let sum = 0;
  n = 0;
  for (let r = 0; r < nRanges; r++) {
    const end = ranges[2 * r + 1]!;
    for (let j = ranges[2 * r]!; j < end; j++) {
      const p = Math.exp(scores[n++]! - max);
      sum += p;
      const vo = vBase + j * valueDim;
      for (let c = 0; c < valueDim; c++) acc[c]! += p * v[vo + c]!;
    }
  }
  const inv = 1 / sum;
  for (let c = 0; c < valueDim; c++) out[outOff + c] = acc[c]! * inv;
  lse[lseOff] = max + Math.log(sum);
}

/** The WebAssembly SIMD kernel: same sums with base-2 exponentials (q pre-scaled by scale·log2 e). */
function attendRangesSimd(
  arena: SimdArena,
  q: Float32Array, qOff: number,
  k: Float32Array, kBase: number,
  v: Float32Array, vBase: number,
  dim: number, valueDim: number, scale: number,
  scratch: RowScratch,
  out: Float32Array, outOff: number,
  lse: Float32Array, lseOff: number,
): void {
  const nRanges = scratch.rangeCount;
  const r = residency(arena, scratch, dim, valueDim);
  // K/V already in the module's memory (a kernel-memory KV cache) with rows a whole number of
  // vectors: read in place, no copy.
  const kPointer = dim % 4 === 0 && valueDim % 4 === 0 ? arena.pointerOf(k) : undefined;
  const vPointer = kPointer === undefined ? undefined : arena.pointerOf(v);
  if (vPointer !== undefined) {
    checkRanges(scratch);
    runRows(arena, r, q, qOff, scale, scratch, kPointer! + kBase * 4, vPointer + vBase * 4, out, outOff, lse, lseOff);
    return;
  }
  if (r.kPtr < 0) {
    r.kPtr = arena.alloc(r.keySeq * r.dimPadded, false);
    r.vPtr = arena.alloc(r.keySeq * r.valuePadded, false);
  }
  if (r.k !== k || r.kBase !== kBase || r.v !== v || r.vBase !== vBase) {
    r.k = k;
    r.kBase = kBase;
    r.v = v;
    r.vBase = vBase;
    r.stamp = nextStamp();
    r.loaded = stampsFor(r.keySeq);
    r.prefix = 0;
  }
  checkRanges(scratch);
  const ranges = scratch.ranges;
  for (let i = 0; i < nRanges; i++) {
    const end = ranges[2 * i + 1]!;
    if (end > r.prefix) loadRows(r, ranges[2 * i]!, end);
  }
  runRows(arena, r, q, qOff, scale, scratch, r.kPtr, r.vPtr, out, outOff, lse, lseOff);
}

/** Throws a `ShapeError` for a range outside the keys the scratch was created for. */
function checkRanges(scratch: RowScratch): void {
  const ranges = scratch.ranges;
  for (let i = 0; i < scratch.rangeCount; i++) {
    const start = ranges[2 * i]!;
    const end = ranges[2 * i + 1]!;
    if (start < 0 || end > scratch.keySeq || start > end) {
      throw new ShapeError(`attendRanges: key range [${start}, ${end}) outside the ${scratch.keySeq} keys the scratch was created for`);
    }
  }
}

/** Copies q (scaled) and the ranges in, runs `attendRows` over K/V at `kPtr`/`vPtr`, copies the row out. */
function runRows(
  arena: SimdArena, r: SimdResidency,
  q: Float32Array, qOff: number, scale: number,
  scratch: RowScratch, kPtr: number, vPtr: number,
  out: Float32Array, outOff: number,
  lse: Float32Array, lseOff: number,
): void {
  const nRanges = scratch.rangeCount;
  if (2 * nRanges > r.rangesCapacity) {
    r.rangesCapacity = 4 * nRanges;
    r.rangesPtr = arena.alloc(r.rangesCapacity);
  }
  const f32 = arena.f32;
  arena.i32.set(scratch.ranges.subarray(0, 2 * nRanges), r.rangesPtr >> 2);
  const qs = scale * Math.LOG2E;
  const qAt = r.qPtr >> 2;
  for (let c = 0; c < r.dim; c++) f32[qAt + c] = q[qOff + c]! * qs;
  arena.kernels.attendRows(r.qPtr, r.dimPadded, kPtr, vPtr, r.valuePadded, r.rangesPtr, nRanges, r.sPtr, r.outPtr, r.statsPtr);
  out.set(f32.subarray(r.outPtr >> 2, (r.outPtr >> 2) + r.valueDim), outOff);
  const stats = r.statsPtr >> 2;
  lse[lseOff] = f32[stats]! * Math.LN2 + Math.log(f32[stats + 1]!);
}

/** The scratch's SIMD residency, (re)allocated when absent or when another caller reset the arena. */
function residency(arena: SimdArena, scratch: RowScratch, dim: number, valueDim: number): SimdResidency {
  const current = scratch.simd;
  if (current && current.generation === arena.generation && current.dim === dim && current.valueDim === valueDim) return current;
  arena.reset();
  const keySeq = Math.max(1, scratch.keySeq);
  const dimPadded = roundUp4(dim);
  const valuePadded = roundUp4(valueDim);
  const rangesCapacity = Math.max(128, 2 * scratch.rangeCount);
  const created: SimdResidency = {
    arena,
    generation: arena.generation,
    dim,
    valueDim,
    dimPadded,
    valuePadded,
    // K/V rows are copied in (padding lanes zeroed) before they are read, and scores are
    // written before they are read, so none of the O(keySeq) regions is cleared per call.
    kPtr: -1,
    vPtr: -1,
    qPtr: arena.alloc(dimPadded),
    sPtr: arena.alloc(keySeq + 4, false),
    outPtr: arena.alloc(valuePadded),
    statsPtr: arena.alloc(2),
    rangesPtr: arena.alloc(rangesCapacity),
    rangesCapacity,
    k: undefined,
    kBase: 0,
    v: undefined,
    vBase: 0,
    keySeq,
    stamp: nextStamp(),
    loaded: stampsFor(keySeq),
    prefix: 0,
  };
  scratch.simd = created;
  return created;
}

/**
 * Residency stamps shared by every scratch: a head's rows are marked with a stamp no other
 * head ever used, so switching heads costs O(1) instead of clearing O(keySeq) flags per call.
 * Stamps only grow; the array is replaced (never cleared in place) when it must grow or the
 * stamps run out, so a residency that still holds an older array keeps consistent flags.
 */
let stamps = new Int32Array(0);
let lastStamp = 0;

/** The current stamp array, replaced by a larger one when it cannot hold `keySeq` keys. */
function stampsFor(keySeq: number): Int32Array {
  if (stamps.length < keySeq) stamps = new Int32Array(Math.max(keySeq, 2 * stamps.length));
  return stamps;
}

/** A stamp no row of the current array holds (fresh array once every 2³¹ − 1 heads). */
function nextStamp(): number {
  if (lastStamp === 0x7fffffff) {
    stamps = new Int32Array(stamps.length);
    lastStamp = 0;
  }
  return ++lastStamp;
}

/** Copies the not-yet-resident key/value rows of `[start, end)` into the module's memory. */
function loadRows(r: SimdResidency, start: number, end: number): void {
  const { loaded, stamp } = r;
  const k = r.k!;
  const v = r.v!;
  const { dim, valueDim, dimPadded, valuePadded } = r;
  let j = Math.max(start, r.prefix);
  while (j < end) {
    if (loaded[j] === stamp) {
      j++;
      continue;
    }
    let e = j + 1;
    while (e < end && loaded[e] !== stamp) e++;
    const f32 = r.arena.f32;
    copyRows(f32, k, r.kBase + j * dim, (r.kPtr >> 2) + j * dimPadded, e - j, dim, dimPadded);
    copyRows(f32, v, r.vBase + j * valueDim, (r.vPtr >> 2) + j * valuePadded, e - j, valueDim, valuePadded);
    loaded.fill(stamp, j, e);
    j = e;
  }
  while (r.prefix < r.keySeq && loaded[r.prefix] === stamp) r.prefix++;
}

/** Copies `rows` rows of `width` floats into rows of `stride` floats, zeroing the padding lanes. */
export function copyRows(target: Float32Array, source: Float32Array, from: number, to: number, rows: number, width: number, stride: number): void {
  if (width === stride) {
    target.set(source.subarray(from, from + rows * width), to);
    return;
  }
  for (let i = 0; i < rows; i++) {
    const at = to + i * stride;
    target.set(source.subarray(from + i * width, from + (i + 1) * width), at);
    target.fill(0, at + width, at + stride);
  }
}

/** `n` rounded up to a multiple of 4 (one f32x4 vector). */
export function roundUp4(n: number): number {
  return (n + 3) & ~3;
}
