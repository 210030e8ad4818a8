import { ShapeError, dims4, rowOffset, validateAttentionInput, type AttentionInput, type AttentionResult, type Tensor } from '@sparse-attn/core';
import { balancedRouting, countBelow, invertMembership, withNearestMembership, type ClusterMembership } from './balanced-routing.js';
import { normalizeRows } from './normalize-rows.js';
import { RowParts } from './row-parts.js';
import { resolveClusters, resolveSampleSize, type RoutingConfig } from './routing-config.js';
import { runRoutedAttention } from './run-routed-attention.js';
import { sharedQKKeysAndValues } from './shared-qk.js';
import { centroidSimilarities, sphericalKMeans } from './spherical-kmeans.js';

/** Routing state of one (batch, routing head) after a balanced prefill: what decode continues from. */
export interface BalancedHeadState {
  /** `[clusters × headDim]` unit centroids. */
  readonly centroids: Float32Array;
  readonly clusters: number;
  /** The keys of each cluster (top-w, ascending). */
  readonly membership: ClusterMembership;
}

/** A balanced prefill's result plus the per-head routing state. */
export interface BalancedPrefill {
  readonly result: AttentionResult;
  /** `batch × routingHeads` states, batch-major (routing heads = KV heads, or query heads with shared QK). */
  readonly heads: readonly BalancedHeadState[];
}

/** Per-head seed: distinct, deterministic centroids for every (batch, routing head). */
export function headSeed(seed: number, head: number): number {
  return seed + 7919 * head;
}

/**
 * Balanced routing attention (Routing Transformer reference semantics, spec routing.md §3.6):
 *
 * 1. per routing head, normalise the keys and fit C spherical k-means centroids on them;
 * 2. each cluster takes the w keys most similar to its centroid, and (separately) the w queries
 *    most similar to it — with shared QK the keys are the normalised queries and both coincide;
 *    with `membership: 'balanced+nearest'` (default) every key also joins the clusters of its
 *    top-`keyClusters` centroids and every query those of its top-`queryClusters`, so a query and
 *    a key with (nearly) the same direction share a cluster even at near-ties between centroids;
 * 3. a query attends, causally by true position, to the keys of every cluster it is in;
 *    `combine` decides between one softmax over their union and the reference per-cluster mean;
 * 4. every query also attends to the first `sinkTokens` keys and, per `local`, to its last
 *    `localWindow` keys — always, or only when its clusters hold no visible key (else output 0).
 *
 * GQA (spec §7): keys are routed per KV head; each query head routes its queries against its
 * KV head's centroids. Membership is not causal (§6): future tokens compete for cluster slots,
 * so this prefill is not token-by-token decode; `routing-causal` is.
 *
 * @see arXiv:2003.05997 §4 (Routing Transformer)
 */
