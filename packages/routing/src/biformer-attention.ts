/**
 * BiFormer bi-level routing attention, 1-D causal version for LLM attention (spec routing.md §14).
 *
 *   regions:   key region j = keys [jR, (j+1)R); query region ρ = queries at positions [ρR, (ρ+1)R)
 *   pooling:   K̄_j = mean of the region's keys, Q̄_ρ = mean of the region's queries
 *   affinity:  A[ρ, j] = Q̄_ρ·K̄_j   (`head` scope: per query head; `shared`: Σ over heads, BiFormer's
 *              one graph from the full channel dimension)
 *   routing:   I_ρ = top-k_j A[ρ, j] over j ≤ ρ (causal; all j when non-causal), the diagonal ρ
 *              forced in when `includeDiagonal` (our causal stand-in for BiFormer's LePE local term)
 *   attention: o_i = exact softmax attention over the keys of the regions in I_ρ(i), causally masked
 *              (core's sparse executor on a block-level selection)
 *
 * Cost: routing O((S/R)²·D) per head, attention O(S·k·R·D). Decode keeps running region sums,
 * so a step costs O((t/R)·D) routing plus O(k·R·D) attention; its query representative is the
 * running mean of the current region's queries (equal to the prefill's at each region's end).
 */
import {
  ConfigError,
  KVCache,
  SelectionBuilder,
  defineMethod,
  dims4,
  rowOffset,
  sparseAttention,
  validateAttentionInput,
  validateDecoderStep,
  type AttentionDecoder,
  type AttentionInput,
  type AttentionResult,
  type BudgetPoint,
  type DecoderShape,
  type Selection,
} from '@sparse-attn/core';
import { z } from 'zod';
import { selectTopKPositions } from './select-top-k-positions.js';

/** Config of the `biformer` method. */
export const biformerConfigSchema = z
  .object({
    regionSize: z
      .number().int().min(1).default(64)
      .describe('Tokens R per region (the 1-D analogue of BiFormer\'s S×S window grid).'),
    topK: z
      .number().int().min(1).default(4)
      .describe('Key regions k each query region routes to (BiFormer topk; a value ≥ the region count routes every region: dense).'),
    includeDiagonal: z
      .boolean().default(true)
      .describe('Always route a query region to its own region (one of the k): local context, standing in for BiFormer\'s LePE term.'),
    routingScope: z
      .enum(['head', 'shared'])
      .default('head')
      .describe('`head`: one routing graph per query head; `shared`: one graph for all heads from the full channel dimension (BiFormer reference).'),
  })
  .strict();

/** Resolved `biformer` config. */
export type BiformerConfig = z.output<typeof biformerConfigSchema>;

/**
 * Picks the routed regions of one query region: `scores[0..allowed)` are its affinities, `own`
 * its own region. Writes ascending region ids to `out`, returns how many.
 */
function chooseRegions(scores: Float32Array, allowed: number, own: number, config: BiformerConfig, out: Int32Array, scratch: Float32Array): number {
  if (config.includeDiagonal && own < allowed) scores[own] = Infinity;
  return selectTopKPositions(scores, 0, allowed, config.topK, out, scratch);
}

/** Means of `count` rows starting at `offset` into `target[targetOffset..)` (float64). */
function meanRows(data: Float32Array, offset: number, count: number, dim: number, target: Float64Array, targetOffset: number): void {
  for (let c = 0; c < dim; c++) target[targetOffset + c] = 0;
  for (let r = 0; r < count; r++) for (let c = 0; c < dim; c++) target[targetOffset + c]! += data[offset + r * dim + c]!;
  for (let c = 0; c < dim; c++) target[targetOffset + c]! /= count;
}

function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, dim: number): number {
  let s = 0;
  for (let c = 0; c < dim; c++) s += a[ao + c]! * b[bo + c]!;
  return s;
}

/**
 * BiFormer prefill: pooled region routing, then exact attention over the routed regions.
 *
 * @see arXiv:2303.08810 §3.2 (BiFormer: Vision Transformer with Bi-Level Routing Attention, CVPR 2023)
 */
