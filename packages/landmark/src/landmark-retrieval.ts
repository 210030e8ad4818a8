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
  type KVCache,
  type Selection,
  type Tensor,
} from '@sparse-attn/core';
import { BlockRepresentatives, type RepresentativeKind } from './block-representatives.js';
import { blockBudgets } from './budget-sweep.js';
import { createCachedDecoder, type CachedDecoder } from './cached-decoder.js';
import { TopKScratch, topKIndices } from './top-k.js';

/** How per-query-head block scores are combined into one ranking per KV head (GQA). */
export type GroupReduce = 'sum-probability' | 'max-score';

/** Config of the training-free landmark-style retrieval method. */
export const landmarkRetrievalConfigSchema = z
  .object({
    blockSize: z.number().int().min(1).default(64).describe('Keys per block; each complete block gets one synthetic representative (the "landmark").'),
    topK: z
      .number()
      .int()
      .min(0)
      .default(8)
      .describe('Blocks retrieved by score per query, on top of the always-kept first block and the query\'s own (current) block.'),
    representative: z
      .enum(['mean', 'quest'])
      .default('quest')
      .describe('Block representative: Quest per-channel min/max bounds scored by the upper bound Σ max(q·min, q·max) (default: a block holding one high-scoring key is never under-rated), or the `mean` of the block\'s keys (half the memory, but a lone needle\'s score is divided by the block size).'),
    groupReduce: z
      .enum(['sum-probability', 'max-score'])
      .default('sum-probability')
      .describe('GQA: how the query heads of a group combine their block scores (sum of per-head softmax probabilities, or max of raw scores).'),
  })
  .strict();

/** Resolved config of {@link landmarkRetrievalMethod}. */
export type LandmarkRetrievalConfig = z.output<typeof landmarkRetrievalConfigSchema>;

/** Options of {@link selectRetrievedBlocks}. */
export interface BlockRetrievalOptions {
  readonly blockSize: number;
  readonly topK: number;
  readonly groupReduce: GroupReduce;
}

/** Reusable buffers of the block selector (sized by the block count, never by keys × queries). */
class BlockScratch {
  scores = new Float64Array(0);
  accumulated = new Float64Array(0);
  /** `candidates[i] = i`: block indices to rank, sliced per query. */
  candidates = new Int32Array(0);
  picked = new Int32Array(0);
  row: number[] = [];
  readonly topK = new TopKScratch();

  ensure(blocks: number): void {
    if (blocks > 0 && this.scores.length >= blocks) return;
    const n = Math.max(blocks, 16, this.scores.length * 2);
    this.scores = new Float64Array(n);
    this.accumulated = new Float64Array(n);
    this.candidates = Int32Array.from({ length: n }, (_, i) => i);
    this.picked = new Int32Array(n);
  }
}

/**
 * Chooses, for every query and KV head, the blocks a query attends to: the first block, its own
 * (current, possibly incomplete) block, and the `topK` complete earlier blocks whose
 * representatives score highest against the query (reduced over the query heads of the GQA
 * group). Queries are aligned to the end of the keys; a query at position p only ranks blocks
 * that ended before its own block began, so prefill and decode see identical candidates.
 *
 * Cost per query and KV head: O(groupSize · (p / blockSize) · headDim) scoring + O(c log k) top-k.
 */
export function selectRetrievedBlocks(
  q: Tensor,
  qDims: Dims4,
  keySeq: number,
  kvHeads: number,
  scale: number,
  representatives: BlockRepresentatives,
  options: BlockRetrievalOptions,
): Selection {
  const { blockSize, topK } = options;
  const querySeq = qDims.seq;
  const group = qDims.heads / kvHeads;
  const offset = keySeq - querySeq;
  const builder = new SelectionBuilder(
    { kind: 'block', blockSize, headScope: 'kv', batch: qDims.batch, heads: kvHeads, rows: querySeq, keySeq },
    qDims.batch * kvHeads * querySeq * (topK + 2),
  );
  const scratch = new BlockScratch();
  scratch.ensure(Math.ceil(keySeq / blockSize) + 1);
  const { scores, accumulated, candidates, picked, row } = scratch;
  for (let b = 0; b < qDims.batch; b++) {
    for (let kvh = 0; kvh < kvHeads; kvh++) {
      const stream = b * kvHeads + kvh;
      for (let i = 0; i < querySeq; i++) {
        const current = Math.floor((offset + i) / blockSize);
        const candidateCount = current - 1; // blocks 1 .. current-1
        if (candidateCount <= topK) {
          builder.pushRange(0, current + 1);
          continue;
        }
        accumulated.fill(options.groupReduce === 'max-score' ? -Infinity : 0, 1, current);
        for (let g = 0; g < group; g++) {
          const h = kvh * group + g;
          representatives.score(stream, q.data, rowOffset(qDims, b, h, i), 1, current, scores);
          if (options.groupReduce === 'max-score') {
            for (let j = 1; j < current; j++) if (scores[j]! > accumulated[j]!) accumulated[j] = scores[j]!;
            continue;
          }
          let max = -Infinity;
          for (let j = 1; j < current; j++) if (scores[j]! > max) max = scores[j]!;
          let sum = 0;
          for (let j = 1; j < current; j++) {
            const e = Math.exp(scale * (scores[j]! - max));
            scores[j] = e;
            sum += e;
          }
          for (let j = 1; j < current; j++) accumulated[j]! += scores[j]! / sum;
        }
        const n = topKIndices(accumulated, candidates.subarray(1), candidateCount, topK, picked, scratch.topK);
        row.length = 0;
        row.push(0);
        for (let t = 0; t < n; t++) row.push(picked[t]!);
        row.push(current);
        builder.pushRow(row);
      }
    }
  }
  return builder.finish();
}

