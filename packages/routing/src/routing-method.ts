import { defineMethod, type BudgetPoint } from '@sparse-attn/core';
import { balancedRoutingPrefill } from './balanced-routing-attention.js';
import { routingConfigSchema } from './routing-config.js';
import { RoutingDecoder } from './routing-decoder.js';

/**
 * Budget sweep over the cluster count C (the Routing Transformer's sparsity knob: each query
 * sees about S/C keys), sparsest first, ending with C = 1 (every key in one cluster = dense).
 */
export function clusterBudgets(sequenceLength: number, extra: Readonly<Record<string, unknown>> = {}): BudgetPoint[] {
  const root = Math.max(1, Math.round(Math.sqrt(sequenceLength)));
  const counts = [4 * root, 2 * root, root, Math.round(root / 2), Math.round(root / 4)].filter((c) => c >= 2 && c <= sequenceLength);
  const unique = [...new Set(counts)].sort((a, b) => b - a);
  return [
    ...unique.map((clusters) => ({ label: `C=${clusters}`, config: { ...extra, clusters } })),
    { label: 'C=1 (dense)', config: { ...extra, clusters: 1 } },
  ];
}

/**
 * Routing Transformer attention with balanced routing (reference semantics): training-free
 * spherical k-means centroids fitted on the prompt's keys, top-w keys and queries per cluster,
 * causal attention inside each cluster through core's exact executor, incremental decode.
 *
 * Deliberate differences from the references (also in the package README):
 * - `combine: 'union'` (default) takes one softmax over the union of a query's clusters, so the
 *   output is exact attention over the reported selection; `'mean'` is LUCID's scatter_mean.
 * - `membership: 'balanced+nearest'` (default) adds each key's top-`keyClusters` and each query's
 *   top-`queryClusters` centroids to the balanced top-w, so no key is unreachable.
 * - `local: 'always'` and `sinkTokens: 4` (defaults) fold a local head and attention sinks into
 *   every query's keys; `local: 'never', sinkTokens: 0` gives the reference (0 for queries in no cluster).
 * - centroids come from k-means++ seeding + Lloyd on the keys (no training, no commitment loss).
 *
 * @see arXiv:2003.05997 §4 (Routing Transformer, Roy et al., TACL 2021)
 */
export const routingMethod = defineMethod({
  id: 'routing',
  family: 'routing',
  description: 'Routing Transformer: spherical k-means routing with balanced top-w clusters (reference semantics), causal attention within clusters, incremental decode.',
  paper: 'arXiv:2003.05997',
  configSchema: routingConfigSchema,
  build: (config) => ({
    capabilities: { causalConsistent: false, supportsNonCausal: true, selection: 'token', sharesSelectionAcrossGroup: false },
    prefill: (input) => balancedRoutingPrefill(input, config).result,
    createDecoder: (shape) => new RoutingDecoder(shape, { kind: 'balanced', config }),
  }),
  budgets: (sequenceLength) => clusterBudgets(sequenceLength),
});
