/**
 * `hip` on the GPU: the hierarchical key search ({@link hipSearchWgsl}, one workgroup per
 * (query head, query block)) writes sinks ∪ searched chunks ∪ window as token CSR rows, and
 * backend-gpu's exact sparse executor attends to them, on resident buffers; the `bound`
 * representative first builds the range-bound tree on the GPU ({@link hipBoundTreeWgsl}). Same
 * selection as the CPU method up to float32 rounding of near-tied scores.
 */
import {
  ConfigError,
  SelectionBuilder,
  densePairCount,
  parseConfig,
  validateAttentionInput,
  type AttentionDims,
  type AttentionInput,
  type AttentionResult,
  type DecoderShape,
  type Selection,
} from '@sparse-attn/core';
import {
  chunkKeyStride,
  createGpuWindowDecoder,
  NO_WINDOWS,
  dispatchGrid,
  selectThenAttend,
  type GpuAttentionMethod,
  type GpuDecoderOptions,
  type GpuWindowDecoder,
  type WindowStepPlan,
  type GpuBackend,
  type GpuMethodDefinition,
  type GpuSelection,
  type GpuSelectionStep,
  type ResidentAttention,
  residentCall,
  type ResidentRunOptions,
} from '@sparse-attn/backend-gpu';
import { hipConfigSchema, hipMethod, type HipConfig } from '../hip-attention.js';
import { HIP_BOUND_TREE_PARAMS, HIP_BOUND_TREE_THREADS, boundTreeLevels, hipBoundTreeWgsl } from './hip-bound-tree-wgsl.js';
import { HIP_SEARCH_PARAMS, hipSearchWgsl, hipSearchWorkgroupBytes } from './hip-search-wgsl.js';
import { requireCausal, withGpuSelection } from './gpu-helpers.js';
import { validateContext } from '../cached-decoder.js';

/** Chunks kept per level of the tree search. */
function keepOf(config: HipConfig): number {
  return Math.ceil(config.topK / config.chunkSize);
}

/** Queries that score the tree per query block. */
function scoringQueriesOf(config: HipConfig): number {
  return Math.ceil(config.queryBlockSize / config.queryStride);
}

/** Largest number of tokens of one selection row. */
export function hipRowStride(config: HipConfig): number {
  return config.sinkTokens + Math.max(config.topK, keepOf(config) * config.chunkSize) + config.windowTokens + config.queryBlockSize;
}

/**
 * Levels (node counts, from level 0) of the range-bound tree the search can reach: a search over
 * keys below `keySeq` starts at level ⌈log2 max(2, chunks)⌉ and scores its children, so levels
 * 0 … that − 1 are built.
 */
export function hipTreeLevels(config: Pick<HipConfig, 'chunkSize'>, keySeq: number): number[] {
  const chunks = Math.max(1, Math.ceil(keySeq / config.chunkSize));
  return boundTreeLevels(chunks, Math.ceil(Math.log2(Math.max(2, chunks))));
}

/** Bytes per KV slot of the GPU range-bound tree (`bound` representative; 0 for `center`). */
export function hipTreeBytesPerSlot(config: Pick<HipConfig, 'chunkSize' | 'representative'>, d: Pick<AttentionDims, 'keySeq' | 'headDim'>): number {
  if (config.representative !== 'bound') return 0;
  return hipTreeLevels(config, d.keySeq).reduce((a, b) => a + b, 0) * 2 * d.headDim * 4;
}

/** Throws the configs the GPU search does not run (before any GPU work). */
function checkRunsOnGpu(backend: GpuBackend, config: HipConfig, headDim?: number): void {
  const bytes = hipSearchWorkgroupBytes({ keep: keepOf(config), scoringQueries: scoringQueriesOf(config), headDim: headDim ?? 0 });
  if (bytes > backend.context.maxWorkgroupBytes) {
    throw new ConfigError(`hip: ${keepOf(config)} kept chunks (topK / chunkSize) and ${scoringQueriesOf(config)} scoring queries${headDim ? ` of ${headDim} channels` : ''} need ${bytes} bytes of workgroup memory on the GPU, above the device's ${backend.context.maxWorkgroupBytes}`);
  }
}

