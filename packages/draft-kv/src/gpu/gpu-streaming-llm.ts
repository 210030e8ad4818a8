/**
 * StreamingLLM (`streaming-llm`, sinks + recent) on the GPU. The CPU method evicts per query
 * through `EvictionTracker`; its kept set has a closed form (query at position p keeps
 * [0, sinks) ∪ [max(sinks, p + 1 − recent), p + 1)), so no selection has to be computed:
 *
 * - calls the backend runs through its row executors (prefill) take one pass of the flash kernel
 *   over each 64-query tile's sinks and the band of its rows' windows, masked per row
 *   (`sink-window-attention-wgsl.ts`);
 * - calls it gives to its split-K executor (decode steps, ≤ 16 queries) write the kept set as two
 *   compact selections (`sink-recent-rows-wgsl.ts`: one row per 64-query block plus a band of
 *   < 64 entries per query), attend each (split-K spreads a step's few queries over many
 *   workgroups) and merge the two by log-sum-exp.
 *
 * The prefill's reported selection is the closed form built on the host, one row per query (core's
 * layout of the CPU method), compared entry for entry with the CPU tracker by the checks.
 */
import {
  ConfigError,
  SelectionBuilder,
  densePairCount,
  parseConfig,
  validateAttentionInput,
  type AttentionDims,
  type AttentionInput,
  type DecoderShape,
  type MethodDefinition,
  type Selection,
  type SparseAttentionResult,
  type Tensor,
} from '@sparse-attn/core';
import { chunkKeyStride, dispatchGrid, residentCall, selectionResult, type GpuBackend, type GpuDecoderOptions, type GpuMethodDefinition, type GpuSelection, type GpuSelectionStep, type GpuTimings, type ResidentAttention } from '@sparse-attn/backend-gpu';
import { streamingLlmMethod } from '../eviction-methods.js';
import { deviceCacheDecoder, type GpuEvictingDecoder } from './gpu-compressing-decoder.js';
import { MERGE_PARAMS, MERGE_THREADS, mergeAttentionWgsl } from './merge-attention-wgsl.js';
import { SINK_RECENT_BLOCK, SINK_RECENT_PARAMS, SINK_RECENT_THREADS, sinkRecentRowsWgsl } from './sink-recent-rows-wgsl.js';
import { SINK_WINDOW_PARAMS, sinkWindowHooks } from './sink-window-attention-wgsl.js';

/** StreamingLLM's budget: the first `sinks` tokens and the last `recent`. */
export interface SinkRecentPolicy {
  readonly sinks: number;
  readonly recent: number;
}

/** The first kept entry of the recent window of a query at position p. */
function lowest(p: number, policy: SinkRecentPolicy): number {
  return Math.max(policy.sinks, p + 1 - policy.recent);
}

function rowsStep(policy: SinkRecentPolicy, d: AttentionDims, band: boolean): GpuSelectionStep {
  const rows = band ? d.querySeq : Math.ceil(d.querySeq / SINK_RECENT_BLOCK);
  const stride = band ? SINK_RECENT_BLOCK - 1 : Math.min(policy.sinks, d.keySeq) + Math.min(policy.recent, d.keySeq);
  return {
    layout: { kind: 'token', blockSize: 1, headScope: 'kv', rows, queryBlockSize: band ? 1 : SINK_RECENT_BLOCK },
    stride,
    async encodeChunk(e) {
      const pipeline = await e.pipeline(sinkRecentRowsWgsl());
      const [x, y] = dispatchGrid(Math.ceil((e.chunk.slots * rows) / SINK_RECENT_THREADS));
      const params = e.uniform(SINK_RECENT_PARAMS, { querySeq: d.querySeq, keySeq: d.keySeq, queryOffset: d.queryOffset, slots: e.chunk.slots, sinks: policy.sinks, recent: policy.recent, rows, stride, band: band ? 1 : 0, tilesX: x });
      e.dispatch(pipeline, [params, e.target.bounds, e.target.indices], x, y);
    },
  };
}

/** Bytes per KV slot of the larger of the two selections (for chunking an upload). */
export function sinkRecentBytesPerSlot(policy: SinkRecentPolicy, d: Pick<AttentionDims, 'querySeq' | 'keySeq'>): number {
  const blocks = Math.ceil(d.querySeq / SINK_RECENT_BLOCK) * (Math.min(policy.sinks, d.keySeq) + Math.min(policy.recent, d.keySeq));
  return 4 * Math.max(blocks, d.querySeq * (SINK_RECENT_BLOCK - 1));
}

/**
 * The split-K path: both selections, both attentions and the merge on a resident call; the output
 * lands in the chunks' `out`/`lse`. The caller releases the two selections.
 */
