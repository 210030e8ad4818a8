/**
 * The compress-once KV-dropping methods as registrable attention methods (core `defineMethod`):
 * SnapKV, SpecKV's per-layer compression, PyramidKV, TOVA, key-norm and random. Each is a scorer
 * ({@link scoreKeys}) + pooling + the top-k-plus-window selection, applied by
 * {@link compressedAttention}. Model-level use (evicting from a model's caches, SpecKV's draft
 * lookahead) lives in `press-policy.ts` and `speckv.ts`.
 */
import { z } from 'zod';
import { defineMethod, type BudgetPoint, type MethodDefinition } from '@sparse-attn/core';
import { compressedAttention, createCompressingDecoder, type CompressionPlanner } from './compressed-attention.js';
import type { LayerCompression } from './compress-layer.js';
import type { KvScorerName } from './kv-scorers.js';
import { observerScores } from './observer-scores.js';
import { selectPromptTokens } from './select-prompt-tokens.js';
import { pyramidBudgets, resolveCapacity } from './select-kept-entries.js';

interface BudgetDefaults {
  readonly capacity: number;
  readonly window: number;
  readonly kernel: number;
  readonly pooling: 'max' | 'avg' | 'none';
  readonly reduction: 'max' | 'mean' | 'sum';
}

/** The budget, window and pooling fields every compress-once method shares (defaults per method). */
export function budgetFields(d: BudgetDefaults) {
  return {
    capacity: z.number().int().min(1).default(d.capacity).describe('Entries kept per KV head, window included (C, max_capacity_prompt). Ignored when keepRatio is set.'),
    keepRatio: z.number().gt(0).max(1).nullable().default(null).describe('Share of the context kept per KV head, in (0, 1]; overrides capacity when set (kvpress: 1 − compression_ratio; kvpress#102 asked for both forms).'),
    window: z.number().int().min(0).default(d.window).describe('Trailing entries always kept; their queries are the observers (window_size w).'),
    kernel: z.number().int().min(1).refine((k) => k % 2 === 1, 'kernel must be odd (symmetric padding kernel // 2)').default(d.kernel).describe('Pooling kernel along the sequence (odd; padding kernel // 2).'),
    pooling: z.enum(['max', 'avg', 'none']).default(d.pooling).describe('Score smoothing before top-k: max_pool1d, avg_pool1d or none.'),
    reduction: z.enum(['max', 'mean', 'sum']).default(d.reduction).describe('How observer queries and the query heads of a GQA group combine into one score per KV head.'),
  };
}

/** Rejects an absolute capacity below the window (the window alone would not fit). */
function capacityCoversWindow(c: { capacity: number; keepRatio: number | null; window: number }, ctx: z.RefinementCtx): void {
  if (c.keepRatio === null && c.capacity < c.window) {
    ctx.addIssue({ code: 'custom', path: ['capacity'], message: `capacity ${c.capacity} is smaller than the window ${c.window}` });
  }
}

/** The last `count` (at least 1, at most `querySeq`) local query indices. */
export function lastQueries(querySeq: number, count: number): Int32Array {
  const n = Math.max(1, Math.min(querySeq, count));
  return Int32Array.from({ length: n }, (_, i) => querySeq - n + i);
}

/** The parsed budget fields (see {@link budgetFields}). */
interface Budgeted {
  readonly capacity: number;
  readonly keepRatio: number | null;
  readonly window: number;
  readonly kernel: number;
  readonly pooling: 'max' | 'avg' | 'none';
  readonly reduction: 'max' | 'mean' | 'sum';
}

/**
 * Budget sweep shared by the methods: capacities 64…2048 that lie above the method's protected
 * window and below the length, then every key. A capacity at or below the window keeps the window
 * alone (no scored entry), which makes every method with that window select the same entries
 * (SpecPC and PyramidKV, both w = 64, once reported identical figures at C = 64); the full point
 * is never below the window, so it is a valid config at every length.
 */
