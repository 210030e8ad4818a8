/**
 * `@sparse-attn/backend-gpu`: the WebGPU backend (runtime-neutral; Node acquires Dawn through
 * `@sparse-attn/backend-gpu/node`). Hand-written WGSL kernels for dense and sparse attention and
 * the block pooling / scoring / top-k pipeline, plus the CPU `block-top-k` method they mirror.
 */
import type { MethodDefinition } from '@sparse-attn/core';
import { blockTopKMethod } from './block-top-k.js';

export * from './block-top-k.js';
export * from './incremental-key-pool.js';
export * from './gpu-backend.js';
export * from './gpu-device.js';
export * from './gpu-methods.js';
export * from './gpu-kv-cache.js';
export * from './gpu-window-decoder.js';
export * from './gpu-decode.js';
export * from './spare-rows.js';
export * from './gpu-decode-checks.js';
export * from './gpu-benchmarks.js';
export { timeSubmissionFloor } from './submission-floor.js';
export * from './gpu-decoder-benchmarks.js';
export { causalDims } from './gpu-load.js';
export * from './gpu-checks.js';
export * from './measure-async.js';
export * from './webgpu-flags.js';
export { GpuBufferPool } from './gpu-buffer-pool.js';
export { listTileWgsl } from './kernels/gather-lists-wgsl.js';
export { blockListPipelines, recordBlockLists, type BlockListPipelines, type BlockListRecorder, type BlockLists, type BlockListWindow } from './block-lists.js';
export { ATTENTION_PARAMS, flashAttentionWgsl, flashAttentionWorkgroupBytes, type FlashAttentionKernelOptions, type FlashAttentionListHooks } from './kernels/flash-attention-wgsl.js';
export { POOL_PARAMS, POOL_THREADS, blockPoolWgsl } from './kernels/block-pool-wgsl.js';
export { SCORE_PARAMS, blockScoreWgsl, type BlockScoring } from './kernels/block-score-wgsl.js';
export { TOP_K_PARAMS, TOP_K_THREADS, blockTopKWgsl } from './kernels/block-top-k-wgsl.js';
export { csrRowWgsl } from './kernels/csr-row-wgsl.js';
export { memoKernel, uniformStructFields } from './kernels/memo-kernel.js';
export { DECODE_DUMP_PARAMS, DECODE_PAGES_PARAMS, DECODE_PARTIAL_PARAMS, DECODE_SELECTION_PARAMS, DECODE_THREADS, decodePartialRecord, decodePartialWgsl, type DecodeKernelOptions, type DecodeKeySource } from './kernels/decode-split-k-wgsl.js';
export { DECODE_MERGE_COLUMNS, DECODE_MERGE_COPY_PARAMS, DECODE_MERGE_LANES, DECODE_MERGE_PARAMS, DECODE_MERGE_THREADS, decodeMergeGrid, decodeMergeWgsl } from './kernels/decode-merge-wgsl.js';
export { DECODE_GATHER_PARAMS, DECODE_GATHER_THREADS, decodeGatherWgsl } from './kernels/decode-gather-wgsl.js';
export { fillNormalWgsl } from './kernels/fill-normal-wgsl.js';
export {
  THREAD_COLUMNS,
  TILE_COLUMNS,
  dispatchGrid,
  forRows,
  linearWorkgroup,
  operandScratchVec4,
  scoreTileWgsl,
  tileOperands,
  vectorTileFits,
  type TileOperands,
  tileConstants,
  zeroScores,
  tileThreads,
  type TileShape,
} from './kernels/score-tile-wgsl.js';

/** Registrable (CPU) methods of this package; their GPU counterparts are in `gpuMethods`. */
export const methods: MethodDefinition[] = [blockTopKMethod as unknown as MethodDefinition];
