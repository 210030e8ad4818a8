/**
 * Kernel + method: a hierarchical token indexer in the style of DSA's lightning indexer with
 * HISA's two-stage search (arXiv:2603.28458; DeepSeek-V3.2 `Indexer`; spec §13).
 *
 *   indexer score   I_t[s] = (Σ_{h ∈ group} q_t^h) · k_s            (one dot product per key per KV group)
 *   stage 1 (block) Î_t[j] = (Σ_h q_t^h) · mean(K_j) = mean_{s ∈ block j} I_t[s]   for complete blocks j
 *                   keep the top-c blocks; block 0 and the current block are always kept
 *   stage 2 (token) S_t = top-K { I_t[s] : s ≤ t in the kept blocks }      (all keys when t + 1 ≤ K)
 *   attention       o_t^h = Σ_{s ∈ S_t} softmax_s(scale · q_t^h·k_s) v_s
 *
 * Training-free substitute for DSA's learned indexer (separate FP8 indexer heads, ReLU, learned
 * weights): the group-summed attention logit, which ranks keys by the group's mean query and costs
 * one dot product per key, so the block representative's score is exactly the block's mean token
 * score. The diagnostic `indexerIoU` compares S_t with the flat top-K over every visible key (the
 * set DSA would choose with this scorer); HISA reports > 99% IoU.
 */
import { z } from 'zod';
import { SelectionBuilder, defineMethod, rowOffset, sparseAttention, type AttentionResult, type DecoderShape } from '@sparse-attn/core';
import { blockPooling, createCachedDecoder, runPrefill, type ForwardCall } from './cached-decoder.js';
import { dot } from './dot-product.js';
import { selectionShare, sweep } from './method-helpers.js';
import { TopKSelector } from './select-top-k.js';

/** The indexer's options. */
export const hierarchicalIndexerConfigSchema = z
  .object({
    blockSize: z.number().int().min(1).default(64).describe('Keys per block representative (stage 1 scores mean-pooled block keys).'),
    candidateBlocks: z.number().int().min(1).default(32).describe('Blocks kept by stage 1 (first and current block included); their tokens are scored in stage 2.'),
    topK: z.number().int().min(1).default(512).describe('Keys attended per query and KV group (DSA index_topk; 2048 there, scaled to CPU lengths here).'),
    iouQueries: z.number().int().min(0).default(8).describe('Queries per call whose token set is compared with the flat top-K (diagnostic indexerIoU); 0 disables.'),
    decodeIou: z.boolean().default(false).describe('Also measure indexerIoU in decode steps (costs a flat scan of the cache per step).'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.candidateBlocks * c.blockSize < c.topK) {
      ctx.addIssue({ code: 'custom', path: ['candidateBlocks'], message: `candidateBlocks × blockSize (${c.candidateBlocks} × ${c.blockSize}) must hold at least topK = ${c.topK} keys` });
    }
  });

/** Indexer options with defaults filled in. */
export type HierarchicalIndexerConfig = z.output<typeof hierarchicalIndexerConfigSchema>;


/** Scratch of one call, sized for its key length. */
class IndexerScratch {
  readonly groupQuery: Float32Array;
  readonly blockScores: Float64Array;
  readonly keptBlocks: Int32Array;
  readonly tokenScores: Float64Array;
  readonly candidates: Int32Array;
  readonly picked: Int32Array;
  readonly tokens: Int32Array;
  readonly selector: TopKSelector;
  flat: Float64Array | undefined;

  constructor(config: HierarchicalIndexerConfig, keySeq: number, headDim: number) {
    const blocks = Math.max(1, Math.ceil(keySeq / config.blockSize));
    const candidates = Math.min(keySeq, config.candidateBlocks * config.blockSize) + config.blockSize;
    this.groupQuery = new Float32Array(headDim);
    this.blockScores = new Float64Array(blocks);
    this.keptBlocks = new Int32Array(blocks);
    this.tokenScores = new Float64Array(candidates);
    this.candidates = new Int32Array(candidates);
    this.picked = new Int32Array(candidates);
    this.tokens = new Int32Array(Math.max(1, Math.min(keySeq, config.topK)));
    this.selector = new TopKSelector(Math.max(blocks, candidates));
  }
}

