import { ConfigError, ShapeError, dims4, rowOffset, type AttentionDims, type Dims4, type Tensor } from '@sparse-attn/core';
import type { GpuBackend, ResidentAttention, ResidentChunk } from './gpu-backend.js';
import { APPEND_ROWS_PARAMS, APPEND_ROWS_THREADS, appendRowsWgsl } from './kernels/append-rows-wgsl.js';
import { GATHER_ROWS_PARAMS, GATHER_ROWS_THREADS, gatherRowsWgsl } from './kernels/gather-rows-wgsl.js';
import { dispatchGrid } from './kernels/score-tile-wgsl.js';
import { WEBGPU_FLAGS } from './webgpu-flags.js';

const { STORAGE, COPY_DST, COPY_SRC, UNIFORM } = WEBGPU_FLAGS;

/** Appends up to this many bytes per tensor go through a staging buffer and one dispatch (`appendStaged`); longer ones are written slot by slot. */
const STAGED_APPEND_BYTES = 1 << 20;

const cachePipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** A cache kernel's pipeline on `device` (made once, synchronously: `append` and `retain` do not wait). */
function cachePipeline(device: GPUDevice, code: string): GPUComputePipeline {
  let pipelines = cachePipelines.get(device);
  if (!pipelines) cachePipelines.set(device, (pipelines = new Map()));
  let pipeline = pipelines.get(code);
  if (!pipeline) {
    pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
    pipelines.set(code, pipeline);
  }
  return pipeline;
}

const appendPipeline = (device: GPUDevice) => cachePipeline(device, appendRowsWgsl());
const gatherPipeline = (device: GPUDevice) => cachePipeline(device, gatherRowsWgsl());

/** The T rows of every slot of `[B, H, T, dim]` as `[slot][T][dim]` (a view when they are contiguous). */
function slotRows(x: Tensor, d: Dims4, t: number): Float32Array {
  if (d.capacity === t) return x.data.subarray(0, d.batch * d.heads * t * d.dim);
  const out = new Float32Array(d.batch * d.heads * t * d.dim);
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.heads; h++) {
      const at = rowOffset(d, b, h, 0);
      out.set(x.data.subarray(at, at + t * d.dim), (b * d.heads + h) * t * d.dim);
    }
  }
  return out;
}

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

/** One chunk of the cache: `slots` consecutive KV slots, `capacity` rows apart in `k` and `v`. */
interface ChunkBuffers {
  readonly slot0: number;
  readonly slots: number;
  k: GPUBuffer;
  v: GPUBuffer;
  q: GPUBuffer;
  out: GPUBuffer;
  lse: GPUBuffer;
}

/**
 * A KV cache that lives on the GPU. The (batch, KV head) slots are grouped into chunks, each one
 * key and one value buffer of `slots × capacity` rows (slot s's key t at row `s · capacity + t`),
 * as many slots per chunk as one buffer binding holds (all of them for typical models). The
 * capacity grows by doubling; the old rows are copied GPU-side, nothing is read back. `append`
 * uploads only the new rows. `attend(q)` hands out the cache as a {@link ResidentAttention} with
 * one chunk per cache chunk and `keyStride` = the capacity, so every kernel of the backend
 * (`runDense`, `runSelection`, `runSparse`, `runKernels`) and of the families runs on it
 * unchanged: kernels read key t of a chunk's slot s at row `s · keyStride + t`.
 */
export class GpuKVCache {
  readonly batch: number;
  readonly kvHeads: number;
  readonly queryHeads: number;
  readonly headDim: number;
  readonly valueDim: number;
  private readonly backend: GpuBackend;
  private chunks: ChunkBuffers[];
  private rows: number;
  private slotsPerChunk: number;
  private queryRows = 0;
  private len = 0;
  /** Staging buffers of a short append (k, v) and the rows they hold, with their bind groups and uniforms per (chunk, tensor). */
  private staged: GPUBuffer[] = [];
  private stagedRows = 0;
  private readonly appendBindings = new Map<number, { params: GPUBuffer; group: GPUBindGroup }>();
  /** `retain`'s kept-row list and k / v scratch, and the rows they hold, with its uniforms and bind groups per (chunk, tensor). */
  private retainScratch: GPUBuffer[] = [];
  private retainRows = 0;
  private readonly retainBindings = new Map<number, { gather: { params: GPUBuffer; group: GPUBindGroup }; put: { params: GPUBuffer; group: GPUBindGroup } }>();

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
    this.slotsPerChunk = this.fittingSlots(this.rows, 0);
    this.chunks = this.allocate(this.rows, this.slotsPerChunk);
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

