/**
 * Decode on the GPU: the split-K dense decode kernel over a resident call (a {@link GpuKVCache}
 * view or any resident call), the dense and block top-k decoders whose KV cache stays on the
 * device, and {@link lastQueryView} (one decode step of the last query over a prefill-shaped
 * resident call, for decode benchmarks).
 */
import {
  assertFinite,
  densePairCount,
  sparseStats,
  validateDecoderStep,
  type AttentionDims,
  type AttentionInput,
  type AttentionResult,
  type DecoderShape,
  type Tensor,
} from '@sparse-attn/core';
import type { BlockTopKConfig } from './block-top-k.js';
import { blockScratchBytesPerSlot, blockTopKDiagnostics, chunkKeyStride, selectionResult, type BlockPoolArray, type GpuBackend, type ResidentAttention, type ResidentChunk } from './gpu-backend.js';
import { GpuKVCache } from './gpu-kv-cache.js';
import type { GpuAttentionDecoder, GpuDecoderOptions } from './gpu-methods.js';
import { cacheStoreLifecycle, cacheWindowStore, type GpuWindowStore } from './gpu-window-decoder.js';
import { DECODE_GATHER_PARAMS, DECODE_GATHER_THREADS, decodeGatherWgsl } from './kernels/decode-gather-wgsl.js';
import { DECODE_MERGE_PARAMS, decodeMergeGrid, decodeMergeWgsl } from './kernels/decode-merge-wgsl.js';
import { DECODE_PARTIAL_PARAMS, decodePartialRecord, decodePartialWgsl, SPLIT_K_MAX_QUERIES, splitKPartitions, type SplitKPlan } from './kernels/decode-split-k-wgsl.js';
import { dispatchGrid } from './kernels/score-tile-wgsl.js';
import { WEBGPU_FLAGS } from './webgpu-flags.js';

const { STORAGE, COPY_SRC } = WEBGPU_FLAGS;

export { SPLIT_K_MAX_QUERIES, splitKPartitions, type SplitKPlan } from './kernels/decode-split-k-wgsl.js';

/** The key partitions of a split-K decode call: enough workgroups to fill a large GPU. */
export function splitKPlan(d: Pick<AttentionDims, 'batch' | 'queryHeads' | 'querySeq' | 'keySeq'>): SplitKPlan {
  return splitKPartitions(d.batch * d.queryHeads * d.querySeq, d.keySeq);
}

/**
 * Scratch bytes per KV slot of {@link runDecodeAttention} (the partial records), at most: each
 * chunk's keys are split for its own rows, so a chunk of one KV slot has the most partitions.
 */
export function decodeScratchBytesPerSlot(d: AttentionDims): number {
  return 4 * d.groupSize * d.querySeq * splitKPartitions(d.groupSize * d.querySeq, d.keySeq).partitions * decodePartialRecord(d.valueDim);
}

/**
 * Dense attention of a resident call's queries (typically 1–16 per head) by split-K decoding
 * (flash-decoding): every chunk's keys are split into partitions scored by separate workgroups
 * (`decode-split-k-wgsl.ts`), then merged (`decode-merge-wgsl.ts`) into the chunk's `out` and
 * `lse`. Causal or not, GQA, any head dims. Resolves with the GPU time (see `runKernels`).
 */
export async function runDecodeAttention(backend: GpuBackend, resident: ResidentAttention): Promise<number> {
  const d = resident.dims;
  const record = decodePartialRecord(d.valueDim);
  return backend.runKernels(resident, async (encoder) => {
    const [partialKernel, merge] = await Promise.all([encoder.pipeline(decodePartialWgsl({ headDim: d.headDim, valueDim: d.valueDim })), encoder.pipeline(decodeMergeWgsl(d.valueDim))]);
    const chunk = encoder.chunk;
    const slots = chunk.slots * d.groupSize;
    const rows = slots * d.querySeq;
    // Partitions for this chunk's rows: the dispatches of a pass ran one after another on the H100,
    // so each has to fill the GPU on its own. A decoder's cache view has one chunk per KV slot: at
    // 64k with 32 heads, partitions planned for the whole call made 32 dispatches of 128
    // workgroups, 13.8 ms of GPU time; planned per chunk, 3.7 ms (one 32-slot chunk: 0.9 ms).
    const plan = splitKPartitions(rows, d.keySeq);
    const partial = encoder.scratch(rows * plan.partitions * record * 4);
    const [px, py] = dispatchGrid(rows * plan.partitions);
    const params = encoder.uniform(DECODE_PARTIAL_PARAMS, {
      querySeq: d.querySeq,
      keySeq: d.keySeq,
      queryOffset: d.queryOffset,
      causal: d.causal ? 1 : 0,
      slots,
      groupSize: d.groupSize,
      partitions: plan.partitions,
      partitionSize: plan.partitionSize,
      tilesX: px,
      scale: d.scale,
      keyStride: chunkKeyStride(chunk, d),
    });
    encoder.dispatch(partialKernel, [params, chunk.q, chunk.k, chunk.v, partial], px, py);
    const [mx, my] = decodeMergeGrid(rows, d.valueDim);
    const mergeParams = encoder.uniform(DECODE_MERGE_PARAMS, { rows, partitions: plan.partitions, tilesX: mx });
    encoder.dispatch(merge, [mergeParams, partial, chunk.out, chunk.lse], mx, my);
  });
}

