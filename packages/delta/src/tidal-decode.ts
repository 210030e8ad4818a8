import { ConfigError, defineMethod, parseConfig } from '@sparse-attn/core';
import { z } from 'zod';
import { layerPlanFromRoles, validateLayerPlan, type LayerPlan, type LayerRole } from './layer-plan.js';
import { createLayerReusePolicy, type LayerReusePolicy, type ReuseSelector } from './layer-reuse-policy.js';
import { decodeLogits } from './decode-scores.js';
import { recentTokenSelection, tokenSelection } from './select-tokens.js';
import { selfSelectedAttention, selfSelectedDecoder, type RowSelector } from './self-selected-attention.js';
import { topKIndices } from './top-k.js';

/**
 * TidalDecode's options (`DerrickYLJ/TidalDecode`: `src/tidal_build/modify_llama.py`, scripts).
 * The layer options apply to the model-level policy; `prefill` to the attention-level method.
 */
export const tidalDecodeConfigSchema = z
  .object({
    tokenBudget: z.number().int().positive().default(256).describe('Tokens each query head attends to in sparse layers (top_k). Reference: 256 in the README demo, 128 for needles, 4096 for LongBench.'),
    selectionLayer: z.number().int().nonnegative().default(2).describe('First selection layer (sparse_layer_start); earlier layers are dense. Reference: 2.'),
    correctionLayer: z
      .number()
      .int()
      .positive()
      .nullable()
      .default(null)
      .describe('Re-selection layer (correction_layer). null: 13/32 of the depth (the reference uses 13 for the 32-layer Llama-3-8B); a model too shallow for one gets none.'),
    prefill: z
      .enum(['dense', 'self-select'])
      .default('dense')
      .describe("Attention-level method: 'dense' keeps prefill dense as the reference; 'self-select' selects tokens for every query row (causal-consistent, used by the conformance kit)."),
  })
  .strict();

/** TidalDecode options as given by a user. */
export type TidalDecodeConfigInput = z.input<typeof tidalDecodeConfigSchema>;
/** TidalDecode options with defaults applied. */
export type TidalDecodeConfig = z.output<typeof tidalDecodeConfigSchema>;

/**
 * TidalDecode's layer plan: layers before `selectionLayer` dense, `selectionLayer` and
 * `correctionLayer` dense plus token re-selection, every other layer reusing the most recent
 * selection. A `correctionLayer` of `null` resolves to `round(13/32 · layers)` when that lies
 * after the selection layer and inside the model, else none.
 */
export function tidalLayerPlan(layers: number, selectionLayer = 2, correctionLayer: number | null = null): LayerPlan {
  if (!(Number.isInteger(layers) && layers >= 1)) throw new ConfigError(`tidalLayerPlan: layers must be a positive integer, got ${layers}`);
  if (selectionLayer >= layers) return layerPlanFromRoles(Array.from({ length: layers }, () => 'full'));
  let correction = correctionLayer;
  if (correction === null) {
    const scaled = Math.round((13 * layers) / 32);
    correction = scaled > selectionLayer && scaled < layers ? scaled : -1;
  } else if (!(correction > selectionLayer && correction < layers)) {
    throw new ConfigError(`TidalDecode: correctionLayer ${correction} must lie after selectionLayer ${selectionLayer} and inside the model's ${layers} layers`);
  }
  const roles: LayerRole[] = Array.from({ length: layers }, (_, l) => (l < selectionLayer ? 'full' : l === selectionLayer || l === correction ? 'delta' : 'sparse'));
  return layerPlanFromRoles(roles);
}

/**
 * TidalDecode's selector: per query head, the `tokenBudget` keys with the highest raw logits of
 * the selection layer (token level, no recency window). Active when the cache holds more keys
 * than the budget.
 */
export function tidalDecodeSelector(config: Pick<TidalDecodeConfig, 'tokenBudget'>): ReuseSelector {
  const budget = config.tokenBudget;
  return {
    name: 'tidal-decode',
    isActive: (keySeq) => keySeq > budget,
    fromLayer: ({ q, keys, scale }) => tokenSelection(decodeLogits(q, keys, scale), q.shape[1]!, keys.shape[2]!, budget),
    placeholder: (keySeq, _kvHeads, queryHeads) => recentTokenSelection(queryHeads, keySeq, budget),
  };
}

/** Options of {@link createTidalDecodePolicy}. */
export interface TidalDecodePolicyOptions {
  readonly layers: number;
  readonly config?: TidalDecodeConfigInput;
  /** A plan to run instead of the one derived from the selection/correction layers. */
  readonly plan?: LayerPlan;
}

/**
 * TidalDecode on a model session: prefill dense; at each decode step, layers before the
 * selection layer dense, the selection and correction layers dense plus a per-query-head token
 * top-k on raw logits, and every other layer attends to the most recent selection's tokens
 * (position-persistent: the same token indices in its own cache) through core's `sparseAttention`.
 *
 * @see arXiv:2410.05076 §3 (TidalDecode: position persistent sparse attention)
 */
export function createTidalDecodePolicy(options: TidalDecodePolicyOptions): LayerReusePolicy {
  const config = parseConfig('tidal-decode', tidalDecodeConfigSchema, options.config);
  const plan = options.plan ?? tidalLayerPlan(options.layers, config.selectionLayer, config.correctionLayer);
  validateLayerPlan(plan, options.layers);
  return createLayerReusePolicy(plan, tidalDecodeSelector(config));
}

/** The attention-level row selector: per query head, the top `tokenBudget` logits of the row. */
function tidalRowSelector(config: TidalDecodeConfig): RowSelector {
  return {
    kind: 'token',
    blockSize: 1,
    headScope: 'query',
    needsSelection: (visible) => visible > config.tokenBudget,
    selectRow: (scores) => Array.from({ length: scores.queryHeads }, (_, h) => topKIndices(scores.logits, config.tokenBudget, h * scores.keySeq, scores.keySeq)),
  };
}

/**
 * TidalDecode's token selector as a single-layer attention method: each decode query head
 * attends to its own top-`tokenBudget` keys by raw logit (the upper bound of a layer reusing a
 * selection layer's choice). Prefill is dense unless `prefill: 'self-select'`. The layer-reuse
 * method itself runs on a model through {@link createTidalDecodePolicy}.
 *
 * @see arXiv:2410.05076 §3.1 (token selection)
 */
export const tidalDecodeMethod = defineMethod({
  id: 'tidal-decode',
  family: 'delta',
  description: "TidalDecode's per-query-head token top-k on raw logits applied to a layer's own decode attention; the layer-reuse model policy is createTidalDecodePolicy.",
  paper: 'arXiv:2410.05076',
  configSchema: tidalDecodeConfigSchema,
  budgets: (sequenceLength) => {
    const points = [128, 256, 1024, 4096].filter((k) => k < sequenceLength).map((k) => ({ label: `k=${k}`, config: { tokenBudget: k } }));
    return [...points, { label: 'full', config: { tokenBudget: Math.max(1, sequenceLength) } }];
  },
  build: (config) => {
    const selector = tidalRowSelector(config);
    const mode = config.prefill === 'dense' ? 'dense' : 'select';
    return {
      capabilities: { causalConsistent: mode === 'select', supportsNonCausal: false, selection: 'token', sharesSelectionAcrossGroup: false },
      prefill: (input) => selfSelectedAttention(input, selector, mode),
      createDecoder: (shape) => selfSelectedDecoder(shape, selector, mode),
    };
  },
});