  /** KV slots per chunk of the cache's buffers (every slot when one binding holds them). */
  get chunkSlots(): number {
    return this.slotsPerChunk;
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
    const slots = this.batch * this.kvHeads;
    if (4 * slots * t * Math.max(this.headDim, this.valueDim) <= STAGED_APPEND_BYTES) this.appendStaged(k, kd, v, vd, t);
    else {
      // A long append (a prompt, context): one write per slot and tensor, no staging copy of its size.
      const { queue } = this.backend.context.device;
      for (const chunk of this.chunks) {
        for (let local = 0; local < chunk.slots; local++) {
          const slot = chunk.slot0 + local;
          const b = Math.floor(slot / this.kvHeads);
          const h = slot % this.kvHeads;
          const row = local * this.rows + this.len;
          const ks = rowOffset(kd, b, h, 0);
          const vs = rowOffset(vd, b, h, 0);
          queue.writeBuffer(chunk.k, row * this.headDim * 4, k.data.subarray(ks, ks + t * this.headDim));
          queue.writeBuffer(chunk.v, row * this.valueDim * 4, v.data.subarray(vs, vs + t * this.valueDim));
        }
      }
    }
    this.len += t;
  }

  /**
   * A short append (a decode step's tokens): every slot's new rows go up in one write per tensor
   * into a staging buffer, and one dispatch per chunk and tensor puts them in place
   * (`append-rows-wgsl.ts`) — one `writeBuffer` per KV slot and tensor cost 0.2–0.5 ms a step at
   * 32 KV heads.
   */
  private appendStaged(k: Tensor, kd: Dims4, v: Tensor, vd: Dims4, t: number): void {
    const { device } = this.backend.context;
    const slots = this.batch * this.kvHeads;
    const stagedRows = slots * t;
    if (stagedRows > this.stagedRows) {
      this.stagedRows = stagedRows;
      for (const b of this.staged) b.destroy();
      this.staged = [this.buffer(stagedRows * this.headDim * 4, STORAGE | COPY_DST), this.buffer(stagedRows * this.valueDim * 4, STORAGE | COPY_DST)];
      this.appendBindings.clear();
    }
    const pipeline = appendPipeline(device);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    for (const [tensorIndex, [tensor, dims, dim]] of ([[k, kd, this.headDim], [v, vd, this.valueDim]] as const).entries()) {
      device.queue.writeBuffer(this.staged[tensorIndex]!, 0, slotRows(tensor, dims, t));
      for (const [c, chunk] of this.chunks.entries()) {
        const key = 2 * c + tensorIndex;
        let binding = this.appendBindings.get(key);
        if (!binding) {
          const params = this.buffer(APPEND_ROWS_PARAMS.length * 4, UNIFORM | COPY_DST);
          const group = device.createBindGroup({
            layout: pipeline.getBindGroupLayout(0),
            entries: [
              { binding: 0, resource: { buffer: params } },
              { binding: 1, resource: { buffer: this.staged[tensorIndex]! } },
              { binding: 2, resource: { buffer: tensorIndex === 0 ? chunk.k : chunk.v } },
            ],
          });
          binding = { params, group };
          this.appendBindings.set(key, binding);
        }
        const count = chunk.slots * t * dim;
        const [x, y] = dispatchGrid(Math.ceil(count / APPEND_ROWS_THREADS));
        const values: Record<(typeof APPEND_ROWS_PARAMS)[number], number> = { count, rows: t, dim, keyStride: this.rows, first: this.len, tilesX: x, srcOffset: chunk.slot0 * t * dim, pad0: 0 };
        device.queue.writeBuffer(binding.params, 0, Uint32Array.from(APPEND_ROWS_PARAMS, (name) => values[name]));
        pass.setBindGroup(0, binding.group);
        pass.dispatchWorkgroups(x, y);
      }
    }
    pass.end();
    device.queue.submit([encoder.finish()]);
  }