/** Mean number of indices per selection row (blocks or tokens), for diagnostics. */
export function meanRowLength(selection: Selection): number {
  const rows = selection.offsets.length - 1;
  return rows === 0 ? 0 : selection.indices.length / rows;
}

function retrievalResult(
  input: AttentionInput,
  keys: Tensor,
  scale: number | undefined,
  representatives: BlockRepresentatives,
  config: LandmarkRetrievalConfig,
): AttentionResult {
  const kDims = dims4(keys, 'k');
  const qDims = dims4(input.q, 'q');
  const started = performance.now();
  const selection = selectRetrievedBlocks(input.q, qDims, kDims.seq, kDims.heads, scale ?? 1 / Math.sqrt(qDims.dim), representatives, config);
  const selectionMs = performance.now() - started;
  const result = sparseAttention({ ...input, k: keys, causal: true, scale }, selection, { selectionMs, checkFinite: false });
  return {
    ...result,
    diagnostics: {
      meanSelectedBlocks: meanRowLength(selection),
      completeBlocks: representatives.count,
      representativeBytes: representatives.bytes,
    },
  };
}

/**
 * Training-free landmark-style block retrieval (the bench default of this package): every
 * complete block of `blockSize` keys gets a synthetic representative (mean key or Quest min/max
 * bounds) instead of a trained landmark token; each query (prefill) or decode step keeps the
 * first block, its own block and the `topK` best-scoring blocks per KV head, then attends to
 * their union through core's exact sparse executor. With `topK` covering every block it is dense.
 *
 * Deviation from the paper (documented in the README): no landmark tokens and no grouped softmax
 * — retrieved blocks are attended with one ordinary softmax, as Quest does; the paper's trained
 * method is {@link landmarkMethod}.
 *
 * @see arXiv:2305.16300 §3 (Landmark Attention: block retrieval by a per-block key)
 * @see arXiv:2406.10774 §3 (Quest: query-aware per-page min/max upper bound)
 */
export const landmarkRetrievalMethod = defineMethod({
  id: 'landmark-retrieval',
  family: 'landmark',
  description: 'Training-free landmark-style block retrieval: mean-key or Quest min/max block representatives, top-k blocks per KV head plus first and current block, exact sparse attention over their union.',
  paper: 'arXiv:2305.16300',
  configSchema: landmarkRetrievalConfigSchema,
  budgets: (sequenceLength) => blockBudgets(sequenceLength, 64, { topK: Math.max(1, Math.ceil(sequenceLength / 64)) }),
  build: (config) => ({
    capabilities: { causalConsistent: true, supportsNonCausal: false, selection: 'block', sharesSelectionAcrossGroup: true },
    prefill(input) {
      const d = validateAttentionInput(input);
      if (!d.causal) throw new ConfigError('landmark-retrieval: causal must be true (retrieval ranks blocks before each query), got false');
      const representatives = new BlockRepresentatives(config.representative as RepresentativeKind, d.batch * d.kvHeads, d.headDim, config.blockSize, Math.ceil(d.keySeq / config.blockSize));
      representatives.update(input.k, d.kDims, d.keySeq);
      return retrievalResult(input, input.k, d.scale, representatives, config);
    },
    createDecoder(shape: DecoderShape): CachedDecoder {
      const representatives = new BlockRepresentatives(config.representative as RepresentativeKind, shape.batch * shape.kvHeads, shape.headDim, config.blockSize);
      return createCachedDecoder(shape, {
        afterAppend(cache: KVCache) {
          const keys = cache.keys();
          representatives.update(keys, dims4(keys, 'k'), cache.length);
        },
        attend(q, cache) {
          return retrievalResult({ q, k: cache.keys(), v: cache.values() }, cache.keys(), shape.scale, representatives, config);
        },
        reset: () => representatives.reset(),
      });
    },
  }),
});
