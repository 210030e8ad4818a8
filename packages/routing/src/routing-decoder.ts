import { KVCache, validateDecoderStep, type AttentionDecoder, type AttentionInput, type AttentionResult, type DecoderShape } from '@sparse-attn/core';
import { balancedRoutingPrefill, headSeed } from './balanced-routing-attention.js';
import { IncrementalRouter, type IncrementalRouterOptions } from './incremental-router.js';
import type { CausalRoutingConfig, RoutingConfig } from './routing-config.js';
import { routeCausally, type CausalRoutingSettings } from './route-causally.js';
import { sharedQKKeysAndValues } from './shared-qk.js';

/** Which routing a decoder continues: balanced prompt + incremental steps, or causal throughout. */
export type RoutingDecoderVariant =
  | { readonly kind: 'balanced'; readonly config: RoutingConfig }
  | { readonly kind: 'causal'; readonly config: CausalRoutingConfig };

/**
 * Incremental routing decode with core's KV cache (spec routing.md §5; no reference has one).
 *
 * - `balanced`: the first step (the prompt) runs the balanced prefill and keeps its centroids
 *   and top-w cluster lists; every later token's key joins its nearest centroid's list and its
 *   query attends to the lists of its top-r centroids plus itself. An approximation of the
 *   balanced top-w routing used at prefill, documented as such.
 * - `causal`: the same per-token state machine the `routing-causal` prefill runs, so decode
 *   equals prefill for any chunking.
 *
 * A step costs O(C·D + (t/C)·D) per head: it never re-routes the prompt, and the executor reads
 * only the selected rows of the cache views. With shared QK the cache holds the shared-QK keys
 * (normalised queries, one per query head) and the values per query head.
 */
export class RoutingDecoder implements AttentionDecoder {
  private readonly shape: DecoderShape;
  private readonly variant: RoutingDecoderVariant;
  private readonly cache: KVCache;
  private routers: IncrementalRouter[] | null = null;

  constructor(shape: DecoderShape, variant: RoutingDecoderVariant) {
    this.shape = shape;
    this.variant = variant;
    const shared = variant.config.sharedQK;
    this.cache = new KVCache({
      batch: shape.batch,
      kvHeads: shared ? shape.queryHeads : shape.kvHeads,
      headDim: shape.headDim,
      valueDim: shape.valueDim ?? shape.headDim,
    });
  }

  /** Tokens in the cache. */
  get length(): number {
    return this.cache.length;
  }

  /** Appends the new tokens, routes them and attends their queries. */
  step(input: AttentionInput): AttentionResult {
    const d = validateDecoderStep(this.shape, input, this.cache.length);
    const config = this.variant.config;
    const attention = config.sharedQK ? sharedQKKeysAndValues(input.q, input.v, config.normalization) : { k: input.k, v: input.v };
    const firstNew = this.cache.length;
    this.cache.append(attention.k, attention.v);
    const routingHeads = this.shape.batch * (config.sharedQK ? this.shape.queryHeads : this.shape.kvHeads);
    if (this.routers === null) {
      if (this.variant.kind === 'balanced') {
        const prefill = balancedRoutingPrefill({ q: input.q, k: input.k, v: input.v, causal: true, scale: d.scale }, this.variant.config);
        this.routers = prefill.heads.map((h, i) =>
          IncrementalRouter.fromClusters(routerOptions(this.variant, this.shape.headDim, i), h.centroids, h.clusters, h.membership.offsets, h.membership.members, firstNew + d.querySeq),
        );
        return prefill.result;
      }
      this.routers = Array.from({ length: routingHeads }, (_, i) => new IncrementalRouter(routerOptions(this.variant, this.shape.headDim, i)));
    }
    return routeCausally(input.q, this.cache.keys(), this.cache.values(), this.routers, firstNew, causalSettings(this.variant, d.scale));
  }

  /** Empties the cache and forgets the centroids and clusters. */
  reset(): void {
    this.cache.reset();
    this.routers = null;
  }
}

/** Router options of routing head `head` (batch-major index) for a variant's config. */
export function routerOptions(variant: RoutingDecoderVariant, dim: number, head: number): IncrementalRouterOptions {
  const config = variant.config;
  return {
    dim,
    normalization: config.normalization,
    keyClusters: config.keyClusters,
    clusters: config.clusters,
    calibrationTokens: variant.kind === 'causal' ? variant.config.calibrationTokens : 1,
    refit: variant.kind === 'causal' ? variant.config.refit : 'never',
    kmeansIterations: config.kmeansIterations,
    kmeansSampleSize: config.kmeansSampleSize,
    seed: headSeed(config.seed, head),
    emaDecay: config.onlineUpdate ? config.emaDecay : null,
  };
}

/** Settings of {@link routeCausally} for a variant's config. */
export function causalSettings(variant: RoutingDecoderVariant, scale: number): CausalRoutingSettings {
  const config = variant.config;
  return {
    queryClusters: config.queryClusters,
    sharedQK: config.sharedQK,
    combine: config.combine,
    localWindow: variant.kind === 'causal' || variant.config.local === 'always' ? config.localWindow : 0,
    sinkTokens: config.sinkTokens,
    scale,
  };
}
