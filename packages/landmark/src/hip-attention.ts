/**
 * HiP attention (hierarchically pruned attention): training-free top-k key estimation by a tree
 * search over key ranges.
 *
 *   frontier ← {root};  repeat: split every range in two, score each half by one representative,
 *   keep the best ⌈topK / chunkSize⌉ halves; until the ranges are single key chunks.
 *   O(topK · log T) scoring per query block instead of O(T), then exact attention over
 *   sinks ∪ selected chunks ∪ a recent window.
 */
import { z } from 'zod';
import {
  ConfigError,
  SelectionBuilder,
  defineMethod,
  dims4,
  rowOffset,
  sparseAttention,
  validateAttentionInput,
  type AttentionInput,
  type AttentionResult,
  type DecoderShape,
  type Dims4,
  type Selection,
  type Tensor,
} from '@sparse-attn/core';
import { doublingBudgets } from './budget-sweep.js';
import { createCachedDecoder, type CachedDecoder } from './cached-decoder.js';
import { meanRowLength } from './landmark-retrieval.js';
import { RangeBoundTree } from './range-bound-tree.js';
import { TopKScratch, topKIndices } from './top-k.js';

/** Config of {@link hipMethod}. */
export const hipConfigSchema = z
  .object({
    topK: z.number().int().min(1).default(512).describe('Keys kept by the tree search per query block (HiP `mask_k`), besides sinks and the recent window.'),
    chunkSize: z.number().int().min(1).default(2).describe('Keys per leaf chunk of the tree (HiP `block_size_k`); the search ends at single chunks.'),
    queryBlockSize: z.number().int().min(1).default(32).describe('Queries sharing one mask (HiP `block_size_q`).'),
    queryStride: z.number().int().min(1).default(4).describe('Every `queryStride`-th query of a block (counting back from its last) scores the tree (HiP `block_stride_q`).'),
    sinkTokens: z.number().int().min(0).default(4).describe('First tokens every query attends to (attention sinks).'),
    windowTokens: z.number().int().min(0).default(64).describe('Recent tokens before each query block that every query of the block attends to (sliding window).'),
    representative: z
      .enum(['center', 'bound'])
      .default('center')
      .describe('How a range is scored: `center` = its middle key chunk (HiP), `bound` = a per-channel min/max upper bound of all its keys (robust to isolated needles; our addition).'),
    refreshInterval: z.number().int().min(1).default(8).describe('Decode: recompute the mask every this many steps and reuse it in between (HiP `refresh_interval`).'),
  })
  .strict();

/** Resolved config of {@link hipMethod}. */
export type HipConfig = z.output<typeof hipConfigSchema>;

/** Reusable buffers of the tree search (sized by the frontier, never by the key count). */
class SearchScratch {
  frontier = new Int32Array(128);
  next = new Int32Array(128);
  scores = new Float64Array(128);
  /** `positions[i] = i`: frontier slots to rank. */
  positions = Int32Array.from({ length: 128 }, (_, i) => i);
  picked = new Int32Array(128);
  readonly topK = new TopKScratch();
  /** Query rows (flat offsets into q) that score the current block. */
  queries: number[] = [];
  tokens: number[] = [];

  ensure(n: number): void {
    if (this.next.length >= n) return;
    const size = Math.max(n, 2 * this.next.length);
    const frontier = new Int32Array(size);
    frontier.set(this.frontier);
    this.frontier = frontier;
    this.next = new Int32Array(size);
    this.scores = new Float64Array(size);
    this.positions = Int32Array.from({ length: size }, (_, i) => i);
    this.picked = new Int32Array(size);
  }
}

/** What one tree search needs about its stream and query block. */
interface SearchContext {
  readonly config: HipConfig;
  readonly k: Tensor;
  readonly kDims: Dims4;
  readonly q: Float32Array;
  readonly batch: number;
  readonly kvHead: number;
  readonly stream: number;
  readonly tree: RangeBoundTree | undefined;
}

/**
 * Tree search over keys `[lo, hi)` for the queries in `scratch.queries`; appends the kept keys to
 * `scratch.tokens` in ascending order. Returns the number of representative scores computed.
 */