export function biformerAttention(input: AttentionInput, config: BiformerConfig): AttentionResult {
  const started = performance.now();
  const d = validateAttentionInput(input);
  const R = config.regionSize;
  const { batch, queryHeads, kvHeads, groupSize, keySeq, querySeq, queryOffset, headDim: dim, causal } = d;
  const keyRegions = Math.ceil(keySeq / R);
  const firstRegion = Math.floor(queryOffset / R);
  const queryRegions = Math.floor((keySeq - 1) / R) - firstRegion + 1;
  const aligned = queryOffset % R === 0;
  const queryBlockSize = aligned ? R : 1;
  const rowsPerHead = Math.ceil(querySeq / queryBlockSize);
  const keyMeans = new Float64Array(batch * kvHeads * keyRegions * dim);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < kvHeads; h++) {
      const base = rowOffset(d.kDims, b, h, 0);
      for (let j = 0; j < keyRegions; j++) meanRows(input.k.data, base + j * R * dim, Math.min(R, keySeq - j * R), dim, keyMeans, ((b * kvHeads + h) * keyRegions + j) * dim);
    }
  }
  // Query region means over the queries this call holds (a chunk may start mid-region).
  const queryMeans = new Float64Array(batch * queryHeads * queryRegions * dim);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < queryHeads; h++) {
      const base = rowOffset(d.qDims, b, h, 0);
      for (let r = 0; r < queryRegions; r++) {
        const start = Math.max(queryOffset, (firstRegion + r) * R);
        const end = Math.min(keySeq, (firstRegion + r + 1) * R);
        meanRows(input.q.data, base + (start - queryOffset) * dim, end - start, dim, queryMeans, ((b * queryHeads + h) * queryRegions + r) * dim);
      }
    }
  }
  const shared = config.routingScope === 'shared';
  const selectionHeads = shared ? kvHeads : queryHeads;
  const builder = new SelectionBuilder({ kind: 'block', blockSize: R, headScope: shared ? 'kv' : 'query', batch, heads: selectionHeads, rows: rowsPerHead, queryBlockSize, keySeq }, batch * selectionHeads * rowsPerHead * Math.min(config.topK, keyRegions));
  const scores = new Float32Array(keyRegions);
  const scratch = new Float32Array(keyRegions);
  const routed = new Int32Array(queryRegions * Math.min(config.topK, keyRegions));
  const routedCount = new Int32Array(queryRegions);
  const stride = Math.min(config.topK, keyRegions);
  for (let b = 0; b < batch; b++) {
    for (let sh = 0; sh < selectionHeads; sh++) {
      if (!shared || sh === 0) {
        for (let r = 0; r < queryRegions; r++) {
          const own = firstRegion + r;
          const allowed = causal ? own + 1 : keyRegions;
          for (let j = 0; j < allowed; j++) {
            let s = 0;
            const heads = shared ? queryHeads : 1;
            for (let x = 0; x < heads; x++) {
              const h = shared ? x : sh;
              s += dot(queryMeans, ((b * queryHeads + h) * queryRegions + r) * dim, keyMeans, ((b * kvHeads + Math.floor(h / groupSize)) * keyRegions + j) * dim, dim);
            }
            scores[j] = s;
          }
          routedCount[r] = chooseRegions(scores, allowed, own, config, routed.subarray(r * stride, (r + 1) * stride), scratch);
        }
      }
      for (let row = 0; row < rowsPerHead; row++) {
        const r = aligned ? row : Math.floor((queryOffset + row) / R) - firstRegion;
        builder.pushRow(routed.subarray(r * stride, r * stride + routedCount[r]!));
      }
    }
  }
  const selection = builder.finish();
  const selectionMs = performance.now() - started;
  const { output, stats, backend } = sparseAttention(input, selection, { selectionMs, validateSelection: false, checkFinite: false });
  return { output, selection, stats, backend, diagnostics: biformerDiagnostics(config, keyRegions, stats.pairs / (batch * queryHeads * querySeq)) };
}

function biformerDiagnostics(config: BiformerConfig, regions: number, keysPerQuery: number): Record<string, number> {
  return { regions, regionSize: config.regionSize, routedRegions: Math.min(config.topK, regions), keysPerQuery };
}

/** Incremental BiFormer decode: running region sums, so the prompt is never re-pooled. */
export class BiformerDecoder implements AttentionDecoder {
  private readonly shape: DecoderShape;
  private readonly config: BiformerConfig;
  private readonly cache: KVCache;
  private keySums = new Float64Array(0);
  private regionCapacity = 0;
  private readonly querySums: Float64Array;
  private queryCount = 0;

  constructor(shape: DecoderShape, config: BiformerConfig) {
    this.shape = shape;
    this.config = config;
    this.cache = new KVCache({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim: shape.valueDim ?? shape.headDim });
    this.querySums = new Float64Array(shape.batch * shape.queryHeads * shape.headDim);
  }

  /** Tokens in the cache. */
  get length(): number {
    return this.cache.length;
  }

