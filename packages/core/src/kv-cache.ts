import { ShapeError, formatShape } from './errors.js';
import { simdKernels, type SimdArena } from './kernels/simd-runtime.js';
import { dims4, rowOffset, type Tensor } from './tensor.js';

/**
 * Where a {@link KVCache} keeps its rows: `js` in ordinary `Float32Array`s; `kernel` in the
 * WebAssembly kernels' shared memory, so `denseAttention` and `sparseAttention` read them in
 * place instead of copying every key and value in at each decode step (falls back to `js`
 * where the shared-memory kernels are unavailable; {@link KVCache.storage} says which ran).
 */
export type KVCacheStorage = 'js' | 'kernel';

/** Shape of a KV cache. */
export interface KVCacheShape {
  readonly batch: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly valueDim: number;
  /** Rows to allocate up front per head (grows by doubling). Default 256. */
  readonly initialCapacity?: number;
  /**
   * `js` (default) or `kernel` (see {@link KVCacheStorage}). With `kernel`, the arrays behind
   * `keys()`/`values()` are views of a shared WebAssembly memory: keep the returned tensors (not
   * subarrays cut from them) for as long as you read them; a block is recycled once its view is
   * garbage-collected.
   */
  readonly storage?: KVCacheStorage;
}

/** Returns kernel-memory blocks to the arena once the cache (and every tensor view of it) is gone. */
const releaseBlock = new FinalizationRegistry<{ arena: SimdArena; byteOffset: number; length: number }>((block) => block.arena.freePersistent(block));

/** `floats` zero-filled floats in the kernels' memory when asked and possible, else on the JS heap. */
function allocateRows(floats: number, storage: KVCacheStorage): Float32Array {
  if (storage === 'kernel') {
    const arena = simdKernels();
    const view = arena?.allocPersistent(floats);
    if (arena && view) {
      releaseBlock.register(view, { arena, byteOffset: view.byteOffset, length: view.length });
      return view;
    }
  }
  return new Float32Array(floats);
}

/**
 * A growable KV cache laid out `[batch, kvHeads, capacity, dim]`. `append` copies new rows
 * in; `keys`/`values` return zero-copy views (tensors with `seqCapacity`) that every kernel
 * reads directly, so a decode step reads only the rows it attends to.
 */
export class KVCache {
  readonly batch: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly valueDim: number;
  private capacity: number;
  private readonly requestedStorage: KVCacheStorage;
  private k: Float32Array;
  private v: Float32Array;
  private len = 0;

  constructor(shape: KVCacheShape) {
    for (const key of ['batch', 'kvHeads', 'headDim', 'valueDim'] as const) {
      if (!(Number.isInteger(shape[key]) && shape[key] > 0)) throw new ShapeError(`KVCache: ${key} must be a positive integer, got ${shape[key]}`);
    }
    this.batch = shape.batch;
    this.kvHeads = shape.kvHeads;
    this.headDim = shape.headDim;
    this.valueDim = shape.valueDim;
    this.capacity = Math.max(1, shape.initialCapacity ?? 256);
    this.requestedStorage = shape.storage ?? 'js';
    this.k = allocateRows(this.batch * this.kvHeads * this.capacity * this.headDim, this.requestedStorage);
    this.v = allocateRows(this.batch * this.kvHeads * this.capacity * this.valueDim, this.requestedStorage);
  }

  /** Where the rows actually live: `kernel` only when asked for and the shared-memory kernels loaded. */
  get storage(): KVCacheStorage {
    const arena = this.requestedStorage === 'kernel' ? simdKernels() : undefined;
    return arena?.pointerOf(this.k) !== undefined && arena.pointerOf(this.v) !== undefined ? 'kernel' : 'js';
  }

  /** Tokens held. */
  get length(): number {
    return this.len;
  }

  /** Bytes allocated (both buffers). */
  get allocatedBytes(): number {
    return (this.k.length + this.v.length) * 4;
  }

