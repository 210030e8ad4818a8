/**
 * NSA's `gated` combination on the GPU (arXiv:2502.11089 Eq. 5; the CPU side is `nsa.ts` +
 * `nsa-gated-branches.ts`): three branches through the backend's exact sparse executor, then a
 * per-head gated sum in WGSL.
 *
 *   o^slc  the selected blocks (top-n, no window union)      → the resident's own out / lse
 *   o^win  token rows [max(0, t − w + 1), t + 1)              → a branch buffer (`runSparse` targets)
 *   o^cmp  token rows [0, NC(t)) over the pooled k̃ / ṽ        → a second resident whose k / v are the pooled windows
 *   o      g_cmp · o^cmp + g_slc · o^slc + g_win · o^win      (`gated-merge-wgsl.ts`, in place in out)
 *
 * The resident's lse is the selected branch's (a gated mixture has no single softmax). Scratch per
 * KV slot: pooled keys and values (NC · (D + Dv) floats), the window rows (Sq · w u32) and the
 * compressed rows (Sq · NC u32); never Sq × S.
 */
import { chunkKeyStride, dispatchGrid, type GpuBackend, type GpuSelection, type GpuSelectionStep, type ResidentAttention, type ResidentChunk, WEBGPU_FLAGS } from '@sparse-attn/backend-gpu';
import { ConfigError, type AttentionDims } from '@sparse-attn/core';
import type { NsaConfig } from '../nsa.js';
import type { DecoderPool } from './gpu-cached-decoder.js';
import { GATED_MERGE_PARAMS, GATED_MERGE_THREADS, gatedMergeWgsl } from './gated-merge-wgsl.js';
import { RANGE_ROWS_PARAMS, RANGE_ROWS_THREADS, rangeRowsWgsl } from './range-rows-wgsl.js';
import { WINDOW_POOL_PARAMS, WINDOW_POOL_THREADS, windowPoolWgsl } from './window-pool-wgsl.js';

const { STORAGE, COPY_DST, COPY_SRC } = WEBGPU_FLAGS;

type Buffer = ResidentChunk['out'];

/** A token-range selection step (mode 0: sliding window, mode 1: visible compressed windows). */
function rangeStep(d: AttentionDims, config: NsaConfig, mode: 0 | 1, stride: number, windows: number): GpuSelectionStep {
  return {
    layout: { kind: 'token', blockSize: 1, headScope: 'kv', rows: d.querySeq, queryBlockSize: 1 },
    stride,
    async encodeChunk(e) {
      const pipeline = await e.pipeline(rangeRowsWgsl());
      const rows = e.chunk.slots * d.querySeq;
      const [x, y] = dispatchGrid(Math.ceil((rows * stride) / RANGE_ROWS_THREADS));
      const params = e.uniform(RANGE_ROWS_PARAMS, {
        rows,
        querySeq: d.querySeq,
        queryOffset: d.queryOffset,
        stride,
        tilesX: x,
        mode,
        window: config.window,
        compressionBlock: config.compressionBlock,
        compressionStride: config.compressionStride,
        windows,
      });
      e.dispatch(pipeline, [params, e.target.bounds, e.target.indices], x, y);
    },
  };
}

/** Bytes of the largest per-KV-slot buffer the gated branches allocate (for chunking). */
export function gatedScratchBytesPerSlot(d: AttentionDims, config: NsaConfig, windows: number): number {
  return 4 * Math.max(windows * Math.max(d.headDim, d.valueDim), d.querySeq * Math.max(1, config.window), d.querySeq * Math.max(1, windows));
}

/**
 * Runs the three branches and the gated merge on a resident call, given the (non-union) selection
 * step. `gates` holds (g_cmp, g_slc, g_win) per query head. With a decoder's `pool` (the selection
 * step given the same pool), the compressed branch reads the pooled keys and values kept across
 * steps and pools only the values' new windows. The caller frees the returned selection.
 */