/** A resident call with its own query/output buffers over another call's keys and values. */
export interface ResidentView {
  readonly view: ResidentAttention;
  /** Frees the view's own buffers (not the keys and values it shares). */
  release(): void;
}

/**
 * One decode step's call over a prefill-shaped resident call: the last query row of every head
 * (gathered on the GPU) over all `keySeq` resident keys, with new `out`/`lse` buffers. What the
 * decode-time methods' `runResident` measure: nothing is read back, and the scratch is one
 * query row and one output row per query head.
 */
export async function lastQueryView(backend: GpuBackend, resident: ResidentAttention): Promise<ResidentView> {
  const d = resident.dims;
  const { device } = backend.context;
  const buffer = (bytes: number, usage: number) => device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
  const chunks: ResidentChunk[] = resident.chunks.map((chunk) => {
    const slots = chunk.slots * d.groupSize;
    return {
      ...chunk,
      q: buffer(slots * d.headDim * 4, STORAGE),
      out: buffer(slots * d.valueDim * 4, STORAGE | COPY_SRC),
      lse: buffer(slots * 4, STORAGE | COPY_SRC),
    };
  });
  // Freed once the work recorded with them has run (inside `backend.oneSubmission`, after its submission).
  const release = () => {
    for (const c of chunks) backend.discard(c.q, c.out, c.lse);
  };
  try {
    await backend.runKernels(resident, async (encoder) => {
      const gather = await encoder.pipeline(decodeGatherWgsl());
      const count = encoder.chunk.slots * d.groupSize * d.headDim;
      const [x, y] = dispatchGrid(Math.ceil(count / DECODE_GATHER_THREADS));
      const params = encoder.uniform(DECODE_GATHER_PARAMS, { count, querySeq: d.querySeq, dim: d.headDim, tilesX: x });
      encoder.dispatch(gather, [params, encoder.chunk.q, chunks[encoder.index]!.q], x, y);
    });
  } catch (error) {
    release();
    throw error;
  }
  const dims: AttentionDims = {
    ...d,
    querySeq: 1,
    queryOffset: d.keySeq - 1,
    causal: true,
    qDims: { ...d.qDims, seq: 1, capacity: 1 },
  };
  return { view: { dims, chunks }, release };
}

/**
 * Dense attention of a step's queries over every key of a resident call (a decoder's cache view):
 * split-K for up to {@link SPLIT_K_MAX_QUERIES} queries a head, the tiled kernel above, and the
 * readback of output and lse, as one submission (one round trip to the GPU; timed as a whole).
 */
export async function denseStep(backend: GpuBackend, view: ResidentAttention): Promise<AttentionResult & { lse: Float32Array }> {
  const d = view.dims;
  const { value, ms } = await backend.oneSubmission(async () => {
    await (d.querySeq <= SPLIT_K_MAX_QUERIES ? runDecodeAttention(backend, view) : backend.runDense(view));
    return backend.readOutput(view);
  });
  return { output: value.output, lse: value.lse, stats: sparseStats(d, densePairCount(d), true, 0, ms), backend: backend.info };
}

/** Scratch per KV slot of {@link denseStep} (split-K's partials; none for the tiled kernel). */
export function denseStepScratchBytesPerSlot(d: AttentionDims): number {
  return d.querySeq <= SPLIT_K_MAX_QUERIES ? decodeScratchBytesPerSlot(d) : 0;
}

