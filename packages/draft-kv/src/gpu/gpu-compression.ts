/**
 * The compress-once pipeline on the GPU (score → pool → select, then the exact sparse executor
 * over the kept entries), mirroring `compressLayer` + `compressedAttention`: a
 * {@link GpuCompressionPlan} says what the CPU planner of the method says (scorer, window,
 * capacity, pooling, reduction, observers), {@link compressionStep} records the kernels that
 * write one `headScope: 'kv'` CSR row per KV slot, and the backend's `selectionAttention` /
 * `runSelection` + `runSparse` attend every query of the call over that row, causally masked —
 * what `compressedAttention` does with core's `sparseAttention`.
 */
import { ConfigError, densePairCount, validateAttentionInput, type AttentionDims, type AttentionInput, type Selection, type SparseAttentionResult } from '@sparse-attn/core';
import { chunkKeyStride, dispatchGrid, residentCall, type ChunkEncoder, type GpuBackend, type GpuSelectionChunk, type GpuSelectionStep, type GpuTimings, type ResidentAttention, type ResidentRun, type ResidentRunOptions } from '@sparse-attn/backend-gpu';
import type { PoolingKind } from '../pool-scores.js';
import type { ScoreReduction } from '../observer-scores.js';
import { KEY_NORM_PARAMS, KEY_NORM_THREADS, keyNormScoresWgsl } from './key-norm-scores-wgsl.js';
import { observerLseWgsl } from './observer-lse-wgsl.js';
import { OBSERVER_FLOATS, OBSERVER_PARAMS, OBSERVER_TILE, observerPartialsWgsl } from './observer-partials-wgsl.js';
import { REDUCTION_CODES, observerScoresWgsl } from './observer-scores-wgsl.js';
import { RANDOM_PARAMS, RANDOM_THREADS, randomScoresWgsl } from './random-scores-wgsl.js';
import { POOL_SCORE_PARAMS, POOL_SCORE_THREADS, poolScoresWgsl } from './pool-scores-wgsl.js';
import { SELECT_PARAMS, selectKeptEntriesWgsl } from './select-kept-entries-wgsl.js';

/** The scorers that run on the GPU. */
export type GpuKvScorer = 'observed-attention' | 'key-norm' | 'random';

/**
 * One call's compression, as the CPU method's planner resolves it (`LayerCompression` with the
 * observers given as a contiguous run of local query rows, which is all the window methods use).
 */
export interface GpuCompressionPlan {
  readonly scorer: GpuKvScorer;
  /** Trailing entries always kept. */
  readonly window: number;
  /** Entries kept per KV head, window included (resolved for this length). */
  readonly capacity: number;
  readonly pooling: PoolingKind;
  /** Odd pooling kernel. */
  readonly kernel: number;
  /** Group/observer reduction of `observed-attention`. */
  readonly reduction: ScoreReduction;
  /** First observer (a local query row) of `observed-attention`. */
  readonly observerFirst: number;
  /** Observers: rows `observerFirst .. observerFirst + observerCount` of the call's queries. */
  readonly observerCount: number;
  /** Seed of the `random` scorer. */
  readonly seed?: number;
}

/** A method's plan as a function of the call's key and query counts (the CPU `CompressionPlanner`). */
export type GpuCompressionPlanner = (keySeq: number, querySeq: number) => GpuCompressionPlan;

/** The call-level numbers of a plan: window, scored keys, kept entries and whether everything is kept. */
export function planGeometry(plan: GpuCompressionPlan, keySeq: number): { window: number; scored: number; keep: number; need: number; all: boolean } {
  const window = Math.min(plan.window, keySeq);
  const scored = keySeq - window;
  const all = plan.capacity >= keySeq;
  const keep = Math.min(plan.capacity, keySeq);
  if (!all && keep < window) throw new ConfigError(`capacity ${plan.capacity} is smaller than the protected window ${window}: the window alone would not fit`);
  return { window, scored, keep, need: all ? scored : keep - window, all };
}

/**
 * Bytes of the largest scratch buffer the step allocates per KV slot (the observer partials,
 * `groupSize · observers · ⌈keySeq / 64⌉` pairs, or the `scored` key scores), for the backend's
 * chunking.
 */
