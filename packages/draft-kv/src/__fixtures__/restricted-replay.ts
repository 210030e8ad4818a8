/**
 * Test fixture: a session policy that lets each decode step of a dense session read only the
 * cache indices `rows(layer, kvHead, keySeq)` returns (through core's `sparseAttention`). Replaying
 * a compressed run this way and getting the same logits proves the compressed cache read exactly
 * those entries, at those positions, and nothing else.
 */
import { SelectionBuilder } from '@sparse-attn/core';
import type { LayerPolicy, LlamaModel } from '@sparse-attn/model';

/** Decode steps restricted to `rows(layer, head, keySeq)` (sorted cache indices below `keySeq`). */
export function restrictedReplayPolicy(model: LlamaModel, rows: (layer: number, head: number, keySeq: number) => number[]): LayerPolicy {
  return {
    planLayer({ layer, step }) {
      if (step.phase !== 'decode') return undefined;
      const keySeq = step.cacheLengthBefore + 1;
      const builder = new SelectionBuilder({ kind: 'token', headScope: 'kv', batch: 1, heads: model.dims.kvHeads, rows: 1, keySeq });
      for (let h = 0; h < model.dims.kvHeads; h++) builder.pushRow(rows(layer, h, keySeq).filter((i) => i < keySeq));
      return { kind: 'selection', selection: builder.finish() };
    },
  };
}

/** Largest absolute difference of two logit vectors. */
export function maxLogitDifference(a: Float32Array, b: Float32Array): number {
  let err = 0;
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
  return err;
}
