import { dims4, rowOffset, tensor, type Tensor } from '@sparse-attn/core';
import { normalizeRows, type RoutingNormalization } from './normalize-rows.js';

/**
 * Shared-QK attention keys and values (Routing Transformer's default for causal LMs, spec
 * routing.md §2/§3.1): the keys are the normalised queries, `k = normalise(q)`, one key per
 * query head, and each query head reads the values of its KV head. Returns `k` `[B, Hq, S, D]`
 * and `v` `[B, Hq, S, Dv]` (the values are copied per query head only under GQA).
 */
export function sharedQKKeysAndValues(q: Tensor, v: Tensor, normalization: RoutingNormalization): { k: Tensor; v: Tensor } {
  const qd = dims4(q, 'q');
  const vd = dims4(v, 'v');
  const k = new Float32Array(qd.batch * qd.heads * qd.seq * qd.dim);
  for (let b = 0; b < qd.batch; b++) {
    for (let h = 0; h < qd.heads; h++) {
      normalizeRows(q.data, rowOffset(qd, b, h, 0), k, ((b * qd.heads + h) * qd.seq) * qd.dim, qd.seq, qd.dim, normalization);
    }
  }
  const keys = tensor([qd.batch, qd.heads, qd.seq, qd.dim], k);
  if (vd.heads === qd.heads && vd.capacity === vd.seq) return { k: keys, v };
  const group = qd.heads / vd.heads;
  const values = new Float32Array(qd.batch * qd.heads * vd.seq * vd.dim);
  for (let b = 0; b < qd.batch; b++) {
    for (let h = 0; h < qd.heads; h++) {
      const src = rowOffset(vd, b, Math.floor(h / group), 0);
      values.set(v.data.subarray(src, src + vd.seq * vd.dim), ((b * qd.heads + h) * vd.seq) * vd.dim);
    }
  }
  return { k: keys, v: tensor([qd.batch, qd.heads, vd.seq, vd.dim], values) };
}
