/**
 * `@sparse-attn/nsa`: Native Sparse Attention (compression + selection + sliding window), MoBA
 * and a hierarchical (HISA-style) token indexer, all on core's contracts. `methods` lists every
 * registrable method and `benchmarks` the issue's own benchmark suite, for apps/bench.
 */
import type { MethodDefinition } from '@sparse-attn/core';
import { hierarchicalIndexerMethod } from './hierarchical-indexer.js';
import { mobaMethod } from './moba.js';
import { nsaMethod } from './nsa.js';

export * from './nsa.js';
export * from './moba.js';
export * from './hierarchical-indexer.js';
export { BlockMeans, completeWindows, type BlockMeansShape } from './block-means.js';
export { TopKSelector } from './select-top-k.js';
export { NsaBlockSelector, visibleWindows, type NsaGeometry } from './nsa-block-selector.js';
export { sweep, selectionShare } from './method-helpers.js';
export type { CachedDecoder } from './cached-decoder.js';
export { benchmarks, createNsaBenchmarkSuite, nsaBenchmarkSuite, type NsaBenchmarkOptions } from './nsa-benchmark.js';

/** Every method of this package, for `MethodRegistry.registerAll`. */
export const methods: MethodDefinition[] = [nsaMethod, mobaMethod, hierarchicalIndexerMethod];