function searchKeys(ctx: SearchContext, lo: number, hi: number, scratch: SearchScratch): number {
  const { config, q, kDims, k } = ctx;
  const dim = kDims.dim;
  if (hi - lo <= config.topK) {
    for (let j = lo; j < hi; j++) scratch.tokens.push(j);
    return 0;
  }
  const cs = config.chunkSize;
  const keep = Math.ceil(config.topK / cs);
  const cLo = Math.floor(lo / cs);
  const cHi = Math.ceil(hi / cs);
  let level = Math.ceil(Math.log2(Math.max(2, cHi)));
  scratch.frontier[0] = 0;
  let size = 1;
  let scored = 0;
  const kBase = rowOffset(kDims, ctx.batch, ctx.kvHead, 0);
  while (level > 0) {
    const child = level - 1;
    const width = 2 ** child;
    scratch.ensure(2 * size + 2);
    let n = 0;
    for (let f = 0; f < size; f++) {
      const node = scratch.frontier[f]!;
      for (const j of [2 * node, 2 * node + 1]) {
        if (j * width < cHi && (j + 1) * width > cLo) scratch.next[n++] = j;
      }
    }
    if (n > keep) {
      for (let x = 0; x < n; x++) {
        const j = scratch.next[x]!;
        let best = -Infinity;
        if (config.representative === 'bound') {
          for (const qo of scratch.queries) {
            const s = ctx.tree!.bound(ctx.stream, child, j, q, qo);
            if (s > best) best = s;
          }
        } else {
          const a = Math.max(cLo, j * width);
          const b = Math.min(cHi, (j + 1) * width);
          const middle = (a + b - 1) >> 1;
          const from = Math.max(lo, middle * cs);
          const to = Math.min(hi, (middle + 1) * cs);
          for (let t = from; t < to; t++) {
            const ko = kBase + t * dim;
            for (const qo of scratch.queries) {
              let s = 0;
              for (let c = 0; c < dim; c++) s += q[qo + c]! * k.data[ko + c]!;
              if (s > best) best = s;
            }
          }
        }
        scratch.scores[x] = best;
        scored++;
      }
      const kept = topKIndices(scratch.scores, scratch.positions, n, keep, scratch.picked, scratch.topK);
      for (let x = 0; x < kept; x++) scratch.frontier[x] = scratch.next[scratch.picked[x]!]!;
      size = kept;
    } else {
      scratch.frontier.set(scratch.next.subarray(0, n));
      size = n;
    }
    level = child;
  }
  for (let f = 0; f < size; f++) {
    const c = scratch.frontier[f]!;
    const end = Math.min(hi, (c + 1) * cs);
    for (let j = Math.max(lo, c * cs); j < end; j++) scratch.tokens.push(j);
  }
  return scored;
}

/** Per (batch, query head) state a decoder keeps between mask refreshes. */
interface CachedMasks {
  /** Keys the last search kept, per (batch, query head). */
  masks: (Int32Array | undefined)[];
  /** End of the range the last search covered: later keys have not been ranked yet and stay in. */
  searchedUpTo: Int32Array;
  stepsSinceRefresh: number;
}

/**
 * Builds HiP's token selection for queries aligned to the end of `keySeq` keys: per query head
 * and query block, sinks ∪ tree-searched keys ∪ the recent window. With `cached`, masks younger
 * than `refreshInterval` steps are reused (decode) instead of searched again.
 */
function selectHip(
  q: Tensor,
  qDims: Dims4,
  k: Tensor,
  kDims: Dims4,
  config: HipConfig,
  tree: RangeBoundTree | undefined,
  cached: CachedMasks | undefined,
): { selection: Selection; scored: number; refreshed: boolean } {
  const querySeq = qDims.seq;
  const keySeq = kDims.seq;
  const offset = keySeq - querySeq;
  const group = qDims.heads / kDims.heads;
  const qbs = config.queryBlockSize;
  const rows = Math.ceil(querySeq / qbs);
  const builder = new SelectionBuilder(
    { kind: 'token', headScope: 'query', batch: qDims.batch, heads: qDims.heads, rows, queryBlockSize: qbs, keySeq },
    qDims.batch * qDims.heads * rows * (config.topK + config.windowTokens + config.sinkTokens + qbs),
  );
  const scratch = new SearchScratch();
  const refresh = !cached || cached.stepsSinceRefresh >= config.refreshInterval || cached.masks.some((m) => m === undefined);
  let scored = 0;
  for (let b = 0; b < qDims.batch; b++) {
    for (let h = 0; h < qDims.heads; h++) {
      const kvHead = Math.floor(h / group);
      const ctx: SearchContext = { config, k, kDims, q: q.data, batch: b, kvHead, stream: b * kDims.heads + kvHead, tree };
      for (let r = 0; r < rows; r++) {
        const i0 = r * qbs;
        const i1 = Math.min(querySeq, i0 + qbs);
        const end = offset + i1; // keys visible to the block's last query
        const lo = Math.min(config.sinkTokens, end);
        const hi = Math.max(lo, offset + i0 - config.windowTokens);
        const tokens = scratch.tokens;
        tokens.length = 0;
        for (let j = 0; j < lo; j++) tokens.push(j);
        const slot = b * qDims.heads + h;
        if (refresh) {
          scratch.queries.length = 0;
          for (let i = i1 - 1; i >= i0; i -= config.queryStride) scratch.queries.push(rowOffset(qDims, b, h, i));
          const before = tokens.length;
          scored += searchKeys(ctx, lo, hi, scratch);
          if (cached) {
            cached.masks[slot] = Int32Array.from(tokens.slice(before));
            cached.searchedUpTo[slot] = hi;
          }
        } else {
          for (const j of cached!.masks[slot]!) if (j >= lo && j < hi) tokens.push(j);
          // Keys that left the window since the last search were never ranked: keep them until the next refresh.
          for (let j = Math.max(lo, cached!.searchedUpTo[slot]!); j < hi; j++) tokens.push(j);
        }
        for (let j = hi; j < end; j++) tokens.push(j);
        builder.pushRow(tokens);
      }
    }
  }
  if (cached) cached.stepsSinceRefresh = refresh ? 1 : cached.stepsSinceRefresh + 1;
  return { selection: builder.finish(), scored, refreshed: refresh };
}

