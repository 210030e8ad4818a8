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
import { IvfIndex, IvfScratch, type ProbeMode } from './ivf-index.js';
import { meanRowLength } from './landmark-retrieval.js';
import { TopKScratch, topKIndices } from './top-k.js';

/** Config of {@link retrievalAttentionMethod}. */
export const retrievalAttentionConfigSchema = z
  .object({
    topK: z.number().int().min(1).default(128).describe('Keys retrieved from the ANN index per query (and KV head), on top of the static sink + recent window.'),
    cells: z.number().int().min(0).default(0).describe('k-means cells of the inverted-file index; 0 picks round(√n) for n indexed keys.'),
    probeCells: z.number().int().min(1).default(6).describe('Cells scanned per query (≈ probeCells / cells of the keys; the paper scans 1–3%).'),
    probe: z
      .enum(['centroid', 'bound'])
      .default('bound')
      .describe('Cell ranking: `centroid` = q·c; `bound` = q·c + ‖q‖·radius, an upper bound on every member\'s score (queries are out of distribution for key clusters).'),
    sinkTokens: z.number().int().min(0).default(4).describe('Initial tokens always attended (static, kept out of the index).'),
    recentTokens: z.number().int().min(1).default(64).describe('Most recent tokens always attended, the query\'s own included (static window).'),
    kmeansIterations: z.number().int().min(0).default(6).describe('Lloyd iterations of the index\'s k-means.'),
    minIndexedTokens: z.number().int().min(1).default(256).describe('Below this many keys outside the static window no index is built and those keys are attended exactly.'),
    reportRecall: z
      .boolean()
      .default(false)
      .describe('Decode: also compute the exact top-k of each step to report `annRecall` (costs a full key scan; prefill always reports it on a sample of queries).'),
    seed: z.number().int().default(1).describe('Seed of the k-means initialisation.'),
  })
  .strict();

/** Resolved config of {@link retrievalAttentionMethod}. */
export type RetrievalAttentionConfig = z.output<typeof retrievalAttentionConfigSchema>;

/** Per-stream ANN state: the index and the first position not yet inserted into it. */
interface StreamIndex {
  index: IvfIndex | undefined;
  indexedUpTo: number;
}

/** Queries sampled per stream for the prefill `annRecall` diagnostic. */
const RECALL_SAMPLE = 8;

interface AnnSelection {
  readonly selection: Selection;
  readonly scanned: number;
  readonly eligible: number;
  readonly recallSum: number;
  readonly recallCount: number;
}

/**
 * Builds the token selection: per KV head and query, sinks ∪ the ANN's top-k of the indexed
 * region ∪ unindexed keys outside the window (attended exactly) ∪ the recent window. A key's
 * score is its max over the group's query heads, so one list serves the whole GQA group.
 */
function selectAnn(
  q: Tensor,
  qDims: Dims4,
  k: Tensor,
  kDims: Dims4,
  config: RetrievalAttentionConfig,
  streams: readonly StreamIndex[],
  recallRows: (querySeq: number) => ReadonlySet<number>,
): AnnSelection {
  const querySeq = qDims.seq;
  const offset = kDims.seq - querySeq;
  const group = qDims.heads / kDims.heads;
  const builder = new SelectionBuilder(
    { kind: 'token', headScope: 'kv', batch: qDims.batch, heads: kDims.heads, rows: querySeq, keySeq: kDims.seq },
    qDims.batch * kDims.heads * querySeq * (config.topK + config.sinkTokens + config.recentTokens),
  );
  const scratch = new IvfScratch();
  const exactScratch = new TopKScratch();
  const tokens: number[] = [];
  const queryOffsets: number[] = [];
  const queryNorms: number[] = [];
  const sampled = recallRows(querySeq);
  let scanned = 0;
  let eligible = 0;
  let recallSum = 0;
  let recallCount = 0;
  for (let b = 0; b < qDims.batch; b++) {
    for (let kvh = 0; kvh < kDims.heads; kvh++) {
      const stream = streams[b * kDims.heads + kvh]!;
      const keyBase = rowOffset(kDims, b, kvh, 0);
      for (let i = 0; i < querySeq; i++) {
        const p = offset + i;
        const sinkEnd = Math.min(config.sinkTokens, p + 1);
        const windowStart = Math.max(sinkEnd, p - config.recentTokens + 1);
        tokens.length = 0;
        for (let j = 0; j < sinkEnd; j++) tokens.push(j);
        const indexedEnd = stream.index ? Math.min(windowStart, stream.indexedUpTo) : sinkEnd;
        if (stream.index && indexedEnd > sinkEnd) {
          queryOffsets.length = 0;
          queryNorms.length = 0;
          for (let g = 0; g < group; g++) {
            const qo = rowOffset(qDims, b, kvh * group + g, i);
            queryOffsets.push(qo);
            let n = 0;
            for (let c = 0; c < qDims.dim; c++) n += q.data[qo + c]! ** 2;
            queryNorms.push(Math.sqrt(n));
          }
          const before = tokens.length;
          const found = stream.index.search(q.data, queryOffsets, queryNorms, k.data, keyBase, sinkEnd, indexedEnd, config.probeCells, config.topK, config.probe as ProbeMode, scratch, tokens);
          scanned += found.scanned;
          eligible += indexedEnd - sinkEnd;
          if (sampled.has(i)) {
            recallSum += exactRecall(q.data, queryOffsets, k.data, keyBase, kDims.dim, sinkEnd, indexedEnd, config.topK, tokens.slice(before), exactScratch);
            recallCount++;
          }
        }
        // Keys outside the window that are not indexed yet (or no index at all) are attended exactly.
        for (let j = indexedEnd; j < windowStart; j++) tokens.push(j);
        for (let j = windowStart; j <= p; j++) tokens.push(j);
        builder.pushRow(tokens);
      }
    }
  }
  return { selection: builder.finish(), scanned, eligible, recallSum, recallCount };
}