async function runSinkRecent(backend: GpuBackend, resident: ResidentAttention, policy: SinkRecentPolicy): Promise<GpuTimings & { blocks: GpuSelection; bands: GpuSelection }> {
  const d = resident.dims;
  const blocks = await backend.runSelection(resident, rowsStep(policy, d, false));
  let bands: { selection: GpuSelection; ms: number };
  try {
    bands = await backend.runSelection(resident, rowsStep(policy, d, true));
  } catch (error) {
    backend.releaseSelection(blocks.selection);
    throw error;
  }
  // The band's attention needs output buffers that outlive one pass (the backend's scratch does
  // not): from a pool the backend keeps for the next call (allocating and first touching the
  // 1 GiB of them per call cost ~25–30 ms at 64k MHA on the H100). The band attention writes
  // every row of them (one band row per query; an empty row gets lse −∞), so their old contents
  // are never read.
  const pool = backend.borrowPool(BAND_POOL);
  const targets = resident.chunks.map((c, i) => ({
    out: pool.take(`out:${i}`, c.slots * d.groupSize * d.querySeq * d.valueDim * 4),
    lse: pool.take(`lse:${i}`, c.slots * d.groupSize * d.querySeq * 4),
  }));
  try {
    const blockMs = await backend.runSparse(resident, blocks.selection);
    const bandMs = await backend.runSparse(resident, bands.selection, targets);
    const mergeMs = await backend.runKernels(resident, async (e) => {
      const rows = e.chunk.slots * d.groupSize * d.querySeq;
      const [x, y] = dispatchGrid(Math.ceil(rows / MERGE_THREADS));
      const t = targets[e.index]!;
      e.dispatch(await e.pipeline(mergeAttentionWgsl()), [e.uniform(MERGE_PARAMS, { rows, valueDim: d.valueDim, tilesX: x }), e.chunk.out, e.chunk.lse, t.out, t.lse], x, y);
    });
    return { selectionMs: blocks.ms + bands.ms, attentionMs: blockMs + bandMs + mergeMs, blocks: blocks.selection, bands: bands.selection };
  } catch (error) {
    backend.releaseSelection(blocks.selection);
    backend.releaseSelection(bands.selection);
    throw error;
  } finally {
    backend.returnPool(BAND_POOL, pool);
  }
}

/** The backend pool the band outputs come from. */
const BAND_POOL = 'streaming-llm:band';

/** The row pass: sinks and window band per 64-query tile, one flash-kernel pass, no selection (see the header). */
async function runSinkWindow(backend: GpuBackend, resident: ResidentAttention, policy: SinkRecentPolicy): Promise<GpuTimings> {
  const d = resident.dims;
  const { code, tile } = backend.listAttentionKernel(d, sinkWindowHooks());
  const attentionMs = await backend.runKernels(resident, async (e) => {
    const slots = e.chunk.slots * d.groupSize;
    const [x, y] = dispatchGrid(slots * Math.ceil(d.querySeq / tile.rows));
    const values = { querySeq: d.querySeq, keySeq: d.keySeq, keyStride: chunkKeyStride(e.chunk, d), queryOffset: d.queryOffset, causal: 1, groupSize: d.groupSize, slots, sinks: policy.sinks, recent: policy.recent, scale: d.scale, tilesX: x };
    e.dispatch(await e.pipeline(code), [e.uniform(SINK_WINDOW_PARAMS, values, ['scale']), e.chunk.q, e.chunk.k, e.chunk.v, e.chunk.out, e.chunk.lse], x, y);
  });
  return { selectionMs: 0, attentionMs };
}

/** StreamingLLM's attention on a resident call by the path the backend's executor choice implies (see the header). */
async function runStreaming(backend: GpuBackend, resident: ResidentAttention, policy: SinkRecentPolicy): Promise<GpuTimings> {
  const d = resident.dims;
  const layout = { kind: 'token', blockSize: 1, headScope: 'kv', rows: d.querySeq, queryBlockSize: 1 } as const;
  if (backend.executorFor(layout, d) !== 'split-k') return runSinkWindow(backend, resident, policy);
  const run = await runSinkRecent(backend, resident, policy);
  backend.releaseSelection(run.blocks);
  backend.releaseSelection(run.bands);
  return { selectionMs: run.selectionMs, attentionMs: run.attentionMs };
}

/** The kept set of every query, one row per (KV slot, query) in core's layout: what the CPU tracker reports. */
function sinkRecentSelection(policy: SinkRecentPolicy, d: AttentionDims): Selection {
  // Sized exactly and filled from a typed row (a decode step's 32 rows of 1 024 entries took ~0.6 ms through a JS array).
  const rowLength = (p: number) => Math.min(policy.sinks, p + 1) + Math.max(0, p + 1 - lowest(p, policy));
  let perSlot = 0;
  let widest = 0;
  for (let i = 0; i < d.querySeq; i++) {
    const length = rowLength(d.queryOffset + i);
    perSlot += length;
    widest = Math.max(widest, length);
  }
  const builder = new SelectionBuilder({ kind: 'token', headScope: 'kv', batch: d.batch, heads: d.kvHeads, rows: d.querySeq, keySeq: d.keySeq }, d.batch * d.kvHeads * perSlot);
  const row = new Int32Array(Math.max(1, widest));
  for (let slot = 0; slot < d.batch * d.kvHeads; slot++) {
    for (let i = 0; i < d.querySeq; i++) {
      const p = d.queryOffset + i;
      let n = 0;
      for (let j = 0; j < Math.min(policy.sinks, p + 1); j++) row[n++] = j;
      for (let j = lowest(p, policy); j <= p; j++) row[n++] = j;
      builder.pushRow(row, n);
    }
  }
  return builder.finish();
}

