import { dims4, rowOffset, type AttentionResult, type Tensor } from '@sparse-attn/core';
import type { IncrementalRouter } from './incremental-router.js';
import { RowParts } from './row-parts.js';
import { runRoutedAttention } from './run-routed-attention.js';

/** Settings of {@link routeCausally}. */
export interface CausalRoutingSettings {
  /** Clusters r each query attends to. */
  readonly queryClusters: number;
  readonly sharedQK: boolean;
  readonly combine: 'union' | 'mean';
  /** Also attend to the last `localWindow` keys (0 = off). */
  readonly localWindow: number;
  /** Also attend to the first `sinkTokens` keys (0 = off). */
  readonly sinkTokens: number;
  readonly scale: number;
}

/**
 * Routes and attends the last `q.shape[2]` positions of a key sequence token by token with
 * per-(batch, routing head) {@link IncrementalRouter}s, then runs core's exact executor.
 *
 * `keys`/`values` are the attention keys/values `[B, Hr, S, D]` (a KV-cache view or the prefill
 * input; the shared-QK keys in that mode), `routers[b · Hr + r]` has routed keys `0..firstNew − 1`
 * already; keys `firstNew..S−1` are routed here, and each query right after its own key
 * (so a query sees its key's cluster assignment, as in decode). Queries before calibration
 * attend densely.
 */
export function routeCausally(q: Tensor, keys: Tensor, values: Tensor, routers: readonly IncrementalRouter[], firstNew: number, settings: CausalRoutingSettings): AttentionResult {
  const started = performance.now();
  const qd = dims4(q, 'q');
  const kd = dims4(keys, 'k');
  const routingHeads = kd.heads;
  const group = qd.heads / routingHeads;
  const keySeq = kd.seq;
  const querySeq = qd.seq;
  const queryOffset = keySeq - querySeq;
  const parts = new RowParts(qd.batch * qd.heads * querySeq);
  const chosen = new Int32Array(Math.max(1, settings.queryClusters));
  let kmeansBefore = 0;
  let kmeansAfter = 0;
  let calibrating = 0;
  let largest = 0;
  let clusters = 0;
  for (let b = 0; b < qd.batch; b++) {
    for (let r = 0; r < routingHeads; r++) {
      const router = routers[b * routingHeads + r]!;
      kmeansBefore += router.kmeansMs;
      const base = rowOffset(kd, b, r, 0);
      for (let position = firstNew; position < keySeq; position++) {
        router.addKey(keys.data, base);
        if (position < queryOffset) continue;
        const i = position - queryOffset;
        for (let g = 0; g < group; g++) {
          const h = r * group + g;
          const row = (b * qd.heads + h) * querySeq + i;
          parts.beginRow(row);
          const count = router.routeQuery(q.data, rowOffset(qd, b, h, i), settings.queryClusters, chosen);
          if (count === 0) {
            calibrating++;
            parts.addRange(0, position + 1);
            continue;
          }
          for (let m = 0; m < count; m++) {
            const { list, size } = router.members(chosen[m]!);
            parts.addPartWithSelf(list, 0, size, position, settings.sharedQK);
          }
          if (settings.sinkTokens > 0) parts.addRange(0, Math.min(settings.sinkTokens, position + 1));
          if (settings.localWindow > 0) parts.addRange(Math.max(0, position - settings.localWindow + 1), position + 1);
        }
      }
      kmeansAfter += router.kmeansMs;
      largest = Math.max(largest, router.largestCluster() / Math.max(1, router.length));
      clusters += router.clusters;
    }
  }
  const selectionMs = performance.now() - started;
  const layout = { batch: qd.batch, heads: qd.heads, rowsPerHead: querySeq, keySeq, queryOffset, selfRule: settings.sharedQK };
  const routed = runRoutedAttention({ q, k: keys, v: values, causal: true, scale: settings.scale }, parts, layout, settings.combine, selectionMs);
  const rows = qd.batch * qd.heads * querySeq;
  const kmeansMs = kmeansAfter - kmeansBefore;
  const totalMs = routed.stats.selectionMs + routed.stats.attentionMs;
  return {
    ...routed,
    diagnostics: {
      clusters: clusters / routers.length,
      kmeansMs,
      kmeansShare: totalMs > 0 ? kmeansMs / totalMs : 0,
      calibratingShare: calibrating / rows,
      largestClusterShare: largest,
      keysPerQuery: routed.stats.pairs / rows,
    },
  };
}