export function capacitySweep(sequenceLength: number, window: number): BudgetPoint[] {
  const points = [64, 128, 256, 512, 1024, 2048].filter((c) => c > window && c < sequenceLength).map((c) => ({ label: `C=${c}`, config: { capacity: c } }));
  return [...points, { label: `C=${sequenceLength} (full)`, config: { capacity: Math.max(1, window, sequenceLength) } }];
}

/** Builds a compress-once method from a scorer and a planner of its window/capacity. */
function compressOnceMethod<S extends z.ZodType<{ capacity: number; keepRatio: number | null; window: number }>>(definition: {
  id: string;
  description: string;
  paper?: string;
  scorer: KvScorerName;
  schema: S;
  plan: (config: z.output<S>) => CompressionPlanner;
}): MethodDefinition<S> {
  const defaultWindow = definition.schema.parse({}).window;
  return defineMethod({
    id: definition.id,
    family: 'draft-kv',
    description: definition.description,
    paper: definition.paper,
    configSchema: definition.schema,
    budgets: (sequenceLength) => capacitySweep(sequenceLength, defaultWindow),
    build: (config) => {
      const plan = definition.plan(config);
      return {
        capabilities: { causalConsistent: false, supportsNonCausal: false, selection: 'token', sharesSelectionAcrossGroup: true },
        prefill: (input) => compressedAttention(input, plan),
        createDecoder: (shape) => createCompressingDecoder(shape, plan),
      };
    },
  });
}

/** The planner of a plain window method: window `w`, capacity resolved on the call's length, the window's queries observe. */
function windowPlan(scorer: KvScorerName, config: Budgeted, extra: Partial<LayerCompression> = {}): CompressionPlanner {
  return (keySeq, querySeq) => ({
    scorer,
    window: config.window,
    capacity: resolveCapacity(config, keySeq, config.window),
    pooling: config.pooling,
    kernel: config.kernel,
    reduction: config.reduction,
    observers: lastQueries(querySeq, config.window),
    ...extra,
  });
}

const snapKvSchema = z.object(budgetFields({ capacity: 1024, window: 32, kernel: 7, pooling: 'max', reduction: 'mean' })).strict().superRefine(capacityCoversWindow);

/**
 * SnapKV: the last `w` queries of the prompt observe; per KV head keep the top `C − w` older
 * entries by pooled window attention, plus the window. Defaults: the paper's LongBench configs
 * (w = 32, k = 7, max pooling, C = 1024); scores are averaged over the window and the GQA group
 * (the original sums over the window, which ranks identically).
 *
 * @see arXiv:2404.14469
 */
export const snapKvMethod = compressOnceMethod({
  id: 'snapkv',
  description: 'SnapKV: window queries score older KV entries (pooled softmax attention); keep top C − w per KV head plus the window.',
  paper: 'arXiv:2404.14469',
  scorer: 'observed-attention',
  schema: snapKvSchema,
  plan: (config) => windowPlan('observed-attention', config),
});

const specKvLayerSchema = z
  .object({
    ...budgetFields({ capacity: 1024, window: 32, kernel: 7, pooling: 'max', reduction: 'max' }),
    lookahead: z.number().int().min(0).default(0).describe("Trailing queries/keys of the call that are the draft's lookahead tokens (L): observers and window are the last w + L + 1, the budget C + L + 1 (compress_kv before the crop)."),
  })
  .strict()
  .superRefine(capacityCoversWindow);

/**
 * SpecKV's per-layer compression (`compress_kv`) on a call holding `[prompt ‖ lookahead]`: the
 * observers are the last `w + 1` prompt queries and all `L` lookahead queries, scores are softmax
 * attention over the non-window keys, max over the GQA group and the observers, max-pooled
 * (kernel 7), and each KV head keeps its top `C − w` plus the `W' = w + L + 1` window. The crop to
 * `C` and decoding at the original positions happen in {@link specKvGenerate} on a model.
 *
 * @see arXiv:2506.08373 §3.1
 */