function hipAttend(input: AttentionInput, config: HipConfig, tree: RangeBoundTree | undefined, cached: CachedMasks | undefined): AttentionResult {
  const qDims = dims4(input.q, 'q');
  const kDims = dims4(input.k, 'k');
  const started = performance.now();
  const { selection, scored, refreshed } = selectHip(input.q, qDims, input.k, kDims, config, tree, cached);
  const selectionMs = performance.now() - started;
  const result = sparseAttention({ ...input, causal: true }, selection, { selectionMs, checkFinite: false });
  return {
    ...result,
    diagnostics: {
      meanSelectedKeys: meanRowLength(selection),
      representativesScored: scored,
      maskRefreshed: refreshed ? 1 : 0,
      boundTreeBytes: tree?.bytes ?? 0,
    },
  };
}

/**
 * HiP attention: training-free hierarchical pruning. Each query block searches a binary tree of
 * key ranges top-down, scoring each half by one representative and keeping the best
 * ⌈topK/chunkSize⌉ ranges per level, so selecting top-k keys costs O(k log T) instead of O(T);
 * attention then runs exactly over sinks ∪ the kept chunks ∪ a recent window. Decode reuses a
 * mask for `refreshInterval` steps, so it is not token-for-token equal to prefill.
 *
 * Deviations (README): ranges are dyadic and aligned to absolute key positions (so the decoder's
 * `bound` tree grows in place); the optional `bound` representative scores a range by its
 * per-channel min/max upper bound instead of its middle chunk.
 *
 * @see arXiv:2406.09827 §3 (HiP: hierarchically pruned attention)
 */
export const hipMethod = defineMethod({
  id: 'hip',
  family: 'landmark',
  description: 'HiP: training-free hierarchical pruning; a per-query-block tree search keeps the top-k key chunks in O(k log T), plus sinks and a recent window, attended exactly.',
  paper: 'arXiv:2406.09827',
  configSchema: hipConfigSchema,
  budgets: (sequenceLength) => doublingBudgets(64, 4096, sequenceLength, (topK) => ({ topK }), { topK: Math.max(1, sequenceLength) }),
  build: (config) => ({
    capabilities: { causalConsistent: false, supportsNonCausal: false, selection: 'token', sharesSelectionAcrossGroup: false },
    prefill(input) {
      const d = validateAttentionInput(input);
      if (!d.causal) throw new ConfigError('hip: causal must be true, got false');
      let tree: RangeBoundTree | undefined;
      if (config.representative === 'bound') {
        tree = new RangeBoundTree(d.batch * d.kvHeads, d.headDim, config.chunkSize);
        tree.update(input.k, d.kDims, d.keySeq);
      }
      return hipAttend(input, config, tree, undefined);
    },
    createDecoder(shape: DecoderShape): CachedDecoder {
      const tree = config.representative === 'bound' ? new RangeBoundTree(shape.batch * shape.kvHeads, shape.headDim, config.chunkSize) : undefined;
      const slots = shape.batch * shape.queryHeads;
      const cached: CachedMasks = { masks: new Array(slots).fill(undefined), searchedUpTo: new Int32Array(slots), stepsSinceRefresh: 0 };
      return createCachedDecoder(shape, {
        afterAppend(cache) {
          if (!tree) return;
          const keys = cache.keys();
          tree.update(keys, dims4(keys, 'k'), cache.length);
        },
        attend: (q, cache) => hipAttend({ q, k: cache.keys(), v: cache.values(), scale: shape.scale }, config, tree, cached),
        reset() {
          tree?.reset();
          cached.masks.fill(undefined);
          cached.stepsSinceRefresh = 0;
        },
      });
    },
  }),
});