  /** Appends `k` `[B, Hkv, T, D]` and `v` `[B, Hkv, T, Dv]`. */
  append(k: Tensor, v: Tensor): void {
    const kd = dims4(k, 'k');
    const vd = dims4(v, 'v');
    if (kd.batch !== this.batch || kd.heads !== this.kvHeads || kd.dim !== this.headDim) {
      throw new ShapeError(`KVCache.append: k ${formatShape(k.shape)} does not match cache [${this.batch}, ${this.kvHeads}, *, ${this.headDim}]`);
    }
    if (vd.batch !== this.batch || vd.heads !== this.kvHeads || vd.dim !== this.valueDim || vd.seq !== kd.seq) {
      throw new ShapeError(`KVCache.append: v ${formatShape(v.shape)} does not match k ${formatShape(k.shape)} / cache value dim ${this.valueDim}`);
    }
    this.reserve(this.len + kd.seq);
    for (let b = 0; b < this.batch; b++) {
      for (let h = 0; h < this.kvHeads; h++) {
        const ks = rowOffset(kd, b, h, 0);
        this.k.set(k.data.subarray(ks, ks + kd.seq * this.headDim), ((b * this.kvHeads + h) * this.capacity + this.len) * this.headDim);
        const vs = rowOffset(vd, b, h, 0);
        this.v.set(v.data.subarray(vs, vs + vd.seq * this.valueDim), ((b * this.kvHeads + h) * this.capacity + this.len) * this.valueDim);
      }
    }
    this.len += kd.seq;
  }

  /** Keys `[B, Hkv, length, D]` as a zero-copy view (valid until the next append). */
  keys(): Tensor {
    return { data: this.k, shape: [this.batch, this.kvHeads, this.len, this.headDim], seqCapacity: this.capacity };
  }

  /** Values `[B, Hkv, length, Dv]` as a zero-copy view (valid until the next append). */
  values(): Tensor {
    return { data: this.v, shape: [this.batch, this.kvHeads, this.len, this.valueDim], seqCapacity: this.capacity };
  }

  /**
   * Keeps only the listed token positions (sorted, unique) per (batch, KV head), compacting in
   * place. `keep[b * kvHeads + h]` lists the rows to keep; every list must have the same length.
   * Used by KV-dropping methods (SnapKV, SpecKV, H2O…).
   */
  retain(keep: readonly ArrayLike<number>[]): void {
    if (keep.length !== this.batch * this.kvHeads) throw new ShapeError(`KVCache.retain: need ${this.batch * this.kvHeads} lists, got ${keep.length}`);
    const n = keep[0]!.length;
    for (const [i, list] of keep.entries()) {
      if (list.length !== n) throw new ShapeError(`KVCache.retain: list ${i} keeps ${list.length} rows, list 0 keeps ${n}`);
      let prev = -1;
      for (let j = 0; j < list.length; j++) {
        const x = list[j]!;
        if (!(Number.isInteger(x) && x > prev && x < this.len)) throw new ShapeError(`KVCache.retain: list ${i} must be sorted, unique and within [0, ${this.len}), got ${x} after ${prev}`);
        prev = x;
      }
    }
    for (let bh = 0; bh < this.batch * this.kvHeads; bh++) {
      const list = keep[bh]!;
      const kb = bh * this.capacity * this.headDim;
      const vb = bh * this.capacity * this.valueDim;
      for (let j = 0; j < n; j++) {
        const src = list[j]!;
        if (src === j) continue;
        this.k.copyWithin(kb + j * this.headDim, kb + src * this.headDim, kb + (src + 1) * this.headDim);
        this.v.copyWithin(vb + j * this.valueDim, vb + src * this.valueDim, vb + (src + 1) * this.valueDim);
      }
    }
    this.len = n;
  }

  /** Drops every token (keeps the allocation). */
  reset(): void {
    this.len = 0;
  }

  private reserve(needed: number): void {
    if (needed <= this.capacity) return;
    let capacity = this.capacity * 2;
    while (capacity < needed) capacity *= 2;
    const k = allocateRows(this.batch * this.kvHeads * capacity * this.headDim, this.requestedStorage);
    const v = allocateRows(this.batch * this.kvHeads * capacity * this.valueDim, this.requestedStorage);
    for (let bh = 0; bh < this.batch * this.kvHeads; bh++) {
      k.set(this.k.subarray(bh * this.capacity * this.headDim, (bh * this.capacity + this.len) * this.headDim), bh * capacity * this.headDim);
      v.set(this.v.subarray(bh * this.capacity * this.valueDim, (bh * this.capacity + this.len) * this.valueDim), bh * capacity * this.valueDim);
    }
    this.k = k;
    this.v = v;
    this.capacity = capacity;
  }
}