/** The selection step: one search kernel dispatch per chunk (one workgroup per query head and query block). */
export function hipSelectionStep(config: HipConfig, d: AttentionDims, maxBinding = Infinity): GpuSelectionStep {
  const rows = Math.ceil(d.querySeq / config.queryBlockSize);
  const stride = hipRowStride(config);
  return {
    layout: { kind: 'token', blockSize: 1, headScope: 'query', rows, queryBlockSize: config.queryBlockSize },
    stride,
    async encodeChunk(encoder) {
      const { chunk, target } = encoder;
      const bound = config.representative === 'bound';
      // Key t of the chunk's slot s is row `s · keyStride + t` of chunk.k (a KV cache's capacity between slots).
      const keyStride = chunkKeyStride(chunk, d);
      const search = await encoder.pipeline(hipSearchWgsl({ headDim: d.headDim, keep: keepOf(config), scoringQueries: scoringQueriesOf(config), representative: config.representative }));
      const levels = hipTreeLevels(config, d.keySeq);
      const treeNodes = levels.reduce((a, b) => a + b, 0);
      let tree: ReturnType<typeof encoder.scratch> | undefined;
      if (bound) {
        const bytes = chunk.slots * treeNodes * 2 * d.headDim * 4;
        if (bytes > maxBinding) throw new ConfigError(`hip: the range-bound tree of ${chunk.slots} KV slots needs ${bytes} bytes, above the device's largest binding (${maxBinding})`);
        const build = await encoder.pipeline(hipBoundTreeWgsl({ headDim: d.headDim }));
        tree = encoder.scratch(chunk.slots * treeNodes * 2 * d.headDim * 4);
        let offset = 0;
        levels.forEach((nodes, level) => {
          const [bx, by] = dispatchGrid(Math.ceil((chunk.slots * nodes * d.headDim) / HIP_BOUND_TREE_THREADS));
          const params = encoder.uniform(HIP_BOUND_TREE_PARAMS, {
            keySeq: d.keySeq,
            chunkSize: config.chunkSize,
            slots: chunk.slots,
            tilesX: bx,
            level,
            nodes,
            childNodes: level > 0 ? levels[level - 1]! : 0,
            totalNodes: treeNodes,
            offset,
            childOffset: level > 0 ? offset - levels[level - 1]! : 0,
            keyStride,
          });
          encoder.dispatch(build, [params, chunk.k, tree], bx, by);
          offset += nodes;
        });
      }
      const [x, y] = dispatchGrid(chunk.slots * d.groupSize * rows);
      const params = encoder.uniform(HIP_SEARCH_PARAMS, {
        querySeq: d.querySeq,
        queryOffset: d.queryOffset,
        keySeq: d.keySeq,
        tilesX: x,
        rows,
        queryBlockSize: config.queryBlockSize,
        queryStride: config.queryStride,
        groupSize: d.groupSize,
        topK: config.topK,
        chunkSize: config.chunkSize,
        keep: keepOf(config),
        sinkTokens: config.sinkTokens,
        windowTokens: config.windowTokens,
        stride,
        slots: chunk.slots,
        chunks: levels[0]!,
        treeNodes,
        keyStride,
      });
      encoder.dispatch(search, [params, chunk.q, bound ? undefined : chunk.k, target.bounds, target.indices, tree], x, y);
    },
  };
}

/** `[lo, hi)`: the range the tree search covers for query block `r` (sinks before it, window after). */
function searchRange(d: Pick<AttentionDims, 'querySeq' | 'queryOffset'>, config: HipConfig, r: number): { lo: number; hi: number; end: number; i0: number; i1: number } {
  const i0 = r * config.queryBlockSize;
  const i1 = Math.min(d.querySeq, i0 + config.queryBlockSize);
  const end = d.queryOffset + i1;
  const lo = Math.min(config.sinkTokens, end);
  const hi = Math.max(lo, d.queryOffset + i0 - config.windowTokens);
  return { lo, hi, end, i0, i1 };
}

function meanRowLength(selection: Selection): number {
  const rows = selection.offsets.length - 1;
  return rows === 0 ? 0 : selection.indices.length / rows;
}

