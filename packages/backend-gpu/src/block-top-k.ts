import { z } from 'zod';
import {
  ConfigError,
  KVCache,
  SelectionBuilder,
  defineMethod,
  rowOffset,
  sparseAttention,
  validateAttentionInput,
  validateDecoderStep,
  type AttentionDims,
  type AttentionInput,
  type BudgetPoint,
  type Selection,
  type SparseAttentionResult,
} from '@sparse-attn/core';
import { IncrementalKeyPool } from './incremental-key-pool.js';

/**
 * Config of the pooled-block top-k method, shared by its CPU path and the GPU kernels so both
 * choose the same blocks.
 */
export const blockTopKConfigSchema = z
  .object({
    blockSize: z.number().int().min(1).max(4096).default(64).describe('Keys per block: the unit that is pooled, scored and selected.'),
    queryBlockSize: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(64)
      .describe('Queries that share one selection row (a prefill query block); 64 keeps the GPU executor on its full 64-row tile.'),
    topK: z.number().int().min(0).max(1 << 20).default(16).describe('Blocks chosen by score per row, on top of the forced sink and local blocks.'),
    sinkBlocks: z.number().int().min(0).max(1 << 20).default(1).describe('Leading blocks every row keeps (attention sinks).'),
    scoring: z
      .enum(['quest', 'mean'])
      .default('quest')
      .describe("Block logit: 'quest' = Quest's per-channel max/min upper bound on q·k; 'mean' = q·(mean-pooled key), NSA-style compression."),
  })
  .strict();

/** Resolved config of the pooled-block top-k method. */
export type BlockTopKConfig = z.output<typeof blockTopKConfigSchema>;

/** Per-block key statistics of every (batch, KV head): `[slot][block][headDim]` each. */
export interface PooledKeys {
  readonly blocks: number;
  /**
   * Blocks allocated per slot (≥ `blocks`): slot s's block j starts at `(s·blockStride + j)·headDim`.
   * Defaults to `blocks`; an incrementally grown pool (the decoder's) keeps spare blocks.
   */
  readonly blockStride?: number;
  readonly mean: Float32Array;
  readonly max: Float32Array;
  readonly min: Float32Array;
}

/** CPU block pooling (mean, per-channel max and min), the reference for the GPU pooling kernel. */
export function poolKeyBlocks(input: AttentionInput, blockSize: number): PooledKeys {
  const d = validateAttentionInput(input, { checkFinite: false });
  const blocks = Math.ceil(d.keySeq / blockSize);
  const slots = d.batch * d.kvHeads;
  const mean = new Float32Array(slots * blocks * d.headDim);
  const max = new Float32Array(mean.length).fill(-Infinity);
  const min = new Float32Array(mean.length).fill(Infinity);
  const k = input.k.data;
  for (let slot = 0; slot < slots; slot++) {
    const base = rowOffset(d.kDims, Math.floor(slot / d.kvHeads), slot % d.kvHeads, 0);
    for (let j = 0; j < blocks; j++) {
      const end = Math.min((j + 1) * blockSize, d.keySeq);
      const out = (slot * blocks + j) * d.headDim;
      for (let t = j * blockSize; t < end; t++) {
        const row = base + t * d.headDim;
        for (let c = 0; c < d.headDim; c++) {
          const x = k[row + c]!;
          mean[out + c]! += x;
          if (x > max[out + c]!) max[out + c] = x;
          if (x < min[out + c]!) min[out + c] = x;
        }
      }
      const inv = 1 / (end - j * blockSize);
      for (let c = 0; c < d.headDim; c++) mean[out + c]! *= inv;
    }
  }
  return { blocks, mean, max, min };
}

/** Geometry of one selection row: its queries and the blocks it may see. */
export interface RowGeometry {
  readonly rowQueries: number;
  readonly firstPos: number;
  readonly lastPos: number;
  /** Blocks with a key visible to at least one of the row's queries. */
  readonly visible: number;
  /** First block holding one of the row's own positions (forced, like the sinks). */
  readonly localStart: number;
}

/** Row geometry shared by CPU and GPU (the kernels compute the same numbers). */
export function rowGeometry(d: Pick<AttentionDims, 'querySeq' | 'queryOffset'>, config: Pick<BlockTopKConfig, 'blockSize' | 'queryBlockSize'>, blocks: number, r: number): RowGeometry {
  const rowQueries = Math.min(config.queryBlockSize, d.querySeq - r * config.queryBlockSize);
  const firstPos = d.queryOffset + r * config.queryBlockSize;
  const lastPos = firstPos + rowQueries - 1;
  return { rowQueries, firstPos, lastPos, visible: Math.min(blocks, Math.floor(lastPos / config.blockSize) + 1), localStart: Math.floor(firstPos / config.blockSize) };
}