function indexerForward(config: HierarchicalIndexerConfig, call: ForwardCall, measureIou: boolean): AttentionResult {
  const { q, k, v, dims: d, means } = call;
  const started = performance.now();
  const bs = config.blockSize;
  const s = new IndexerScratch(config, d.keySeq, d.headDim);
  const builder = new SelectionBuilder(
    { kind: 'token', headScope: 'kv', batch: d.batch, heads: d.kvHeads, rows: d.querySeq, keySeq: d.keySeq },
    d.batch * d.kvHeads * d.querySeq * Math.min(config.topK, d.keySeq),
  );
  const sampled = new Set<number>();
  if (measureIou) for (let n = 0; n < config.iouQueries; n++) sampled.add(d.querySeq - 1 - Math.floor((n * d.querySeq) / config.iouQueries));
  let iouSum = 0;
  let iouCount = 0;
  let scanned = 0;
  let visibleTotal = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.kvHeads; h++) {
      const kBase = rowOffset(d.kDims, b, h, 0);
      for (let i = 0; i < d.querySeq; i++) {
        const t = d.queryOffset + i;
        visibleTotal += t + 1;
        if (t + 1 <= config.topK) {
          builder.pushRange(0, t + 1);
          scanned += t + 1;
          continue;
        }
        const gq = s.groupQuery;
        gq.fill(0);
        for (let g = 0; g < d.groupSize; g++) {
          const qo = rowOffset(d.qDims, b, h * d.groupSize + g, i);
          for (let c = 0; c < d.headDim; c++) gq[c]! += q.data[qo + c]!;
        }
        // Stage 1: score complete blocks by their mean key; force the first and the current block.
        const current = Math.floor(t / bs);
        const complete = Math.min(means.count, Math.floor((t + 1) / bs));
        for (let j = 0; j < complete; j++) s.blockScores[j] = dot(gq, 0, means.keyData, means.keyOffset(b, h, j), d.headDim);
        for (let j = complete; j <= current; j++) s.blockScores[j] = Infinity;
        s.blockScores[0] = Infinity;
        const kept = s.selector.select(s.blockScores, current + 1, Math.min(config.candidateBlocks, current + 1), s.keptBlocks);
        // Stage 2: score every visible token of the kept blocks, keep the top-K.
        let m = 0;
        for (let n = 0; n < kept; n++) {
          const j = s.keptBlocks[n]!;
          const end = Math.min((j + 1) * bs, t + 1);
          for (let x = j * bs; x < end; x++) {
            s.candidates[m] = x;
            s.tokenScores[m++] = dot(gq, 0, k.data, kBase + x * d.headDim, d.headDim);
          }
        }
        scanned += m;
        const count = s.selector.select(s.tokenScores, m, config.topK, s.picked);
        for (let n = 0; n < count; n++) s.tokens[n] = s.candidates[s.picked[n]!]!;
        builder.pushRow(s.tokens, count);
        if (sampled.has(i)) {
          iouSum += flatIou(s, k.data, kBase, d.headDim, t, config.topK, count);
          iouCount++;
        }
      }
    }
  }
  const selection = builder.finish();
  const selectionMs = performance.now() - started;
  const result = sparseAttention({ q, k, v, causal: true, scale: d.scale }, selection, { checkFinite: false, selectionMs });
  const diagnostics: Record<string, number> = {
    scannedShare: visibleTotal > 0 ? scanned / visibleTotal : 0,
    selectionShare: selectionShare(selectionMs, result.stats.attentionMs),
  };
  if (iouCount > 0) diagnostics['indexerIoU'] = iouSum / iouCount;
  return { output: result.output, selection, stats: result.stats, backend: result.backend, diagnostics };
}

/** IoU of the hierarchical set in `s.tokens[0..count)` with the flat top-K over keys 0..t. */
function flatIou(s: IndexerScratch, k: Float32Array, kBase: number, dim: number, t: number, topK: number, count: number): number {
  if (!s.flat || s.flat.length < t + 1) s.flat = new Float64Array(t + 1);
  const flat = s.flat;
  for (let x = 0; x <= t; x++) flat[x] = dot(s.groupQuery, 0, k, kBase + x * dim, dim);
  const top = new Int32Array(Math.min(topK, t + 1));
  const n = s.selector.select(flat, t + 1, topK, top);
  let inter = 0;
  let a = 0;
  for (let b = 0; b < n; b++) {
    while (a < count && s.tokens[a]! < top[b]!) a++;
    if (a < count && s.tokens[a] === top[b]) inter++;
  }
  return inter / (n + count - inter);
}

/**
 * The hierarchical token indexer as a registrable method. Budget sweep: K ∈ {64 … 2048} keys with
 * 4·K candidate tokens, then every key.
 *
 * @see arXiv:2603.28458 (HISA), DeepSeek-V3.2-Exp (DSA lightning indexer)
 */
export const hierarchicalIndexerMethod = defineMethod({
  id: 'hierarchical-indexer',
  family: 'nsa',
  description: 'DSA/HISA-style token top-K per KV group in two stages: mean-pooled block scores keep candidate blocks, then only their tokens are scored.',
  paper: 'arXiv:2603.28458',
  configSchema: hierarchicalIndexerConfigSchema,
  build: (config) => ({
    capabilities: { causalConsistent: true, supportsNonCausal: false, selection: 'token', sharesSelectionAcrossGroup: true },
    prefill: (input) => runPrefill('hierarchical-indexer', input, blockPooling(config.blockSize), (call) => indexerForward(config, call, true)),
    createDecoder: (shape: DecoderShape) => createCachedDecoder(shape, blockPooling(config.blockSize), (call) => indexerForward(config, call, config.decodeIou)),
  }),
  budgets: (sequenceLength) =>
    sweep(sequenceLength, 1, [64, 128, 256, 512, 1024, 2048], 'topK', 'K', 1, (x) => ({ candidateBlocks: Math.max(1, Math.ceil((4 * x) / 64)) })),
});