/** recall@k of `found` against the exact top-k over keys `[from, to)` under the same score. */
function exactRecall(
  q: Float32Array,
  queryOffsets: readonly number[],
  keys: Float32Array,
  keyBase: number,
  dim: number,
  from: number,
  to: number,
  k: number,
  found: readonly number[],
  scratch: TopKScratch,
): number {
  const n = to - from;
  const scores = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let best = -Infinity;
    const ko = keyBase + (from + j) * dim;
    for (const qo of queryOffsets) {
      let s = 0;
      for (let c = 0; c < dim; c++) s += q[qo + c]! * keys[ko + c]!;
      if (s > best) best = s;
    }
    scores[j] = best;
  }
  const picked = new Int32Array(Math.min(k, n));
  const count = topKIndices(scores, Int32Array.from({ length: n }, (_, j) => j), n, k, picked, scratch);
  const got = new Set(found);
  let hit = 0;
  for (let x = 0; x < count; x++) if (got.has(from + picked[x]!)) hit++;
  return count === 0 ? 1 : hit / count;
}

/** Builds the index of one stream over positions `[from, to)`. */
function buildStreamIndex(k: Tensor, kDims: Dims4, b: number, h: number, from: number, to: number, config: RetrievalAttentionConfig): IvfIndex {
  const positions = Array.from({ length: to - from }, (_, j) => from + j);
  const cells = config.cells > 0 ? config.cells : Math.max(1, Math.round(Math.sqrt(positions.length)));
  return IvfIndex.build(k.data, rowOffset(kDims, b, h, 0), kDims.dim, positions, cells, config.kmeansIterations, config.seed + b * kDims.heads + h);
}

function annAttend(
  input: AttentionInput,
  config: RetrievalAttentionConfig,
  streams: readonly StreamIndex[],
  recallRows: (querySeq: number) => ReadonlySet<number>,
  buildMs: number,
): AttentionResult {
  const qDims = dims4(input.q, 'q');
  const kDims = dims4(input.k, 'k');
  const started = performance.now();
  const ann = selectAnn(input.q, qDims, input.k, kDims, config, streams, recallRows);
  const selectionMs = performance.now() - started + buildMs;
  const result = sparseAttention({ ...input, causal: true }, ann.selection, { selectionMs, checkFinite: false });
  const diagnostics: Record<string, number> = {
    meanSelectedKeys: meanRowLength(ann.selection),
    scannedShare: ann.eligible === 0 ? 0 : ann.scanned / ann.eligible,
    indexBytes: streams.reduce((total, s) => total + (s.index?.bytes ?? 0), 0),
    indexCells: streams[0]?.index?.cells ?? 0,
    indexBuildMs: buildMs,
  };
  if (ann.recallCount > 0) diagnostics['annRecall'] = ann.recallSum / ann.recallCount;
  return { ...result, diagnostics };
}