  /** Appends the new tokens and attends each of their queries to its routed regions. */
  step(input: AttentionInput): AttentionResult {
    const started = performance.now();
    const d = validateDecoderStep(this.shape, input, this.cache.length);
    const first = this.cache.length;
    this.cache.append(input.k, input.v);
    const { batch, queryHeads, kvHeads, groupSize, headDim: dim, querySeq } = d;
    const R = this.config.regionSize;
    const total = first + querySeq;
    this.reserveRegions(Math.ceil(total / R));
    const kd = dims4(input.k, 'k');
    const qd = dims4(input.q, 'q');
    const shared = this.config.routingScope === 'shared';
    const selectionHeads = shared ? kvHeads : queryHeads;
    const maxRegions = Math.ceil(total / R);
    const rows = Array.from({ length: batch * selectionHeads * querySeq }, () => new Int32Array(0));
    const scores = new Float32Array(maxRegions);
    const scratch = new Float32Array(maxRegions);
    const out = new Int32Array(Math.min(this.config.topK, maxRegions));
    const queryMean = new Float64Array(queryHeads * dim);
    const keyMean = new Float64Array(dim);
    for (let i = 0; i < querySeq; i++) {
      const position = first + i;
      const own = Math.floor(position / R);
      if (position % R === 0) this.queryCount = 0;
      this.queryCount++;
      for (let b = 0; b < batch; b++) {
        for (let h = 0; h < kvHeads; h++) {
          const src = rowOffset(kd, b, h, i);
          const o = ((b * kvHeads + h) * this.regionCapacity + own) * dim;
          if (position % R === 0) this.keySums.fill(0, o, o + dim);
          for (let c = 0; c < dim; c++) this.keySums[o + c]! += input.k.data[src + c]!;
        }
        for (let h = 0; h < queryHeads; h++) {
          const src = rowOffset(qd, b, h, i);
          const o = (b * queryHeads + h) * dim;
          if (this.queryCount === 1) this.querySums.fill(0, o, o + dim);
          for (let c = 0; c < dim; c++) this.querySums[o + c]! += input.q.data[src + c]!;
          for (let c = 0; c < dim; c++) queryMean[h * dim + c] = this.querySums[o + c]! / this.queryCount;
        }
        for (let sh = 0; sh < selectionHeads; sh++) {
          const allowed = own + 1;
          for (let j = 0; j < allowed; j++) {
            const count = j < own ? R : position - own * R + 1;
            let s = 0;
            const heads = shared ? queryHeads : 1;
            for (let x = 0; x < heads; x++) {
              const h = shared ? x : sh;
              const ko = ((b * kvHeads + Math.floor(h / groupSize)) * this.regionCapacity + j) * dim;
              for (let c = 0; c < dim; c++) keyMean[c] = this.keySums[ko + c]! / count;
              s += dot(queryMean, h * dim, keyMean, 0, dim);
            }
            scores[j] = s;
          }
          const n = chooseRegions(scores, allowed, own, this.config, out, scratch);
          rows[(b * selectionHeads + sh) * querySeq + i] = out.slice(0, n);
        }
      }
    }
    const builder = new SelectionBuilder({ kind: 'block', blockSize: R, headScope: shared ? 'kv' : 'query', batch, heads: selectionHeads, rows: querySeq, keySeq: total });
    for (const row of rows) builder.pushRow(row);
    const selection: Selection = builder.finish();
    const selectionMs = performance.now() - started;
    const { output, stats, backend } = sparseAttention({ q: input.q, k: this.cache.keys(), v: this.cache.values(), causal: true, scale: d.scale }, selection, { selectionMs, validateSelection: false, checkFinite: false });
    return { output, selection, stats, backend, diagnostics: biformerDiagnostics(this.config, maxRegions, stats.pairs / (batch * queryHeads * querySeq)) };
  }

  /** Empties the cache and the region sums. */
  reset(): void {
    this.cache.reset();
    this.queryCount = 0;
  }

  private reserveRegions(needed: number): void {
    if (needed <= this.regionCapacity) return;
    const capacity = Math.max(needed, this.regionCapacity * 2, 16);
    const heads = this.shape.batch * this.shape.kvHeads;
    const dim = this.shape.headDim;
    const grown = new Float64Array(heads * capacity * dim);
    for (let bh = 0; bh < heads; bh++) grown.set(this.keySums.subarray(bh * this.regionCapacity * dim, (bh + 1) * this.regionCapacity * dim), bh * capacity * dim);
    this.keySums = grown;
    this.regionCapacity = capacity;
  }
}

/** Budget sweep over k (routed regions), sparsest first, ending with every region routed (dense). */
export function biformerBudgets(sequenceLength: number): BudgetPoint[] {
  const regionSize = sequenceLength >= 1024 ? 64 : 16;
  const regions = Math.ceil(sequenceLength / regionSize);
  const points: BudgetPoint[] = [];
  for (let k = 2; k < regions && k <= 64; k *= 2) points.push({ label: `R=${regionSize} k=${k}`, config: { regionSize, topK: k } });
  points.push({ label: `R=${regionSize} k=all (dense)`, config: { regionSize, topK: regions } });
  return points;
}

/**
 * BiFormer bi-level routing attention as a registrable method (1-D causal LLM version).
 *
 * @see arXiv:2303.08810 §3.2 (BiFormer, Zhu et al., CVPR 2023)
 */
export const biformerMethod = defineMethod({
  id: 'biformer',
  family: 'routing',
  description: 'BiFormer bi-level routing attention (1-D causal): mean-pooled region routing to the top-k key regions, exact attention over their tokens.',
  paper: 'arXiv:2303.08810',
  configSchema: biformerConfigSchema,
  build: (config) => ({
    capabilities: { causalConsistent: false, supportsNonCausal: true, selection: 'block', sharesSelectionAcrossGroup: config.routingScope === 'shared' },
    prefill: (input) => biformerAttention(input, config),
    createDecoder: (shape) => {
      if (!(Number.isInteger(shape.headDim) && shape.headDim > 0)) throw new ConfigError(`biformer: decoder headDim must be a positive integer, got ${shape.headDim}`);
      return new BiformerDecoder(shape, config);
    },
  }),
  budgets: biformerBudgets,
});