/**
 * Causal pairs of a GPU selection from its row bounds only (a few bytes per row are read back):
 * the keys at or after a block's first query are its window tail `[queryOffset + i0, end)`, so
 * query i of the block drops `i1 − 1 − i` of its row's keys.
 */
async function pairsFromBounds(backend: GpuBackend, selection: GpuSelection, d: AttentionDims, config: HipConfig): Promise<number> {
  let pairs = 0;
  const rows = selection.layout.rows;
  const read = await backend.readAll(selection.chunks.map((chunk) => ({ buffer: chunk.bounds, bytes: chunk.rows * 8 })));
  for (const [i, chunk] of selection.chunks.entries()) {
    const bounds = new Uint32Array(read[i]!.buffer, read[i]!.byteOffset, read[i]!.length);
    for (let row = 0; row < chunk.rows; row++) {
      const length = bounds[2 * row + 1]! - bounds[2 * row]!;
      const { i0, i1 } = searchRange(d, config, row % rows);
      const n = i1 - i0;
      pairs += n * length - (n * (n - 1)) / 2;
    }
  }
  return pairs;
}

/** GPU search + GPU attention of one validated, causal call. */
async function hipAttend(backend: GpuBackend, config: HipConfig, input: AttentionInput): Promise<AttentionResult & { selection: Selection }> {
  const d = validateAttentionInput(input);
  checkRunsOnGpu(backend, config, d.headDim);
  const treeBytes = hipTreeBytesPerSlot(config, d);
  const result = await backend.selectionAttention(input, hipSelectionStep(config, d, backend.context.maxBinding), { extraBytesPerSlot: treeBytes });
  // boundTreeBytes: the GPU tree's size (the CPU reports its growable tree's capacity).
  return { ...result, diagnostics: { meanSelectedKeys: meanRowLength(result.selection), maskRefreshed: 1, boundTreeBytes: treeBytes * d.batch * d.kvHeads } };
}

/** Per (batch, query head) state the decoder keeps between mask refreshes (as the CPU decoder). */
interface CachedMasks {
  masks: (Int32Array | undefined)[];
  searchedUpTo: Int32Array;
  stepsSinceRefresh: number;
}

/**
 * The GPU decoder: K/V on the device (backend-gpu's window decoder, no kept windows). On refresh
 * steps (every `refreshInterval`, as the CPU decoder) the search runs on the GPU over the cache's
 * view and each head's kept keys come back with the step's selection; between refreshes the CPU
 * decoder's rule (cached mask ∩ range, plus keys that left the window since the search) builds
 * the rows on the host, uploaded for the GPU sparse executor.
 */
