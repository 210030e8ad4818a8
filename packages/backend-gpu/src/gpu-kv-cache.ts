import { ConfigError, ShapeError, dims4, rowOffset, type AttentionDims, type Tensor } from '@sparse-attn/core';
import type { GpuBackend, ResidentAttention, ResidentChunk } from './gpu-backend.js';
import { WEBGPU_FLAGS } from './webgpu-flags.js';

const { STORAGE, COPY_DST, COPY_SRC } = WEBGPU_FLAGS;

/** Shape of a {@link GpuKVCache}. */
export interface GpuKVCacheShape {
  readonly batch: number;
  readonly kvHeads: number;
  /** Query heads (a multiple of `kvHeads`): sizes the per-step query and output buffers. */
  readonly queryHeads: number;
  readonly headDim: number;
  readonly valueDim: number;
  /** Rows allocated up front per KV head (grows by doubling, copying on the GPU). Default 256. */
  readonly initialCapacity?: number;
}

interface SlotBuffers {
  k: GPUBuffer;
  v: GPUBuffer;
  q: GPUBuffer;
  out: GPUBuffer;
  lse: GPUBuffer;
}

/**
 * A KV cache that lives on the GPU: one key and one value buffer per (batch, KV head) slot of
 * `capacity` rows, grown by doubling (the old rows are copied GPU-side, nothing is read back).
 * `append` uploads only the new rows. `attend(q)` hands out the cache as a
 * {@link ResidentAttention} with one chunk per KV slot, so every kernel of the backend
 * (`runDense`, `runSelection`, `runSparse`, `runKernels`) runs on it unchanged: kernels index
 * keys as `slot · keySeq + key` within a chunk, and with one slot per chunk the slot is always 0,
 * so a buffer of `capacity ≥ keySeq` rows reads correctly.
 */
export class GpuKVCache {
  readonly batch: number;
  readonly kvHeads: number;
  readonly queryHeads: number;
  readonly headDim: number;
  readonly valueDim: number;
  private readonly backend: GpuBackend;
  private slots: SlotBuffers[];
  private rows: number;
  private queryRows = 0;
  private len = 0;

  constructor(backend: GpuBackend, shape: GpuKVCacheShape) {
    for (const key of ['batch', 'kvHeads', 'queryHeads', 'headDim', 'valueDim'] as const) {
      if (!(Number.isInteger(shape[key]) && shape[key] > 0)) throw new ShapeError(`GpuKVCache: ${key} must be a positive integer, got ${shape[key]}`);
    }
    if (shape.queryHeads % shape.kvHeads !== 0) throw new ShapeError(`GpuKVCache: queryHeads ${shape.queryHeads} is not a multiple of kvHeads ${shape.kvHeads}`);
    this.backend = backend;
    this.batch = shape.batch;
    this.kvHeads = shape.kvHeads;
    this.queryHeads = shape.queryHeads;
    this.headDim = shape.headDim;
    this.valueDim = shape.valueDim;
    this.rows = Math.max(1, shape.initialCapacity ?? 256);
    this.checkBinding(this.rows);
    this.slots = Array.from({ length: this.batch * this.kvHeads }, () => ({
      k: this.buffer(this.rows * this.headDim * 4, STORAGE | COPY_DST | COPY_SRC),
      v: this.buffer(this.rows * this.valueDim * 4, STORAGE | COPY_DST | COPY_SRC),
      q: this.buffer(16, STORAGE | COPY_DST),
      out: this.buffer(16, STORAGE | COPY_SRC),
      lse: this.buffer(16, STORAGE | COPY_SRC),
    }));
  }

  /** Tokens in the cache. */
  get length(): number {
    return this.len;
  }

  /** Rows allocated per KV head. */
  get capacity(): number {
    return this.rows;
  }

  /** Query heads per KV head. */
  get groupSize(): number {
    return this.queryHeads / this.kvHeads;
  }

  /**
   * Appends T tokens: k `[B, Hkv, T, D]`, v `[B, Hkv, T, Dv]` (dense or KV-cache views). Only the
   * new rows are uploaded; the cache grows (doubling, copied on the GPU) when it is full.
   */
  append(k: Tensor, v: Tensor): void {
    const kd = dims4(k, 'k');
    const vd = dims4(v, 'v');
    if (kd.batch !== this.batch || kd.heads !== this.kvHeads || kd.dim !== this.headDim) throw new ShapeError(`GpuKVCache.append: k must be [${this.batch}, ${this.kvHeads}, T, ${this.headDim}], got [${k.shape.join(', ')}]`);
    if (vd.batch !== this.batch || vd.heads !== this.kvHeads || vd.dim !== this.valueDim || vd.seq !== kd.seq) throw new ShapeError(`GpuKVCache.append: v must be [${this.batch}, ${this.kvHeads}, ${kd.seq}, ${this.valueDim}], got [${v.shape.join(', ')}]`);
    const t = kd.seq;
    if (t === 0) return;
    this.reserve(this.len + t);
    const { queue } = this.backend.context.device;
    for (let b = 0; b < this.batch; b++) {
      for (let h = 0; h < this.kvHeads; h++) {
        const slot = this.slots[b * this.kvHeads + h]!;
        const ks = rowOffset(kd, b, h, 0);
        const vs = rowOffset(vd, b, h, 0);
        queue.writeBuffer(slot.k, this.len * this.headDim * 4, k.data.subarray(ks, ks + t * this.headDim));
        queue.writeBuffer(slot.v, this.len * this.valueDim * 4, v.data.subarray(vs, vs + t * this.valueDim));
      }
    }
    this.len += t;
  }