export async function runGatedBranches(
  backend: GpuBackend,
  resident: ResidentAttention,
  config: NsaConfig,
  selectionStep: GpuSelectionStep,
  windows: number,
  gates: Float32Array,
  pool?: DecoderPool,
): Promise<{ selection: GpuSelection; selectionMs: number; attentionMs: number }> {
  if (pool && !pool.values) throw new Error('nsa: a gated decoder needs pooled values');
  const d = resident.dims;
  const { device } = backend.context;
  const perSlot = gatedScratchBytesPerSlot(d, config, windows);
  const widest = Math.max(...resident.chunks.map((c) => c.slots)) * perSlot;
  if (widest > backend.context.maxBinding) {
    throw new ConfigError(
      `nsa: the gated branches need ${widest} bytes per chunk (${perSlot} per KV slot: pooled k/v, window and compressed rows), above the device's largest binding (${backend.context.maxBinding}); allocate the resident with extraBytesPerSlot = nsaPlan(...).scratchBytesPerSlot`,
    );
  }
  const owned: Buffer[] = [];
  const make = (bytes: number, usage = STORAGE | COPY_SRC): Buffer => {
    const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 4) * 4), usage });
    owned.push(buffer);
    return buffer;
  };
  const branchSelections: GpuSelection[] = [];
  const { selection, ms: selectionMs } = await backend.runSelection(resident, selectionStep);
  try {
    const pooledRows = Math.max(1, windows);
    // A decoder's pool holds the keys' windows (pooled by the selection step just run) and the
    // values' windows below pool.first: only the values' new windows are pooled here.
    const pooledK = pool ? pool.means : resident.chunks.map((c) => make(4 * c.slots * pooledRows * d.headDim));
    const pooledV = pool ? pool.values! : resident.chunks.map((c) => make(4 * c.slots * pooledRows * d.valueDim));
    const first = Math.min(pool?.first ?? 0, windows);
    const pooling = await backend.runKernels(resident, async (e) => {
      if (windows === first) return;
      const pipeline = await e.pipeline(windowPoolWgsl({ bounds: false }));
      const tensors = pool ? ([[e.chunk.v, pooledV[e.index]!, d.valueDim]] as const) : ([[e.chunk.k, pooledK[e.index]!, d.headDim], [e.chunk.v, pooledV[e.index]!, d.valueDim]] as const);
      for (const [src, dst, dim] of tensors) {
        const [x, y] = dispatchGrid(Math.ceil((e.chunk.slots * (windows - first) * dim) / WINDOW_POOL_THREADS));
        const params = e.uniform(WINDOW_POOL_PARAMS, { keyStride: chunkKeyStride(e.chunk, d), length: config.compressionBlock, stride: config.compressionStride, windows: windows - first, first, slots: e.chunk.slots, tilesX: x, dim });
        e.dispatch(pipeline, [params, src, dst], x, y);
      }
    });
    const compressed: ResidentAttention = {
      dims: { ...d, keySeq: pooledRows, causal: false },
      chunks: resident.chunks.map((c, i) => ({
        slot0: c.slot0,
        slots: c.slots,
        q: c.q,
        k: pooledK[i]!,
        v: pooledV[i]!,
        out: make(4 * c.slots * d.groupSize * d.querySeq * d.valueDim),
        lse: make(4 * c.slots * d.groupSize * d.querySeq),
        // The pooled windows are compact, `[slot][window]` (whatever the resident's keyStride).
        keyStride: pooledRows,
      })),
    };
    const windowRows = await backend.runSelection(resident, rangeStep(d, config, 0, Math.max(1, config.window), windows));
    branchSelections.push(windowRows.selection);
    const compressedRows = await backend.runSelection(compressed, rangeStep(d, config, 1, pooledRows, windows));
    branchSelections.push(compressedRows.selection);
    const windowTargets = resident.chunks.map((c) => ({ out: make(4 * c.slots * d.groupSize * d.querySeq * d.valueDim), lse: make(4 * c.slots * d.groupSize * d.querySeq) }));
    const selected = await backend.runSparse(resident, selection);
    const windowMs = await backend.runSparse(resident, windowRows.selection, windowTargets);
    const compressedMs = await backend.runSparse(compressed, compressedRows.selection);
    const gateBuffer = make(4 * gates.length, STORAGE | COPY_DST);
    device.queue.writeBuffer(gateBuffer, 0, gates);
    const merge = await backend.runKernels(resident, async (e) => {
      const pipeline = await e.pipeline(gatedMergeWgsl());
      const rowFloats = d.querySeq * d.valueDim;
      const count = e.chunk.slots * d.groupSize * rowFloats;
      const [x, y] = dispatchGrid(Math.ceil(count / GATED_MERGE_THREADS));
      const params = e.uniform(GATED_MERGE_PARAMS, { count, rowFloats, querySlot0: e.chunk.slot0 * d.groupSize, queryHeads: d.queryHeads, tilesX: x });
      e.dispatch(pipeline, [params, gateBuffer, compressed.chunks[e.index]!.out, windowTargets[e.index]!.out, e.chunk.out], x, y);
    });
    return {
      selection,
      selectionMs: selectionMs + pooling + windowRows.ms + compressedRows.ms,
      attentionMs: selected + windowMs + compressedMs + merge,
    };
  } catch (error) {
    backend.releaseSelection(selection);
    throw error;
  } finally {
    for (const s of branchSelections) backend.releaseSelection(s);
    backend.discard(...owned);
  }
}