export function balancedRoutingPrefill(input: AttentionInput, config: RoutingConfig): BalancedPrefill {
  const started = performance.now();
  const d = validateAttentionInput(input);
  if (config.sharedQK && d.querySeq !== d.keySeq) {
    throw new ShapeError(`routing: sharedQK derives the keys from the queries, so q and k need the same sequence length; got q ${d.querySeq}, k ${d.keySeq}`);
  }
  const attention = config.sharedQK ? sharedQKKeysAndValues(input.q, input.v, config.normalization) : { k: input.k, v: input.v };
  const kd = dims4(attention.k, 'k');
  const routingHeads = kd.heads;
  const group = d.queryHeads / routingHeads;
  const { keySeq, querySeq, headDim: dim, queryOffset, causal } = d;
  const clusters = resolveClusters(config.clusters, keySeq, config.window);
  const window = Math.min(keySeq, config.window > 0 ? config.window : Math.ceil(keySeq / clusters));
  const queryWindow = config.sharedQK ? window : Math.min(querySeq, Math.max(1, Math.ceil((window * querySeq) / keySeq)));
  const parts = new RowParts(d.batch * d.queryHeads * querySeq);
  const keysNormalized = new Float32Array(keySeq * dim);
  const queriesNormalized = config.sharedQK ? keysNormalized : new Float32Array(querySeq * dim);
  const keySims = new Float32Array(clusters * keySeq);
  const querySims = config.sharedQK ? keySims : new Float32Array(clusters * querySeq);
  const heads: BalancedHeadState[] = [];
  const nearest = config.membership === 'balanced+nearest';
  let kmeansMs = 0;
  let iterations = 0;
  let uncovered = 0;
  let multiRouted = 0;
  let fallback = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let r = 0; r < routingHeads; r++) {
      normalizeRows(attention.k.data, rowOffset(kd, b, r, 0), keysNormalized, 0, keySeq, dim, config.normalization);
      const fitStarted = performance.now();
      const fit = sphericalKMeans(keysNormalized, keySeq, dim, {
        clusters,
        iterations: config.kmeansIterations,
        seed: headSeed(config.seed, b * routingHeads + r),
        sampleSize: resolveSampleSize(config.kmeansSampleSize, clusters),
      });
      kmeansMs += performance.now() - fitStarted;
      iterations += fit.iterationsRun;
      centroidSimilarities(keysNormalized, keySeq, dim, fit.centroids, clusters, keySims);
      let keyMembers = balancedRouting(keySims, keySeq, clusters, window);
      if (nearest) keyMembers = withNearestMembership(keyMembers, keySims, keySeq, config.sharedQK ? Math.max(config.keyClusters, config.queryClusters) : config.keyClusters);
      heads.push({ centroids: fit.centroids, clusters, membership: keyMembers });
      for (let g = 0; g < group; g++) {
        const h = r * group + g;
        let queryMembers = keyMembers;
        if (!config.sharedQK) {
          normalizeRows(input.q.data, rowOffset(d.qDims, b, h, 0), queriesNormalized, 0, querySeq, dim, config.normalization);
          centroidSimilarities(queriesNormalized, querySeq, dim, fit.centroids, clusters, querySims);
          queryMembers = balancedRouting(querySims, querySeq, clusters, queryWindow);
          if (nearest) queryMembers = withNearestMembership(queryMembers, querySims, querySeq, config.queryClusters);
        }
        const queryClusters = invertMembership(queryMembers, querySeq);
        for (let i = 0; i < querySeq; i++) {
          const position = queryOffset + i;
          const limit = causal ? position + 1 : keySeq;
          const row = (b * d.queryHeads + h) * querySeq + i;
          parts.beginRow(row);
          const first = queryClusters.offsets[i]!;
          const last = queryClusters.offsets[i + 1]!;
          if (first === last) uncovered++;
          if (last - first > 1) multiRouted++;
          for (let m = first; m < last; m++) {
            const c = queryClusters.clusters[m]!;
            const start = keyMembers.offsets[c]!;
            const end = keyMembers.offsets[c + 1]!;
            const visibleEnd = causal ? start + countBelow(keyMembers.members, start, end, limit) : end;
            if (config.sharedQK) parts.addPartWithSelf(keyMembers.members, start, visibleEnd, position, true);
            else parts.addPart(keyMembers.members, start, visibleEnd);
          }
          const routedParts = parts.partCount(row);
          if (routedParts === 0) fallback++;
          if (config.sinkTokens > 0) parts.addRange(0, Math.min(config.sinkTokens, limit));
          if (config.local === 'always' || (config.local === 'uncovered' && routedParts === 0)) {
            parts.addRange(Math.max(0, position - config.localWindow + 1), Math.min(position + 1, keySeq));
          }
        }
      }
    }
  }
  const selectionMs = performance.now() - started;
  const layout = { batch: d.batch, heads: d.queryHeads, rowsPerHead: querySeq, keySeq, queryOffset, selfRule: config.sharedQK };
  const routed = runRoutedAttention({ q: input.q, k: attention.k, v: attention.v, causal, scale: d.scale }, parts, layout, config.combine, selectionMs);
  const rows = d.batch * d.queryHeads * querySeq;
  const totalMs = routed.stats.selectionMs + routed.stats.attentionMs;
  return {
    heads,
    result: {
      ...routed,
      diagnostics: {
        clusters,
        window,
        kmeansMs,
        kmeansShare: totalMs > 0 ? kmeansMs / totalMs : 0,
        kmeansIterations: iterations / heads.length,
        uncoveredShare: uncovered / rows,
        multiRoutedShare: multiRouted / rows,
        fallbackShare: fallback / rows,
        keysPerQuery: routed.stats.pairs / rows,
      },
    },
  };
}

/** Key tensor rows of one (batch, head) as a base offset, for readers of padded cache views. */
export function headBase(t: Tensor, b: number, h: number): number {
  return rowOffset(dims4(t, 'k'), b, h, 0);
}