function createHipDecoder(backend: GpuBackend, config: HipConfig, shape: DecoderShape, options?: GpuDecoderOptions): GpuWindowDecoder {
  const slots = shape.batch * shape.queryHeads;
  const cached: CachedMasks = { masks: new Array<Int32Array | undefined>(slots).fill(undefined), searchedUpTo: new Int32Array(slots), stepsSinceRefresh: 0 };
  let refresh = false;
  const plan = (d: AttentionDims): WindowStepPlan<never> => {
    checkRunsOnGpu(backend, config, d.headDim);
    refresh = cached.stepsSinceRefresh >= config.refreshInterval || cached.masks.some((m) => m === undefined);
    const treeBytes = hipTreeBytesPerSlot(config, d);
    if (refresh) return { extraBytesPerSlot: treeBytes, run: (resident) => selectThenAttend(backend, resident, hipSelectionStep(config, d, backend.context.maxBinding)) };
    const rows = Math.ceil(d.querySeq / config.queryBlockSize);
    const builder = new SelectionBuilder({ kind: 'token', headScope: 'query', batch: d.batch, heads: d.queryHeads, rows, queryBlockSize: config.queryBlockSize, keySeq: d.keySeq });
    const tokens: number[] = [];
    for (let slot = 0; slot < slots; slot++) {
      for (let r = 0; r < rows; r++) {
        const { lo, hi, end } = searchRange(d, config, r);
        tokens.length = 0;
        for (let j = 0; j < lo; j++) tokens.push(j);
        for (const j of cached.masks[slot]!) if (j >= lo && j < hi) tokens.push(j);
        for (let j = Math.max(lo, cached.searchedUpTo[slot]!); j < hi; j++) tokens.push(j);
        for (let j = hi; j < end; j++) tokens.push(j);
        builder.pushRow(tokens);
      }
    }
    const rowsOnHost = builder.finish();
    return {
      extraBytesPerSlot: 0,
      async run(resident) {
        const selection = backend.uploadSelection(resident, rowsOnHost);
        try {
          return { selection, selectionMs: 0, attentionMs: await backend.runSparse(resident, selection) };
        } catch (error) {
          backend.releaseSelection(selection);
          throw error;
        }
      },
    };
  };
  const decoder = createGpuWindowDecoder(backend, shape, NO_WINDOWS, plan, { ...options, validateContext: (k, v) => validateContext(shape, k, v) });
  return {
    ...decoder,
    get length() {
      return decoder.length;
    },
    async step(input) {
      const result = (await decoder.step(input)) as AttentionResult & { selection: Selection };
      const querySeq = input.q.shape[2]!;
      const keySeq = result.selection.keySeq;
      const at = { querySeq, queryOffset: keySeq - querySeq };
      if (refresh) {
        const rows = Math.ceil(querySeq / config.queryBlockSize);
        const s = result.selection;
        // The CPU decoder keeps the last query block's search.
        const { lo, hi } = searchRange(at, config, rows - 1);
        for (let slot = 0; slot < slots; slot++) {
          const row = slot * rows + rows - 1;
          cached.masks[slot] = Int32Array.from(s.indices.subarray(s.offsets[row]!, s.offsets[row + 1]!).filter((t) => t >= lo && t < hi));
          cached.searchedUpTo[slot] = hi;
        }
      }
      cached.stepsSinceRefresh = refresh ? 1 : cached.stepsSinceRefresh + 1;
      // boundTreeBytes: the GPU tree's size (the CPU reports its growable tree's capacity).
      return { ...result, diagnostics: { meanSelectedKeys: meanRowLength(result.selection), maskRefreshed: refresh ? 1 : 0, boundTreeBytes: hipTreeBytesPerSlot(config, { keySeq, headDim: shape.headDim }) * shape.batch * shape.kvHeads } };
    },
    reset() {
      decoder.reset();
      cached.masks.fill(undefined);
      cached.stepsSinceRefresh = 0;
    },
  };
}

/**
 * `hip` with the tree search and attention on the GPU (same id and config schema as
 * {@link hipMethod}; configs whose search does not fit the device's workgroup memory are rejected
 * with a `ConfigError`).
 * Prefill, decode (mask refreshes searched on the GPU) and `runResident` (search → sparse
 * attention on resident buffers; density from the rows' bounds, the only readback).
 */
export const gpuHipMethod: GpuMethodDefinition = {
  id: hipMethod.id,
  family: hipMethod.family,
  cpu: hipMethod,
  create(backend, rawConfig): GpuAttentionMethod {
    const config = parseConfig(hipMethod.id, hipConfigSchema, rawConfig);
    checkRunsOnGpu(backend, config);
    return {
      methodId: hipMethod.id,
      async prefill(input) {
        const d = validateAttentionInput(input);
        requireCausal(hipMethod.id, d.causal);
        return hipAttend(backend, config, input);
      },
      createDecoder: (shape, options?: GpuDecoderOptions) => createHipDecoder(backend, config, shape, options),
      async runResident(resident: ResidentAttention, options?: ResidentRunOptions) {
        const d = resident.dims;
        requireCausal(hipMethod.id, d.causal);
        checkRunsOnGpu(backend, config, d.headDim);
        return residentCall(backend, options, () =>
          withGpuSelection(backend, resident, hipSelectionStep(config, d, backend.context.maxBinding), async (selection, selectionMs) => {
            const attentionMs = await backend.runSparse(resident, selection);
            // The density reads the rows' bounds back: only when asked for.
            if (options?.density === false) return { selectionMs, attentionMs };
            return { selectionMs, attentionMs, density: (await pairsFromBounds(backend, selection, d, config)) / densePairCount(d) };
          }),
        );
      },
    };
  },
};