  /**
   * Keeps only the rows `keep` of every KV slot, in that order, at positions 0 … n − 1; the
   * cache's length becomes n (what a KV-dropping decoder does once it chose the entries to keep).
   * `keep` is one ascending list of row indices below the length per slot (`[B · Hkv]` lists of
   * the same length n), or one list for every slot. Runs on the GPU (a gather into scratch, then
   * the rows back in place); nothing is read back.
   */
  retain(keep: Int32Array | readonly Int32Array[]): void {
    const slots = this.batch * this.kvHeads;
    const lists = keep instanceof Int32Array ? Array.from({ length: slots }, () => keep) : keep;
    if (lists.length !== slots) throw new ShapeError(`GpuKVCache.retain: ${lists.length} lists of kept rows, expected one per KV slot (${slots})`);
    const n = lists[0]!.length;
    const checked = new Set<Int32Array>();
    for (const [slot, list] of lists.entries()) {
      if (list.length !== n) throw new ShapeError(`GpuKVCache.retain: slot ${slot} keeps ${list.length} rows, slot 0 keeps ${n} (every slot keeps as many)`);
      // One list shared by every slot (StreamingLLM's) is checked once.
      if (checked.has(list)) continue;
      checked.add(list);
      for (let i = 0; i < n; i++) {
        const row = list[i]!;
        if (!(Number.isInteger(row) && row >= 0 && row < this.len && (i === 0 || row > list[i - 1]!))) {
          throw new ShapeError(`GpuKVCache.retain: slot ${slot}'s kept rows must ascend within [0, ${this.len}); entry ${i} is ${row}`);
        }
      }
    }
    if (lists.every((list) => list.every((row, i) => row === i))) {
      this.len = n;
      return;
    }
    if (n > 0) this.gatherRows(lists, n);
    this.len = n;
  }

