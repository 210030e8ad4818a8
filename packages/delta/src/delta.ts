import { defineMethod, parseConfig } from '@sparse-attn/core';
import { z } from 'zod';
import { defaultFullCacheLayers, layerPlanFromFullCacheLayers, validateLayerPlan, type LayerPlan } from './layer-plan.js';
import { createLayerReusePolicy, type LayerReusePolicy, type ReuseSelector } from './layer-reuse-policy.js';
import { unifiedScoresOfLogits, unifiedTokenScores } from './decode-scores.js';
import { pageScores, pageSelection, recentPages, selectPages } from './select-pages.js';
import { selfSelectedAttention, selfSelectedDecoder, type RowSelector } from './self-selected-attention.js';

/**
 * DELTA's options, with the reference defaults (`hoenza/DELTA`: `backend.py`, run scripts).
 * `fullCacheLayers` applies to the model-level policy; `prefill` to the attention-level method.
 */
export const deltaConfigSchema = z
  .object({
    pageSize: z.number().int().positive().default(16).describe('Tokens per KV page (P). Reference: 16 (backend.py setup_caches).'),
    pageBudget: z.number().int().positive().default(64).describe('Pages each sparse layer attends to (K), recent ones included. Reference run scripts: 64 pages = 1024 tokens.'),
    recentPages: z.number().int().nonnegative().default(8).describe('Most recent pages always kept (L), at most pageBudget. Reference: 8 pages = 128 tokens.'),
    fullCacheLayers: z
      .array(z.number().int().nonnegative())
      .nullable()
      .default(null)
      .describe('Model-level: warm-up ∪ Δ-layers. A full layer followed by a non-full one is a Δ-layer. null: the reference 0 1 2 14 22 (of 28 layers) scaled to the model; [] makes every layer dense.'),
    prefill: z
      .enum(['dense', 'self-select'])
      .default('dense')
      .describe("Attention-level method: 'dense' keeps prefill dense as the reference; 'self-select' selects pages for every query row from its own attention (causal-consistent, used by the conformance kit)."),
  })
  .strict()
  .refine((c) => c.recentPages <= c.pageBudget, { message: 'recentPages must not exceed pageBudget', path: ['recentPages'] });

/** DELTA options as given by a user (defaults filled in by {@link deltaConfigSchema}). */
export type DeltaConfigInput = z.input<typeof deltaConfigSchema>;
/** DELTA options with defaults applied. */
export type DeltaConfig = z.output<typeof deltaConfigSchema>;

/**
 * DELTA's selector: page scores `Σ_page max_h p[h][t]` from a Δ-layer's probabilities (scored
 * against its keys with the dense attention's log-sum-exp), the last
 * `recentPages` pages plus the best older ones up to `pageBudget`, one page list shared by every
 * KV head. Active when the cache holds more than `pageBudget` pages.
 */
export function deltaSelector(config: Pick<DeltaConfig, 'pageSize' | 'pageBudget' | 'recentPages'>): ReuseSelector {
  const { pageSize, pageBudget, recentPages: recent } = config;
  return {
    name: 'delta',
    isActive: (keySeq) => Math.ceil(keySeq / pageSize) > pageBudget,
    fromLayer: ({ q, keys, scale, lse }) => {
      const keySeq = keys.shape[2]!;
      const pages = selectPages(pageScores(unifiedTokenScores(q, keys, scale, lse), 1, keySeq, pageSize), pageBudget, recent);
      return pageSelection(pages, keys.shape[1]!, keySeq, pageSize);
    },
    placeholder: (keySeq, kvHeads) => pageSelection(recentPages(keySeq, pageSize, pageBudget), kvHeads, keySeq, pageSize),
  };
}

/** Options of {@link createDeltaPolicy}. */
export interface DeltaPolicyOptions {
  /** Decoder layers of the model the policy will run in. */
  readonly layers: number;
  readonly config?: DeltaConfigInput;
  /** A plan to run instead of the one derived from `fullCacheLayers` (e.g. from the HyLRA-style planner). */
  readonly plan?: LayerPlan;
}