export function compressionScratchBytesPerSlot(plan: GpuCompressionPlan, d: Pick<AttentionDims, 'keySeq' | 'groupSize'>): number {
  const tiles = Math.ceil(d.keySeq / OBSERVER_TILE);
  const partials = plan.scorer === 'observed-attention' ? d.groupSize * plan.observerCount * tiles * 8 : 0;
  return Math.max(partials, 4 * d.keySeq);
}

/** The GPU selection step of a plan: one CSR row per KV slot (shared by the slot's query heads and every query). */
export function compressionStep(plan: GpuCompressionPlan, d: AttentionDims): GpuSelectionStep {
  const g = planGeometry(plan, d.keySeq);
  return {
    layout: { kind: 'token', blockSize: 1, headScope: 'kv', rows: 1, queryBlockSize: d.querySeq },
    stride: g.keep,
    encodeChunk: (encoder) => encodeCompression(encoder, plan),
  };
}

async function encodeCompression(e: ChunkEncoder & { readonly target: GpuSelectionChunk }, plan: GpuCompressionPlan): Promise<void> {
  const d = e.dims;
  const slots = e.chunk.slots;
  const g = planGeometry(plan, d.keySeq);
  let scores = e.scratch(16);
  if (!g.all) {
    scores = e.scratch(slots * g.scored * 4);
    if (plan.scorer === 'random') {
      const pipeline = await e.pipeline(randomScoresWgsl());
      const [x, y] = dispatchGrid(Math.ceil((slots * g.scored) / RANDOM_THREADS));
      e.dispatch(pipeline, [e.uniform(RANDOM_PARAMS, { slots, scored: g.scored, slot0: e.chunk.slot0, seed: (plan.seed ?? 0) >>> 0, tilesX: x }), scores], x, y);
    } else if (plan.scorer === 'key-norm') {
      const pipeline = await e.pipeline(keyNormScoresWgsl({ headDim: d.headDim }));
      const [x, y] = dispatchGrid(Math.ceil((slots * g.scored) / KEY_NORM_THREADS));
      e.dispatch(pipeline, [e.uniform(KEY_NORM_PARAMS, { slots, keySeq: d.keySeq, keyStride: chunkKeyStride(e.chunk, d), scored: g.scored, tilesX: x }), e.chunk.k, scores], x, y);
    } else {
      const [partialsPipeline, lsePipeline, scoresPipeline] = await Promise.all([
        e.pipeline(observerPartialsWgsl({ headDim: d.headDim })),
        e.pipeline(observerLseWgsl()),
        e.pipeline(observerScoresWgsl({ headDim: d.headDim })),
      ]);
      const rows = d.groupSize * plan.observerCount;
      const tiles = Math.ceil(d.keySeq / OBSERVER_TILE);
      const partials = e.scratch(slots * rows * tiles * 8);
      const lse = e.scratch(slots * rows * 4);
      const common = {
        querySeq: d.querySeq,
        keySeq: d.keySeq,
        keyStride: chunkKeyStride(e.chunk, d),
        queryOffset: d.queryOffset,
        groupSize: d.groupSize,
        slots,
        scale: d.scale,
        observerFirst: plan.observerFirst,
        observerCount: plan.observerCount,
        scored: g.scored,
        tiles,
        reduction: REDUCTION_CODES[plan.reduction],
        divisor: plan.reduction === 'mean' ? rows : 1,
      };
      const params = (tilesX: number) => e.uniform(OBSERVER_PARAMS, { ...common, tilesX }, OBSERVER_FLOATS);
      const [px, py] = dispatchGrid(slots * tiles);
      e.dispatch(partialsPipeline, [params(px), e.chunk.q, e.chunk.k, partials], px, py);
      const [lx, ly] = dispatchGrid(Math.ceil((slots * rows) / OBSERVER_TILE));
      e.dispatch(lsePipeline, [params(lx), partials, lse], lx, ly);
      const [sx, sy] = dispatchGrid(slots * Math.ceil(g.scored / OBSERVER_TILE));
      e.dispatch(scoresPipeline, [params(sx), e.chunk.q, e.chunk.k, lse, scores], sx, sy);
    }
    if (plan.pooling !== 'none' && plan.kernel > 1) {
      const pooled = e.scratch(slots * g.scored * 4);
      const pipeline = await e.pipeline(poolScoresWgsl());
      const [x, y] = dispatchGrid(Math.ceil((slots * g.scored) / POOL_SCORE_THREADS));
      e.dispatch(pipeline, [e.uniform(POOL_SCORE_PARAMS, { slots, scored: g.scored, half: plan.kernel >> 1, average: plan.pooling === 'avg' ? 1 : 0, tilesX: x }), scores, pooled], x, y);
      scores = pooled;
    }
  }
  const pipeline = await e.pipeline(selectKeptEntriesWgsl());
  const [x, y] = dispatchGrid(slots);
  const params = e.uniform(SELECT_PARAMS, { slots, scored: g.scored, need: g.need, window: g.window, stride: g.keep, all: g.all ? 1 : 0, tilesX: x });
  e.dispatch(pipeline, [params, scores, e.target.bounds, e.target.indices], x, y);
}