export const specKvLayerMethod = compressOnceMethod({
  id: 'speckv',
  description: "SpecKV per-layer compression: last w+1 prompt queries plus the draft's L lookahead queries score the keys (max/max, max-pool 7); keep top C − w per KV head plus the w+L+1 window.",
  paper: 'arXiv:2506.08373',
  scorer: 'observed-attention',
  schema: specKvLayerSchema,
  plan: (config) => (keySeq, querySeq) => {
    const window = config.window + config.lookahead + 1;
    const promptLength = Math.max(1, keySeq - config.lookahead);
    const capacity = Math.min(keySeq, resolveCapacity(config, promptLength, config.window) + config.lookahead + 1);
    return { scorer: 'observed-attention', window, capacity, pooling: config.pooling, kernel: config.kernel, reduction: config.reduction, observers: lastQueries(querySeq, window) };
  },
});

const pyramidKvSchema = z
  .object({
    ...budgetFields({ capacity: 1024, window: 64, kernel: 5, pooling: 'avg', reduction: 'mean' }),
    layer: z.number().int().min(0).default(0).describe('Index of the layer this instance serves (budgets fall with depth).'),
    layers: z.number().int().min(1).default(32).describe('Decoder layers of the model; the per-layer budgets average to capacity.'),
    beta: z.number().gt(0).default(20).describe('Pyramid steepness β: the last layer keeps (C − w) / β older entries.'),
  })
  .strict()
  .superRefine(capacityCoversWindow)
  .superRefine((c, ctx) => {
    if (c.layer >= c.layers) ctx.addIssue({ code: 'custom', path: ['layer'], message: `layer ${c.layer} is not below layers ${c.layers}` });
  });

/**
 * PyramidKV: SnapKV scoring with a per-layer budget falling linearly with depth (kvpress
 * defaults: w = 64, avg-pool 5, β = 20); this instance serves layer `layer` of `layers`.
 *
 * @see arXiv:2406.02069
 */
export const pyramidKvMethod = compressOnceMethod({
  id: 'pyramidkv',
  description: 'PyramidKV: SnapKV scoring with per-layer budgets falling linearly with depth (sum over layers = layers · C).',
  paper: 'arXiv:2406.02069',
  scorer: 'observed-attention',
  schema: pyramidKvSchema,
  plan: (config) => (keySeq, querySeq) => {
    const total = resolveCapacity(config, keySeq, config.window);
    const capacity = pyramidBudgets(keySeq, total, config.window, config.layers, config.beta)[config.layer]!;
    return { ...windowPlan('observed-attention', config)(keySeq, querySeq), capacity };
  },
});

const tovaSchema = z.object(budgetFields({ capacity: 1024, window: 1, kernel: 1, pooling: 'none', reduction: 'mean' })).strict().superRefine(capacityCoversWindow);

/**
 * TOVA: the last query's attention, averaged over the GQA group, scores the keys; the lowest
 * are dropped (kvpress TOVAPress at prefill; the last token is kept).
 *
 * @see arXiv:2401.06104
 */
export const tovaMethod = compressOnceMethod({
  id: 'tova',
  description: "TOVA: keep the keys the last query attends most (group-averaged), plus the last token.",
  paper: 'arXiv:2401.06104',
  scorer: 'last-query',
  schema: tovaSchema,
  plan: (config) => windowPlan('last-query', config),
});

const keyNormSchema = z.object(budgetFields({ capacity: 1024, window: 0, kernel: 1, pooling: 'none', reduction: 'mean' })).strict().superRefine(capacityCoversWindow);

/** Key-norm (kvpress KnormPress): keep the keys of smallest L2 norm; query-agnostic. */
export const keyNormMethod = compressOnceMethod({
  id: 'key-norm',
  description: 'Key-norm: keep the KV entries whose keys have the smallest L2 norm (query-agnostic; kvpress KnormPress).',
  paper: 'arXiv:2406.11430',
  scorer: 'key-norm',
  schema: keyNormSchema,
  plan: (config) => windowPlan('key-norm', config),
});