/**
 * RetrievalAttention-style ANN retrieval: an inverted-file index (k-means cells) over each KV
 * head's keys, built once from the prompt, answers each query's top-k keys by scanning only the
 * best few cells; a static set of initial (sink) and recent tokens is always attended; attention
 * runs exactly over the union through core's executor. Reports `annRecall` (recall@k against the
 * exact top-k under the same score) and `scannedShare` (keys scanned / keys indexed).
 *
 * Deviations (README): the paper's attention-aware graph index (built from query→key relations)
 * is replaced by an IVF index whose `bound` probing ranks cells by an upper bound on any member's
 * score, which serves the same purpose (queries lie outside the key distribution); the CPU/GPU
 * split and the log-sum-exp merge of two partial attentions collapse into one exact executor call.
 * Prefill queries the index causally too, so the bench can measure its selection.
 *
 * @see arXiv:2409.10516 §3 (RetrievalAttention)
 */
export const retrievalAttentionMethod = defineMethod({
  id: 'retrieval-attention',
  family: 'landmark',
  description: 'RetrievalAttention-style ANN: a k-means inverted-file index over keys, built once at prefill, returns each query\'s top-k keys from a few cells; plus sink and recent tokens; exact attention over the union.',
  paper: 'arXiv:2409.10516',
  configSchema: retrievalAttentionConfigSchema,
  budgets: (sequenceLength) =>
    doublingBudgets(32, 2048, sequenceLength, (topK) => ({ topK }), { topK: Math.max(1, sequenceLength), probeCells: Math.max(1, sequenceLength) }),
  build: (config) => ({
    capabilities: { causalConsistent: false, supportsNonCausal: false, selection: 'token', sharesSelectionAcrossGroup: true },
    prefill(input) {
      const d = validateAttentionInput(input);
      if (!d.causal) throw new ConfigError('retrieval-attention: causal must be true, got false');
      const started = performance.now();
      const build = d.keySeq - config.sinkTokens - config.recentTokens >= config.minIndexedTokens;
      const streams: StreamIndex[] = [];
      for (let b = 0; b < d.batch; b++) {
        for (let h = 0; h < d.kvHeads; h++) {
          streams.push(build ? { index: buildStreamIndex(input.k, d.kDims, b, h, config.sinkTokens, d.keySeq, config), indexedUpTo: d.keySeq } : { index: undefined, indexedUpTo: 0 });
        }
      }
      const buildMs = performance.now() - started;
      const sample = (querySeq: number) => new Set(Array.from({ length: Math.min(RECALL_SAMPLE, querySeq) }, (_, x) => querySeq - 1 - Math.floor((x * querySeq) / RECALL_SAMPLE)));
      return annAttend(input, config, streams, sample, buildMs);
    },
    createDecoder(shape: DecoderShape): CachedDecoder {
      const streams: StreamIndex[] = Array.from({ length: shape.batch * shape.kvHeads }, () => ({ index: undefined, indexedUpTo: 0 }));
      let buildMs = 0;
      const all = (querySeq: number) => new Set(config.reportRecall ? Array.from({ length: querySeq }, (_, i) => i) : []);
      const none = () => new Set<number>();
      return createCachedDecoder(shape, {
        afterAppend(cache) {
          const keys = cache.keys();
          const kDims = dims4(keys, 'k');
          const windowStart = cache.length - config.recentTokens;
          for (let b = 0; b < shape.batch; b++) {
            for (let h = 0; h < shape.kvHeads; h++) {
              const stream = streams[b * shape.kvHeads + h]!;
              if (!stream.index) {
                if (windowStart - config.sinkTokens < config.minIndexedTokens) continue;
                const started = performance.now();
                stream.index = buildStreamIndex(keys, kDims, b, h, config.sinkTokens, windowStart, config);
                stream.indexedUpTo = windowStart;
                buildMs += performance.now() - started;
                continue;
              }
              // Keys leaving the recent window join their nearest cell.
              const base = rowOffset(kDims, b, h, 0);
              for (let t = stream.indexedUpTo; t < windowStart; t++) stream.index.insert(keys.data, base + t * kDims.dim, t);
              stream.indexedUpTo = Math.max(stream.indexedUpTo, windowStart);
            }
          }
        },
        attend(q, cache) {
          const result = annAttend({ q, k: cache.keys(), v: cache.values(), scale: shape.scale }, config, streams, config.reportRecall ? all : none, buildMs);
          buildMs = 0;
          return result;
        },
        reset() {
          for (const s of streams) {
            s.index = undefined;
            s.indexedUpTo = 0;
          }
          buildMs = 0;
        },
      });
    },
  }),
});