/** The GPU KV cache a decoder of `shape` needs (`options.initialCapacity` rows per KV head up front). */
export function decoderCache(backend: GpuBackend, shape: DecoderShape, options: GpuDecoderOptions = {}): GpuKVCache {
  return new GpuKVCache(backend, { batch: shape.batch, kvHeads: shape.kvHeads, queryHeads: shape.queryHeads, headDim: shape.headDim, valueDim: shape.valueDim ?? shape.headDim, ...(options.initialCapacity !== undefined ? { initialCapacity: options.initialCapacity } : {}) });
}

/**
 * The dense decoder on the GPU: K/V in a {@link GpuKVCache} (each step uploads only its T new
 * tokens), steps of up to {@link SPLIT_K_MAX_QUERIES} queries through the split-K decode kernel,
 * longer ones through the tiled prefill kernel. Equals core's dense decoder (and
 * `referenceAttention` over the cache) to float32 rounding; results carry `lse`.
 */
export function gpuDenseDecoder(backend: GpuBackend, shape: DecoderShape, options: GpuDecoderOptions = {}): GpuAttentionDecoder {
  const cache = decoderCache(backend, shape, options);
  return {
    get length() {
      return cache.length;
    },
    async step(input: AttentionInput) {
      const step = validateDecoderStep(shape, input, cache.length);
      cache.append(input.k, input.v);
      return denseStep(backend, cache.attend(input.q, shape.scale, denseStepScratchBytesPerSlot(cache.dims(step.querySeq))));
    },
    appendContext: (k, v) => appendChecked(cache, k, v),
    reset: () => cache.reset(),
    destroy: () => cache.destroy(),
  };
}

/** A decoder's `appendContext`: finite values (the cache checks the shapes), then the cache takes the rows. */
export function appendChecked(cache: GpuKVCache, k: Tensor, v: Tensor): void {
  assertFinite(k, 'k');
  assertFinite(v, 'v');
  cache.append(k, v);
}

/**
 * The block top-k decoder on the GPU: K/V in a {@link GpuKVCache} and the pooled blocks (mean,
 * max, min per channel) in a {@link GpuWindowStore}, as the CPU decoder keeps its pool. A step
 * pools only the blocks completed since the last step and the incomplete last block (rewritten
 * every step; the store keeps the complete ones), then scores every block, selects and runs the
 * sparse executor (`backend.runBlockTopK` on the cache view with the kept blocks; the WGSL pooling
 * kernel: gpu.js would compile a kernel per step, it inlines the growing key count). Same pooled
 * values as a prefill's (the same kernel over the same keys), same blocks as the CPU decoder.
 */
export function gpuBlockTopKDecoder(backend: GpuBackend, shape: DecoderShape, config: BlockTopKConfig, options: GpuDecoderOptions = {}): GpuAttentionDecoder {
  const cache = decoderCache(backend, shape, options);
  let store: GpuWindowStore<BlockPoolArray>;
  try {
    store = cacheWindowStore(backend, cache, { mean: shape.headDim, max: shape.headDim, min: shape.headDim }, Math.ceil(cache.capacity / config.blockSize));
  } catch (error) {
    cache.destroy();
    throw error;
  }
  return {
    get length() {
      return cache.length;
    },
    async step(input: AttentionInput) {
      const step = validateDecoderStep(shape, input, cache.length);
      const keySeq = cache.length + step.querySeq;
      // The layout holds every block the step scores (the last one may be incomplete); the store keeps the complete ones.
      const blocks = Math.ceil(keySeq / config.blockSize);
      store.check(blocks, cache.chunkSlots);
      cache.append(input.k, input.v);
      const view = cache.attend(input.q, shape.scale, blockScratchBytesPerSlot(cache.dims(step.querySeq), config));
      const pooled = store.prepare(blocks, view.chunks);
      // Pooling, scoring, selection, attention and one readback as one submission.
      const { value, ms } = await backend.oneSubmission(() => backend.runBlockTopK(view, config, { pooled, readOutput: true }));
      store.commit(Math.floor(keySeq / config.blockSize));
      const { selection, read } = value;
      return selectionResult(view.dims, read!, selection, { selectionMs: 0, attentionMs: ms }, backend.info, blockTopKDiagnostics(selection, view.dims, config));
    },
    appendContext: (k, v) => appendChecked(cache, k, v),
    ...cacheStoreLifecycle(cache, store),
  };
}
