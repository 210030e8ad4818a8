/**
 * `@sparse-attn/routing`: content-based routing attention on the sparse-attn core contracts —
 * the Routing Transformer's k-means routing (balanced reference semantics and a causal variant,
 * both with incremental decode) and BiFormer's bi-level region routing.
 */
import type { BenchmarkSuite, MethodDefinition } from '@sparse-attn/core';
import { biformerMethod } from './biformer-attention.js';
import { causalRoutingMethod } from './causal-routing-method.js';
import { routingBenchmark } from './routing-benchmark.js';
import { routingMethod } from './routing-method.js';

export { routingMethod, clusterBudgets } from './routing-method.js';
export { causalRoutingMethod } from './causal-routing-method.js';
export { biformerMethod, biformerAttention, biformerBudgets, biformerConfigSchema, BiformerDecoder, type BiformerConfig } from './biformer-attention.js';
export { routingConfigSchema, causalRoutingConfigSchema, resolveClusters, type RoutingConfig, type CausalRoutingConfig } from './routing-config.js';
export { balancedRoutingPrefill, type BalancedPrefill, type BalancedHeadState } from './balanced-routing-attention.js';
export { balancedRouting, withNearestMembership, invertMembership, type ClusterMembership, type TokenClusters } from './balanced-routing.js';
export { sphericalKMeans, centroidSimilarities, nearestCentroid, topCentroids, assignNearest, assignTopClusters, emaUpdateCentroid, type SphericalKMeansOptions, type SphericalKMeansResult } from './spherical-kmeans.js';
export { IncrementalRouter, type IncrementalRouterOptions } from './incremental-router.js';
export { RoutingDecoder, type RoutingDecoderVariant } from './routing-decoder.js';
export { normalizeRows, type RoutingNormalization } from './normalize-rows.js';
export { selectTopKPositions } from './select-top-k-positions.js';
export { sharedQKKeysAndValues } from './shared-qk.js';
export { routingBenchmark, fitExponent } from './routing-benchmark.js';

/** Every registrable method of this package, for apps/bench. */
export const methods: MethodDefinition[] = [routingMethod, causalRoutingMethod, biformerMethod] as unknown as MethodDefinition[];

/** The package's own benchmark suites (prefill/decode scaling, C sweep, exponent fit), for apps/bench. */
export const benchmarks: BenchmarkSuite[] = [routingBenchmark];
