import { ConfigError, ShapeError, defineMethod, validateAttentionInput } from '@sparse-attn/core';
import { causalRoutingConfigSchema } from './routing-config.js';
import { IncrementalRouter } from './incremental-router.js';
import { routeCausally } from './route-causally.js';
import { RoutingDecoder, causalSettings, routerOptions } from './routing-decoder.js';
import { sharedQKKeysAndValues } from './shared-qk.js';
import { clusterBudgets } from './routing-method.js';

/**
 * Causal Routing Transformer variant: each token joins the cluster of its own nearest centroid
 * (per-token argmax instead of balanced top-w), centroids are fitted on the first
 * `calibrationTokens` keys (tokens before that attend densely) and refitted at doubling lengths,
 * and every query attends to its top-r clusters' earlier keys plus itself. All of it depends
 * only on tokens ≤ t, so one prefill equals token-by-token decode exactly (spec routing.md §6).
 *
 * Prefill runs the decoder's per-token state machine over the sequence: O(S·C·D) routing plus
 * O(S²/C·D) attention with C ≈ √S.
 *
 * @see arXiv:2003.05997 §4 (Routing Transformer; causal membership per spec routing.md §6)
 */
export const causalRoutingMethod = defineMethod({
  id: 'routing-causal',
  family: 'routing',
  description: 'Routing Transformer, causal variant: per-token nearest-centroid membership (prefill equals decode), calibration-fitted centroids refitted at doubling lengths.',
  paper: 'arXiv:2003.05997',
  configSchema: causalRoutingConfigSchema,
  build: (config) => ({
    capabilities: { causalConsistent: true, supportsNonCausal: false, selection: 'token', sharesSelectionAcrossGroup: false },
    prefill: (input) => {
      const d = validateAttentionInput(input);
      if (!d.causal) throw new ConfigError('routing-causal: causal must be true (membership is defined token by token); use `routing` for non-causal attention');
      if (config.sharedQK && d.querySeq !== d.keySeq) {
        throw new ShapeError(`routing-causal: sharedQK derives the keys from the queries, so q and k need the same sequence length; got q ${d.querySeq}, k ${d.keySeq}`);
      }
      const variant = { kind: 'causal', config } as const;
      const attention = config.sharedQK ? sharedQKKeysAndValues(input.q, input.v, config.normalization) : { k: input.k, v: input.v };
      const heads = d.batch * (config.sharedQK ? d.queryHeads : d.kvHeads);
      const routers = Array.from({ length: heads }, (_, i) => new IncrementalRouter(routerOptions(variant, d.headDim, i)));
      return routeCausally(input.q, attention.k, attention.v, routers, 0, causalSettings(variant, d.scale));
    },
    createDecoder: (shape) => new RoutingDecoder(shape, { kind: 'causal', config }),
  }),
  budgets: (sequenceLength) => clusterBudgets(sequenceLength, { calibrationTokens: Math.min(256, Math.max(1, Math.ceil(sequenceLength / 8))) }),
});
