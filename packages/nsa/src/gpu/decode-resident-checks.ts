/**
 * GPU checks of the nsa family's `decodeResident` (decode steps with the decoder's kept pooled
 * windows, what the benchmark's decode rows time), through backend-gpu's `decodeResidentCheck`:
 * two steps of the one-query view of a call's last position equal the CPU method's prefill row
 * (lse too, except NSA's 'gated', whose output mixes three softmaxes), with several complete
 * windows, a partial last window, GQA and batch 2.
 */
import { decodeResidentCheck, type CheckShape, type GpuCheck, type GpuMethodDefinition } from '@sparse-attn/backend-gpu';
import { gpuMobaMethod } from './moba-gpu.js';
import { gpuNsaMethod } from './nsa-gpu.js';
import { gpuHierarchicalIndexerMethod } from './indexer-gpu.js';

const cases: readonly { definition: GpuMethodDefinition; config: Record<string, unknown>; shape: CheckShape }[] = [
  { definition: gpuMobaMethod, config: { blockSize: 16, topK: 3 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 203, headDim: 32 } },
  { definition: gpuNsaMethod, config: { compressionBlock: 16, compressionStride: 8, selectionBlock: 16, selectedBlocks: 4, window: 32 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 190, headDim: 32 } },
  { definition: gpuNsaMethod, config: { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 3, window: 24, compressionScore: 'quest' }, shape: { batch: 2, queryHeads: 2, kvHeads: 1, seq: 150, headDim: 16 } },
  { definition: gpuNsaMethod, config: { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 3, window: 24, combine: 'gated' }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 170, headDim: 16 } },
  { definition: gpuHierarchicalIndexerMethod, config: { blockSize: 16 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 230, headDim: 32 } },
  // Head dims that are not a multiple of 4: the decode-shaped kernels' scalar paths.
  { definition: gpuMobaMethod, config: { blockSize: 16, topK: 3 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 18 } },
  { definition: gpuNsaMethod, config: { compressionBlock: 16, compressionStride: 8, selectionBlock: 16, selectedBlocks: 4, window: 32 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 190, headDim: 18 } },
  { definition: gpuHierarchicalIndexerMethod, config: { blockSize: 16 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 230, headDim: 18 } },
];

/** One check per case: two kept-state decode steps equal the CPU prefill's last row. */
export const decodeResidentChecks: readonly GpuCheck[] = cases.map(({ definition, config, shape }, i) => decodeResidentCheck(definition, config, shape, 300 + i, config['combine'] !== 'gated'));