/**
 * DELTA on a model session: prefill dense in every layer; at each decode step, warm-up layers
 * dense, Δ-layers dense plus page re-selection from their own attention probabilities (max over
 * all query heads, summed per page, last `L` pages forced, top `K` kept), and every other layer
 * attends to exactly those logical pages of its own KV cache through core's `sparseAttention`.
 * The subset turns on only when the context exceeds `K` pages. Nothing is evicted.
 *
 * ```ts
 * const policy = createDeltaPolicy({ layers: model.dims.layers });
 * const session = model.createSession({ policy });
 * session.generate(prompt, 64);
 * ```
 *
 * @see arXiv:2510.09883 §3 (DELTA: Δ-layers, unified head selection, stable recency window)
 */
export function createDeltaPolicy(options: DeltaPolicyOptions): LayerReusePolicy {
  const config = parseConfig('delta', deltaConfigSchema, options.config);
  const plan = options.plan ?? layerPlanFromFullCacheLayers(config.fullCacheLayers ?? defaultFullCacheLayers(options.layers), options.layers);
  validateLayerPlan(plan, options.layers);
  return createLayerReusePolicy(plan, deltaSelector(config));
}

/** The attention-level row selector: DELTA's pages for each query row from its own probabilities. */
function deltaRowSelector(config: DeltaConfig): RowSelector {
  return {
    kind: 'block',
    blockSize: config.pageSize,
    headScope: 'kv',
    needsSelection: (visible) => Math.ceil(visible / config.pageSize) > config.pageBudget,
    selectRow: (scores, kvHeads) => {
      const pages = selectPages(pageScores(unifiedScoresOfLogits(scores.logits, scores.queryHeads, scores.keySeq), 1, scores.keySeq, config.pageSize), config.pageBudget, config.recentPages);
      return Array.from({ length: kvHeads }, () => pages);
    },
  };
}

/**
 * The bench's budget sweep of {@link deltaMethod} at the default page size (16): K = 8, 16, 32
 * and 64 pages where they are sparser than the context, then `full` (every page, equal to dense).
 * Each point sets `recentPages` too, at most the reference's 8 and never above its `pageBudget`,
 * so every point is a valid config at every length (the full point of a 4-page context keeps 4
 * recent pages, not the default 8 that the config check would reject).
 */
export function deltaBudgetPoints(sequenceLength: number): { label: string; config: DeltaConfigInput }[] {
  const pages = Math.max(1, Math.ceil(sequenceLength / 16));
  const point = (label: string, pageBudget: number, recentPages: number) => ({ label, config: { pageBudget, recentPages: Math.min(recentPages, pageBudget) } });
  const points = [8, 16, 32, 64].filter((k) => k < pages).map((k) => point(`K=${k}`, k, Math.min(8, k / 2)));
  return [...points, point('full', pages, 8)];
}

/**
 * DELTA's page selector as a single-layer attention method: each decode query attends to the
 * pages DELTA's Δ-layer would pick from this layer's own probabilities (the upper bound of what a
 * sparse layer reusing them can reach). Prefill is dense unless `prefill: 'self-select'`. The
 * layer-reuse method itself runs on a model through {@link createDeltaPolicy}.
 *
 * @see arXiv:2510.09883 §3.2 (page scoring and selection)
 */
export const deltaMethod = defineMethod({
  id: 'delta',
  family: 'delta',
  description: "DELTA's page selection (max over query heads, page sums, last L pages + top K) applied to a layer's own decode attention; the layer-reuse model policy is createDeltaPolicy.",
  paper: 'arXiv:2510.09883',
  configSchema: deltaConfigSchema,
  budgets: deltaBudgetPoints,
  build: (config) => {
    const selector = deltaRowSelector(config);
    const mode = config.prefill === 'dense' ? 'dense' : 'select';
    return {
      capabilities: { causalConsistent: mode === 'select', supportsNonCausal: false, selection: 'block', sharesSelectionAcrossGroup: true },
      prefill: (input) => selfSelectedAttention(input, selector, mode),
      createDecoder: (shape) => selfSelectedDecoder(shape, selector, mode),
    };
  },
});