/** Most blocks one row can pick: the CSR stride of the GPU selection. */
export function maxPicksPerRow(config: Pick<BlockTopKConfig, 'blockSize' | 'queryBlockSize' | 'topK' | 'sinkBlocks'>, blocks: number): number {
  return Math.max(1, Math.min(blocks, config.sinkBlocks + Math.ceil(config.queryBlockSize / config.blockSize) + 1 + config.topK));
}

/**
 * CPU block importance per (batch·KV head, row, block): the softmax over visible blocks of each
 * query's block logits, summed over the row's queries and the GQA group's heads (see the
 * scoring kernel for the equations). Float64 accumulation; O(rows × blocks × queries × headDim).
 */
export function scoreKeyBlocks(input: AttentionInput, pooled: PooledKeys, config: BlockTopKConfig): Float64Array {
  const d = validateAttentionInput(input, { checkFinite: false });
  const rows = Math.ceil(d.querySeq / config.queryBlockSize);
  const slots = d.batch * d.kvHeads;
  const scores = new Float64Array(slots * rows * pooled.blocks);
  const logits = new Float64Array(pooled.blocks);
  const stride = pooled.blockStride ?? pooled.blocks;
  const quest = config.scoring === 'quest';
  const q = input.q.data;
  for (let slot = 0; slot < slots; slot++) {
    const b = Math.floor(slot / d.kvHeads);
    const kvh = slot % d.kvHeads;
    for (let r = 0; r < rows; r++) {
      const g = rowGeometry(d, config, pooled.blocks, r);
      const out = (slot * rows + r) * pooled.blocks;
      for (let head = kvh * d.groupSize; head < (kvh + 1) * d.groupSize; head++) {
        for (let i = r * config.queryBlockSize; i < r * config.queryBlockSize + g.rowQueries; i++) {
          const qo = rowOffset(d.qDims, b, head, i);
          const visible = Math.min(g.visible, Math.floor((d.queryOffset + i) / config.blockSize) + 1);
          let max = -Infinity;
          for (let j = 0; j < visible; j++) {
            const po = (slot * stride + j) * d.headDim;
            let s = 0;
            if (quest) {
              for (let c = 0; c < d.headDim; c++) {
                const x = q[qo + c]!;
                s += Math.max(x * pooled.max[po + c]!, x * pooled.min[po + c]!);
              }
            } else {
              for (let c = 0; c < d.headDim; c++) s += q[qo + c]! * pooled.mean[po + c]!;
            }
            logits[j] = s * d.scale;
            if (logits[j]! > max) max = logits[j]!;
          }
          let sum = 0;
          for (let j = 0; j < visible; j++) sum += Math.exp(logits[j]! - max);
          for (let j = 0; j < visible; j++) scores[out + j]! += Math.exp(logits[j]! - max) / sum;
        }
      }
    }
  }
  return scores;
}

/**
 * Top-k over block scores with forced sink and local blocks; ties go to the lower block index.
 * Returns a block-level, per-KV-head selection with one row per query block.
 */
export function selectTopKBlocks(d: AttentionDims, scores: Float64Array, blocks: number, config: BlockTopKConfig): Selection {
  const rows = Math.ceil(d.querySeq / config.queryBlockSize);
  const slots = d.batch * d.kvHeads;
  const builder = new SelectionBuilder(
    { kind: 'block', blockSize: config.blockSize, headScope: 'kv', batch: d.batch, heads: d.kvHeads, rows, queryBlockSize: config.queryBlockSize, keySeq: d.keySeq },
    slots * rows * maxPicksPerRow(config, blocks),
  );
  const order: number[] = [];
  for (let slot = 0; slot < slots; slot++) {
    for (let r = 0; r < rows; r++) {
      const g = rowGeometry(d, config, blocks, r);
      const base = (slot * rows + r) * blocks;
      const key = (j: number) => (j < config.sinkBlocks || j >= g.localStart ? Infinity : scores[base + j]!);
      order.length = 0;
      let forced = 0;
      for (let j = 0; j < g.visible; j++) {
        order.push(j);
        if (key(j) === Infinity) forced++;
      }
      order.sort((a, b) => key(b) - key(a) || a - b);
      const picked = order.slice(0, Math.min(g.visible, forced + config.topK)).sort((a, b) => a - b);
      builder.pushRow(picked);
    }
  }
  return builder.finish();
}