  /**
   * The cache as a resident attention call for the queries `q` `[B, Hq, T, D]` (the last T
   * positions, causal): q is uploaded, and each chunk is one KV slot with its key/value buffers
   * and this cache's output buffers. The view is valid until the next `append`, `attend`,
   * `reset` or `destroy` (the buffers are reused across steps); read results with
   * `backend.readOutput(view)`.
   */
  attend(q: Tensor, scale = 1 / Math.sqrt(this.headDim)): ResidentAttention {
    const qd = dims4(q, 'q');
    if (qd.batch !== this.batch || qd.heads !== this.queryHeads || qd.dim !== this.headDim) throw new ShapeError(`GpuKVCache.attend: q must be [${this.batch}, ${this.queryHeads}, T, ${this.headDim}], got [${q.shape.join(', ')}]`);
    if (qd.seq === 0 || qd.seq > this.len) throw new ShapeError(`GpuKVCache.attend: ${qd.seq} queries over ${this.len} cached keys (queries are the last positions)`);
    if (!(Number.isFinite(scale) && scale > 0)) throw new ConfigError(`scale must be a positive finite number, got ${scale}`);
    const g = this.groupSize;
    const t = qd.seq;
    if (t > this.queryRows) {
      this.queryRows = t;
      for (const slot of this.slots) {
        slot.q.destroy();
        slot.out.destroy();
        slot.lse.destroy();
        slot.q = this.buffer(g * t * this.headDim * 4, STORAGE | COPY_DST);
        slot.out = this.buffer(g * t * this.valueDim * 4, STORAGE | COPY_SRC);
        slot.lse = this.buffer(g * t * 4, STORAGE | COPY_SRC);
      }
    }
    const { queue } = this.backend.context.device;
    const packed = new Float32Array(g * t * this.headDim);
    for (const [s, slot] of this.slots.entries()) {
      const b = Math.floor(s / this.kvHeads);
      const h0 = (s % this.kvHeads) * g;
      for (let j = 0; j < g; j++) {
        const from = rowOffset(qd, b, h0 + j, 0);
        packed.set(q.data.subarray(from, from + t * this.headDim), j * t * this.headDim);
      }
      queue.writeBuffer(slot.q, 0, packed);
    }
    return { dims: this.dims(t, scale), chunks: this.slots.map((slot, s): ResidentChunk => ({ slot0: s, slots: 1, ...slot })) };
  }

  /** The attention dims of T queries over the cache (causal, queries at the last T positions). */
  dims(querySeq: number, scale = 1 / Math.sqrt(this.headDim)): AttentionDims {
    const kv = { batch: this.batch, heads: this.kvHeads, seq: this.len, capacity: this.rows };
    return {
      batch: this.batch,
      queryHeads: this.queryHeads,
      kvHeads: this.kvHeads,
      groupSize: this.groupSize,
      querySeq,
      keySeq: this.len,
      headDim: this.headDim,
      valueDim: this.valueDim,
      causal: true,
      scale,
      queryOffset: this.len - querySeq,
      qDims: { batch: this.batch, heads: this.queryHeads, seq: querySeq, dim: this.headDim, capacity: querySeq },
      kDims: { ...kv, dim: this.headDim },
      vDims: { ...kv, dim: this.valueDim },
    };
  }

  /** Empties the cache (keeps its buffers). */
  reset(): void {
    this.len = 0;
  }

  /** Frees every buffer; the cache cannot be used afterwards. */
  destroy(): void {
    for (const slot of this.slots) for (const b of [slot.k, slot.v, slot.q, slot.out, slot.lse]) b.destroy();
    this.slots = [];
  }

  /** Makes room for `rows` tokens per KV head: doubles the capacity and copies the cached rows on the GPU. */
  private reserve(rows: number): void {
    if (rows <= this.rows) return;
    let capacity = this.rows;
    while (capacity < rows) capacity *= 2;
    this.checkBinding(capacity);
    const { device } = this.backend.context;
    const encoder = device.createCommandEncoder();
    const old: GPUBuffer[] = [];
    for (const slot of this.slots) {
      const k = this.buffer(capacity * this.headDim * 4, STORAGE | COPY_DST | COPY_SRC);
      const v = this.buffer(capacity * this.valueDim * 4, STORAGE | COPY_DST | COPY_SRC);
      if (this.len > 0) {
        encoder.copyBufferToBuffer(slot.k, 0, k, 0, this.len * this.headDim * 4);
        encoder.copyBufferToBuffer(slot.v, 0, v, 0, this.len * this.valueDim * 4);
      }
      old.push(slot.k, slot.v);
      slot.k = k;
      slot.v = v;
    }
    device.queue.submit([encoder.finish()]);
    // WebGPU keeps a destroyed buffer alive until the work already submitted with it has run.
    for (const b of old) b.destroy();
    this.rows = capacity;
  }

  private checkBinding(rows: number): void {
    const bytes = rows * Math.max(this.headDim, this.valueDim) * 4;
    if (bytes > this.backend.context.maxBinding) {
      throw new ConfigError(`GpuKVCache: ${rows} rows of one KV head need ${bytes} bytes, above the device's largest buffer binding (${this.backend.context.maxBinding} bytes)`);
    }
  }

  private buffer(bytes: number, usage: number): GPUBuffer {
    return this.backend.context.device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
  }
}