/** The CPU method's error for a non-causal call, thrown before any GPU work. */
function checkCausal(input: AttentionInput): AttentionDims {
  const d = validateAttentionInput(input);
  if (!d.causal) throw new ConfigError('KV-dropping methods are causal: the observation window scores the keys before it (causal: false is not supported)');
  return d;
}

/**
 * `compressedAttention` on the GPU: the plan's kernels choose each KV head's kept entries and
 * every query attends over them (causally masked); output, lse and the selection are read back.
 */
export async function compressedAttentionGpu(backend: GpuBackend, input: AttentionInput, planner: GpuCompressionPlanner): Promise<SparseAttentionResult> {
  const d = checkCausal(input);
  const plan = planner(d.keySeq, d.querySeq);
  const step = compressionStep(plan, d);
  return backend.selectionAttention(input, step, {
    extraBytesPerSlot: compressionScratchBytesPerSlot(plan, d),
    diagnostics: { keptPerHead: step.stride, keptShare: step.stride / d.keySeq },
  });
}

/**
 * Scoring, selection and attention on a resident call (the benchmark path): nothing but the
 * kept indices (`min(C, S)` per KV slot, for the density; not with `density: false`) is read back.
 */
export async function runCompressionResident(backend: GpuBackend, resident: ResidentAttention, planner: GpuCompressionPlanner, options?: ResidentRunOptions): Promise<ResidentRun> {
  const d = resident.dims;
  if (!d.causal) throw new ConfigError('KV-dropping methods are causal: the observation window scores the keys before it (causal: false is not supported)');
  const plan = planner(d.keySeq, d.querySeq);
  return residentCall(backend, options, async () => {
    const { selection, ms } = await backend.runSelection(resident, compressionStep(plan, d));
    try {
      const attentionMs = await backend.runSparse(resident, selection);
      // The density costs a readback of the kept indices: only when asked for.
      if (options?.density === false) return { selectionMs: ms, attentionMs };
      return { selectionMs: ms, attentionMs, density: keptPairs(await backend.readSelection(selection), d) / densePairCount(d) };
    } finally {
      backend.releaseSelection(selection);
    }
  });
}

/**
 * Query–key pairs a one-row-per-KV-head token selection scores under the causal mask: kept
 * entry j is seen by every query at position ≥ j (O(kept) per row, unlike a per-query walk).
 */
export function keptPairs(selection: Selection, d: AttentionDims): number {
  let pairs = 0;
  for (let row = 0; row < selection.offsets.length - 1; row++) {
    for (let at = selection.offsets[row]!; at < selection.offsets[row + 1]!; at++) pairs += Math.max(0, d.keySeq - Math.max(selection.indices[at]!, d.queryOffset));
  }
  return pairs * d.groupSize;
}

/** Each KV head's kept entries, from a one-row-per-KV-head selection (for `KVCache.retain`). */
export function keptLists(selection: Selection): Int32Array[] {
  return Array.from({ length: selection.offsets.length - 1 }, (_, row) => selection.indices.slice(selection.offsets[row]!, selection.offsets[row + 1]!));
}