/** The whole CPU path: pool → score → top-k → core's exact sparse executor. */
export function blockTopKAttention(input: AttentionInput, config: BlockTopKConfig): SparseAttentionResult {
  const d = validateAttentionInput(input);
  const started = performance.now();
  const pooled = poolKeyBlocks(input, config.blockSize);
  return attendPooled(input, d, pooled, config, started, d.keySeq);
}

/**
 * Score → top-k → exact sparse attention over keys already pooled (`pooled` must cover every key
 * of `input`); `started` is when selection work began, `keysPooled` the keys this call pooled.
 */
function attendPooled(input: AttentionInput, d: AttentionDims, pooled: PooledKeys, config: BlockTopKConfig, started: number, keysPooled: number): SparseAttentionResult {
  const scores = scoreKeyBlocks(input, pooled, config);
  const selection = selectTopKBlocks(d, scores, pooled.blocks, config);
  const selectionMs = performance.now() - started;
  const result = sparseAttention(input, selection, { selectionMs, checkFinite: false, validateSelection: false });
  return { ...result, diagnostics: { blocksPerRow: selection.indices.length / Math.max(1, selection.offsets.length - 1), keyBlocks: pooled.blocks, keysPooled } };
}

/** Budget sweep: topK from sparse to every block (the last point equals dense attention). */
export function blockTopKBudgets(sequenceLength: number, blockSize = 64): readonly BudgetPoint[] {
  const blocks = Math.ceil(sequenceLength / blockSize);
  const points: BudgetPoint[] = [];
  for (const topK of [2, 4, 8, 16, 32, 64]) {
    if (topK < blocks) points.push({ label: `K=${topK}`, config: { topK } });
  }
  points.push({ label: `K=${blocks} (all)`, config: { topK: blocks } });
  return points;
}

/**
 * Pooled-block top-k attention (NSA / Quest style): keys are pooled per block, every query block
 * scores the visible key blocks (Quest's max/min bound or NSA-style mean-pooled keys), keeps the
 * sinks, its own blocks and the top-k others, and attends exactly over them. The same selection
 * runs on the GPU through `GpuBackend.blockTopKAttention`; this definition is the CPU path.
 *
 * Deviations from the papers: NSA scores with a learned compression MLP and selects per query
 * token; Quest scores per decode query with the bound alone. Here a training-free pooling is
 * used and a query block shares its row (the unit the GPU executor tiles), with the per-query
 * softmax over block logits summed across the row (NSA's p_slc aggregation) instead of a max.
 *
 * @see arXiv:2502.11089 (NSA) §3.3.2 selection; arXiv:2406.10774 (Quest) §3 criticality bound.
 */
export const blockTopKMethod = defineMethod({
  id: 'block-top-k',
  family: 'backend-gpu',
  description: 'Pooled-block top-k (NSA/Quest style): block pooling, block scoring, top-k blocks, exact sparse attention; CPU path of the GPU block-sparse pipeline.',
  paper: 'arXiv:2406.10774',
  configSchema: blockTopKConfigSchema,
  budgets: (sequenceLength) => blockTopKBudgets(sequenceLength),
  build: (config) => ({
    // Not causal-consistent: in prefill the row's own (partial) block is pooled over all its keys, and its
    // logit enters each query's softmax normaliser, so with GQA the summed block scores (and thus the
    // top-k order) can differ from a decode step that sees only the keys so far.
    capabilities: { causalConsistent: false, supportsNonCausal: false, selection: 'block', sharesSelectionAcrossGroup: true },
    prefill: (input) => {
      if (input.causal === false) throw new ConfigError('block-top-k: causal must be true (selection rows follow causal positions), got false');
      return blockTopKAttention(input, config);
    },
    // A step equals `blockTopKAttention` over the cache (same blocks, same output) at the cost of
    // pooling only the new keys: the pool is kept across steps, and only the new tokens are
    // scanned for NaN (the cache was checked as it grew).
    createDecoder: (shape) => {
      const cache = new KVCache({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim: shape.valueDim ?? shape.headDim });
      const pool = new IncrementalKeyPool({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, blockSize: config.blockSize });
      return {
        get length() {
          return cache.length;
        },
        step(input) {
          validateDecoderStep(shape, input, cache.length);
          cache.append(input.k, input.v);
          const started = performance.now();
          const attention = { q: input.q, k: cache.keys(), v: cache.values(), causal: true, scale: shape.scale };
          const keysPooled = pool.update(attention.k);
          return attendPooled(attention, validateAttentionInput(attention, { checkFinite: false }), pool.view(), config, started, keysPooled);
        },
        reset: () => {
          cache.reset();
          pool.reset();
        },
      };
    },
  }),
});