/** The CPU method's non-causal error, thrown before any GPU work. */
function checkCausal(input: AttentionInput): AttentionDims {
  const d = validateAttentionInput(input);
  if (!d.causal) throw new ConfigError(`${streamingLlmMethod.id} evicts as tokens arrive: causal: false is not supported`);
  return d;
}

/** StreamingLLM's prefill on the GPU (selection, attention and merge), with the per-query selection read back. */
export async function streamingAttentionGpu(backend: GpuBackend, input: AttentionInput, policy: SinkRecentPolicy): Promise<SparseAttentionResult> {
  const d = checkCausal(input);
  const resident = backend.upload(input, d, sinkRecentBytesPerSlot(policy, d));
  try {
    const run = await runStreaming(backend, resident, policy);
    return streamingResult(backend, policy, d, await backend.readOutput(resident), run);
  } finally {
    backend.release(resident);
  }
}

/** The result of StreamingLLM's attention on a call: its kept set per query (closed form), stats and the kept entries per head. */
function streamingResult(backend: GpuBackend, policy: SinkRecentPolicy, d: AttentionDims, read: { output: Tensor; lse: Float32Array }, timings: GpuTimings): SparseAttentionResult {
  return selectionResult(d, read, sinkRecentSelection(policy, d), timings, backend.info, { keptPerHead: Math.min(policy.sinks + policy.recent, d.keySeq) }, sinkRecentPairs(policy, d));
}

/** Causal pairs StreamingLLM scores, from the closed form (no selection read back). */
export function sinkRecentPairs(policy: SinkRecentPolicy, d: AttentionDims): number {
  let pairs = 0;
  for (let i = 0; i < d.querySeq; i++) {
    const p = d.queryOffset + i;
    pairs += Math.min(policy.sinks, p + 1) + Math.max(0, p + 1 - lowest(p, policy));
  }
  return pairs * d.batch * d.queryHeads;
}

/**
 * The CPU decoder of `streaming-llm` on the GPU: the device cache (`GpuKVCache`) holds the sinks
 * and the most recent entries in order, so in cache indices a step's queries keep the same closed
 * form; after the step the cache keeps `[0, sinks) ∪ [L − recent, L)` once it holds more than
 * `sinks + recent` entries — the trackers' final slots — with `GpuKVCache.retain` (on the GPU).
 * The kept set does not depend on the queries, so `appendContext` takes a prompt's keys and values
 * without attending them and leaves the cache a step over them would.
 */
export function createGpuStreamingDecoder(backend: GpuBackend, shape: DecoderShape, policy: SinkRecentPolicy, options: GpuDecoderOptions = {}): GpuEvictingDecoder {
  const capacity = policy.sinks + policy.recent;
  // The sinks and the most recent entries, once the cache holds more than both.
  const retained = (entries: number) => {
    if (entries <= capacity) return undefined;
    const keep = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) keep[i] = i < policy.sinks ? i : entries - capacity + i;
    return keep;
  };
  return deviceCacheDecoder(
    backend,
    shape,
    {
      scratchBytesPerSlot: (d) => sinkRecentBytesPerSlot(policy, d),
      async attend(view) {
        const d = view.dims;
        const { value, ms } = await backend.oneSubmission(async () => {
          await runStreaming(backend, view, policy);
          return backend.readOutput(view);
        });
        const result = streamingResult(backend, policy, d, value, { selectionMs: 0, attentionMs: ms });
        const keep = retained(d.keySeq);
        return keep ? { result, keep } : { result };
      },
      retained,
    },
    options,
  );
}

/** StreamingLLM on the GPU. */
export const gpuStreamingLlmMethod: GpuMethodDefinition = {
  id: streamingLlmMethod.id,
  family: streamingLlmMethod.family,
  cpu: streamingLlmMethod as unknown as MethodDefinition,
  create(backend, config) {
    const policy: SinkRecentPolicy = parseConfig(streamingLlmMethod.id, streamingLlmMethod.configSchema, config);
    return {
      methodId: streamingLlmMethod.id,
      prefill: (input) => streamingAttentionGpu(backend, input, policy),
      createDecoder: (shape, options) => createGpuStreamingDecoder(backend, shape, policy, options),
      async runResident(resident, options) {
        const d = resident.dims;
        if (!d.causal) throw new ConfigError(`${streamingLlmMethod.id} evicts as tokens arrive: causal: false is not supported`);
        // The density is known in closed form (no readback): reported whatever the options.
        const run = await residentCall(backend, options, () => runStreaming(backend, resident, policy));
        return { ...run, density: sinkRecentPairs(policy, d) / densePairCount(d) };
      },
    };
  },
};