  /**
   * `retain`'s GPU work: per chunk and tensor, the kept rows into scratch, then back at 0 … n − 1.
   * The scratch and the kept-row list are kept for the next retain (StreamingLLM's decoder retains
   * at every step once full): only their growth allocates.
   */
  private gatherRows(lists: readonly Int32Array[], n: number): void {
    const { device } = this.backend.context;
    const slots = lists.length;
    const keep = new Uint32Array(slots * n);
    lists.forEach((list, slot) => keep.set(list, slot * n));
    if (slots * n > this.retainRows) {
      this.retainRows = slots * n;
      for (const b of this.retainScratch) b.destroy();
      this.retainScratch = [
        this.buffer(keep.byteLength, STORAGE | COPY_DST),
        this.buffer(slots * n * this.headDim * 4, STORAGE),
        this.buffer(slots * n * this.valueDim * 4, STORAGE),
      ];
      this.clearRetainBindings();
    }
    const [keepBuffer, ...scratches] = this.retainScratch as [GPUBuffer, GPUBuffer, GPUBuffer];
    device.queue.writeBuffer(keepBuffer, 0, keep);
    // Uniform buffers and bind groups are kept (StreamingLLM's decoder retains at every step once
    // full): creating them per call cost ~0.9 ms of host time a step at 32 KV heads.
    const binding = (pipeline: GPUComputePipeline, buffers: readonly GPUBuffer[], fields: number) => {
      const params = this.buffer(fields * 4, UNIFORM | COPY_DST);
      const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [params, ...buffers].map((buffer, index) => ({ binding: index, resource: { buffer } })) });
      return { params, group };
    };
    const write = (params: GPUBuffer, fields: readonly string[], values: Readonly<Record<string, number>>) => device.queue.writeBuffer(params, 0, Uint32Array.from(fields, (name) => values[name] ?? 0));
    const gather = gatherPipeline(device);
    const put = appendPipeline(device);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (const [tensorIndex, dim] of [this.headDim, this.valueDim].entries()) {
      const scratch = scratches[tensorIndex]!;
      for (const [c, chunk] of this.chunks.entries()) {
        const target = tensorIndex === 0 ? chunk.k : chunk.v;
        const key = 2 * c + tensorIndex;
        let bound = this.retainBindings.get(key);
        if (!bound) {
          bound = { gather: binding(gather, [target, keepBuffer, scratch], GATHER_ROWS_PARAMS.length), put: binding(put, [scratch, target], APPEND_ROWS_PARAMS.length) };
          this.retainBindings.set(key, bound);
        }
        const count = chunk.slots * n * dim;
        const [x, y] = dispatchGrid(Math.ceil(count / GATHER_ROWS_THREADS));
        const common = { count, rows: n, dim, keyStride: this.rows, tilesX: x };
        write(bound.gather.params, GATHER_ROWS_PARAMS, { ...common, keepOffset: chunk.slot0 * n });
        write(bound.put.params, APPEND_ROWS_PARAMS, { ...common, first: 0, srcOffset: chunk.slot0 * n * dim });
        pass.setPipeline(gather);
        pass.setBindGroup(0, bound.gather.group);
        pass.dispatchWorkgroups(x, y);
        pass.setPipeline(put);
        pass.setBindGroup(0, bound.put.group);
        pass.dispatchWorkgroups(x, y);
      }
    }
    pass.end();
    device.queue.submit([encoder.finish()]);
  }

  private clearRetainBindings(): void {
    for (const { gather, put } of this.retainBindings.values()) for (const b of [gather.params, put.params]) b.destroy();
    this.retainBindings.clear();
  }

  /**
   * The cache as a resident attention call for the queries `q` `[B, Hq, T, D]` (the last T
   * positions, causal): q is uploaded, and each chunk of the view is a chunk of the cache (its
   * key/value buffers, `keyStride` = the capacity, and this cache's output buffers). Kernels that
   * need `extraBytesPerSlot` of scratch per KV slot get chunks whose scratch fits one binding (the
   * cache regroups its slots, on the GPU, when they would not). The view is valid until the next
   * `append`, `attend`, `reset` or `destroy` (the buffers are reused across steps); read results
   * with `backend.readOutput(view)`.
   */
  attend(q: Tensor, scale = 1 / Math.sqrt(this.headDim), extraBytesPerSlot = 0): ResidentAttention {
    const qd = dims4(q, 'q');
    if (qd.batch !== this.batch || qd.heads !== this.queryHeads || qd.dim !== this.headDim) throw new ShapeError(`GpuKVCache.attend: q must be [${this.batch}, ${this.queryHeads}, T, ${this.headDim}], got [${q.shape.join(', ')}]`);
    if (qd.seq === 0 || qd.seq > this.len) throw new ShapeError(`GpuKVCache.attend: ${qd.seq} queries over ${this.len} cached keys (queries are the last positions)`);
    if (!(Number.isFinite(scale) && scale > 0)) throw new ConfigError(`scale must be a positive finite number, got ${scale}`);
    const g = this.groupSize;
    const t = qd.seq;
    const fitting = this.fittingSlots(this.rows, Math.max(extraBytesPerSlot, 4 * g * t * Math.max(this.headDim, this.valueDim)));
    if (fitting < this.slotsPerChunk) this.relayout(this.rows, fitting);
    if (t > this.queryRows) {
      this.queryRows = t;
      for (const chunk of this.chunks) this.sizeQueries(chunk);
    }
    const { queue } = this.backend.context.device;
    const slotFloats = g * t * this.headDim;
    for (const chunk of this.chunks) {
      // q `[B, Hq, T, D]` is already the chunk's `[slot][g][T][D]` where its rows are contiguous.
      const from = chunk.slot0 * slotFloats;
      let packed: Float32Array;
      if (qd.capacity === t) packed = q.data.subarray(from, from + chunk.slots * slotFloats);
      else {
        packed = new Float32Array(chunk.slots * slotFloats);
        for (let local = 0; local < chunk.slots; local++) {
          const slot = chunk.slot0 + local;
          const b = Math.floor(slot / this.kvHeads);
          const h0 = (slot % this.kvHeads) * g;
          for (let j = 0; j < g; j++) {
            const at = rowOffset(qd, b, h0 + j, 0);
            packed.set(q.data.subarray(at, at + t * this.headDim), (local * g + j) * t * this.headDim);
          }
        }
      }
      queue.writeBuffer(chunk.q, 0, packed);
    }
    return {
      dims: this.dims(t, scale),
      chunks: this.chunks.map(({ slot0, slots, q: qb, k, v, out, lse }): ResidentChunk => ({ slot0, slots, q: qb, k, v, out, lse, keyStride: this.rows })),
    };
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
    this.destroyChunks();
    for (const b of [...this.staged, ...this.retainScratch]) b.destroy();
    this.staged = [];
    this.stagedRows = 0;
    this.retainScratch = [];
    this.retainRows = 0;
  }

  private destroyChunks(): void {
    for (const chunk of this.chunks) for (const b of [chunk.k, chunk.v, chunk.q, chunk.out, chunk.lse]) b.destroy();
    for (const { params } of this.appendBindings.values()) params.destroy();
    this.appendBindings.clear();
    this.clearRetainBindings();
    this.chunks = [];
  }

  /** Makes room for `rows` tokens per KV head: doubles the capacity and copies the cached rows on the GPU. */
  private reserve(rows: number): void {
    if (rows <= this.rows) return;
    let capacity = this.rows;
    while (capacity < rows) capacity *= 2;
    this.checkBinding(capacity);
    this.relayout(capacity, Math.min(this.slotsPerChunk, this.fittingSlots(capacity, 0)));
  }

  /** Moves the cache to buffers of `capacity` rows per slot and `slotsPerChunk` slots per chunk, copying the cached rows on the GPU. */
  private relayout(capacity: number, slotsPerChunk: number): void {
    const { device } = this.backend.context;
    const next = this.allocate(capacity, slotsPerChunk);
    if (this.len > 0) {
      const encoder = device.createCommandEncoder();
      for (const to of next) {
        for (let local = 0; local < to.slots; local++) {
          const slot = to.slot0 + local;
          const from = this.chunks[Math.floor(slot / this.slotsPerChunk)]!;
          const fromRow = (slot - from.slot0) * this.rows;
          const toRow = local * capacity;
          encoder.copyBufferToBuffer(from.k, fromRow * this.headDim * 4, to.k, toRow * this.headDim * 4, this.len * this.headDim * 4);
          encoder.copyBufferToBuffer(from.v, fromRow * this.valueDim * 4, to.v, toRow * this.valueDim * 4, this.len * this.valueDim * 4);
        }
      }
      device.queue.submit([encoder.finish()]);
    }
    // WebGPU keeps a destroyed buffer alive until the work already submitted with it has run.
    this.destroyChunks();
    this.chunks = next;
    this.rows = capacity;
    this.slotsPerChunk = slotsPerChunk;
  }

  /** Chunks of `slotsPerChunk` slots with `capacity` rows each (and query/output buffers for the largest step so far). */
  private allocate(capacity: number, slotsPerChunk: number): ChunkBuffers[] {
    const total = this.batch * this.kvHeads;
    const chunks: ChunkBuffers[] = [];
    for (let slot0 = 0; slot0 < total; slot0 += slotsPerChunk) {
      const slots = Math.min(slotsPerChunk, total - slot0);
      const tiny = () => this.buffer(16, STORAGE);
      const chunk: ChunkBuffers = {
        slot0,
        slots,
        k: this.buffer(slots * capacity * this.headDim * 4, STORAGE | COPY_DST | COPY_SRC),
        v: this.buffer(slots * capacity * this.valueDim * 4, STORAGE | COPY_DST | COPY_SRC),
        q: tiny(),
        out: tiny(),
        lse: tiny(),
      };
      this.sizeQueries(chunk);
      chunks.push(chunk);
    }
    return chunks;
  }

  /** (Re)allocates a chunk's query and output buffers for steps of up to `queryRows` queries. */
  private sizeQueries(chunk: ChunkBuffers): void {
    const rows = chunk.slots * this.groupSize * Math.max(1, this.queryRows);
    for (const b of [chunk.q, chunk.out, chunk.lse]) b.destroy();
    chunk.q = this.buffer(rows * this.headDim * 4, STORAGE | COPY_DST);
    chunk.out = this.buffer(rows * this.valueDim * 4, STORAGE | COPY_SRC);
    chunk.lse = this.buffer(rows * 4, STORAGE | COPY_SRC);
  }

  /** Slots per chunk whose keys (`capacity` rows each) and `extraBytesPerSlot` of scratch fit one binding. */
  private fittingSlots(capacity: number, extraBytesPerSlot: number): number {
    const perSlot = Math.max(capacity * Math.max(this.headDim, this.valueDim) * 4, extraBytesPerSlot, 1);
    return Math.max(1, Math.min(this.batch * this.kvHeads, Math.floor(this.backend.context.maxBinding / perSlot)));
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