const randomSchema = z
  .object({
    ...budgetFields({ capacity: 1024, window: 0, kernel: 1, pooling: 'none', reduction: 'mean' }),
    seed: z.number().int().min(0).default(0).describe('Seed of the random scores (the same seed keeps the same entries).'),
  })
  .strict()
  .superRefine(capacityCoversWindow);

/** Random KV dropping (kvpress RandomPress): the floor every scorer must beat. */
export const randomKvMethod = compressOnceMethod({
  id: 'random-kv',
  description: 'Random KV dropping at the same budget: the baseline every scorer must beat.',
  scorer: 'random',
  schema: randomSchema,
  plan: (config) => windowPlan('random', config, { seed: config.seed }),
});

const specPcLayerSchema = z
  .object({
    capacity: z.number().int().min(1).default(1024).describe('Tokens kept (C), the same set for every head.'),
    keepRatio: z.number().gt(0).max(1).nullable().default(null).describe('Share of the tokens kept, in (0, 1]; overrides capacity.'),
    window: z.number().int().min(1).default(64).describe('Protected tail window; its queries observe (W).'),
    kernel: z.number().int().min(1).default(32).describe('Center-pool kernel (any size).'),
    neighbors: z.number().int().min(0).nullable().default(null).describe('Neighbours kept with each top token, itself included; null = kernel.'),
    pooling: z.enum(['max', 'avg', 'none']).default('max').describe('Score pooling.'),
    weightedQueries: z.boolean().default(true).describe('Weight the window queries linearly from 0 (oldest) to 1 (last).'),
  })
  .strict()
  .superRefine(capacityCoversWindow);

/**
 * SpecPC's token selection at the attention level: the call's last `W` queries (linearly weighted)
 * score every token (max over queries and heads), center-pooled; the tail window and each top
 * token with its nearest neighbours are kept up to `C` — one token set shared by every head (a
 * prompt compression). On a model pair the draft's queries observe instead ({@link specPcGenerate}).
 *
 * @see arXiv:2506.08373 §3.2
 */
export const specPcLayerMethod = compressOnceMethod({
  id: 'specpc',
  description: 'SpecPC token selection: weighted window attention scores tokens (max over heads), center-pooled; keep the tail window and each top token with its neighbours up to C, shared by every head.',
  paper: 'arXiv:2506.08373',
  scorer: 'observed-attention',
  schema: specPcLayerSchema,
  plan: (config) => (keySeq, querySeq) => {
    const capacity = resolveCapacity(config, keySeq, config.window);
    const observers = lastQueries(querySeq, config.window);
    return {
      scorer: 'observed-attention',
      window: config.window,
      capacity,
      pooling: 'none',
      kernel: 1,
      choose: (q, k, scale) => {
        const kvHeads = k.shape[1]!;
        const batch = k.shape[0]!;
        const rows = observers.length;
        const weights = Array.from({ length: rows }, (_, i) => (rows > 1 && config.weightedQueries ? i / (rows - 1) : 1));
        const perHead = observerScores(q, k, { observers, scale, reduction: 'max', weights });
        const keep: Int32Array[] = [];
        for (let b = 0; b < batch; b++) {
          const tokens = new Float32Array(keySeq);
          for (let g = 0; g < kvHeads; g++) for (let j = 0; j < keySeq; j++) tokens[j] = Math.max(tokens[j]!, perHead[(b * kvHeads + g) * keySeq + j]!);
          const indices = selectPromptTokens(tokens, keySeq, { capacity, window: Math.min(config.window, keySeq), kernel: config.kernel, neighbors: config.neighbors, pooling: config.pooling });
          for (let g = 0; g < kvHeads; g++) keep.push(indices);
        }
        return keep;
      },
    };
  },
});
