/**
 * StreamingLLM's prefill attention in one pass of the backend's flash kernel (`lists` mode, see
 * `FlashAttentionListHooks`): a workgroup takes BR consecutive queries of one query head, and its
 * key list is the sinks followed by the band [max(sinks, p₀ + 1 − recent), p_last] that holds
 * every one of its rows' recent windows; each row masks the band down to its own window
 * ([0, sinks) ∪ [max(sinks, p + 1 − recent), p + 1), the CPU tracker's kept set). No selection is
 * written and nothing is merged: each row's one softmax goes straight to `out` / `lse`.
 *
 * Work per query tile: ⌈(sinks + recent + BR − 1) / 64⌉ key tiles (33 at the defaults 4 / 2000),
 * against the dense kernel's S / 128 on average for a causal call of S keys.
 */
import type { FlashAttentionListHooks } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of {@link sinkWindowHooks} (order matters; `pad0` stays 0; `keyStride`: rows between KV slots of k and v). */
export const SINK_WINDOW_PARAMS = [
  'querySeq', 'keySeq', 'queryOffset', 'causal',
  'groupSize', 'slots', 'sinks', 'recent',
  'tilesX', 'scale', 'pad0', 'keyStride',
] as const;

/** The hooks of the sink + recent-window tiling (bindings 0–5 only: q, k, v, out, lse are the kernel's). */
export function sinkWindowHooks(): FlashAttentionListHooks {
  return {
    params: `  querySeq: u32, keySeq: u32, queryOffset: u32, causal: u32,
  groupSize: u32, slots: u32, sinks: u32, recent: u32,
  tilesX: u32, scale: f32, pad0: u32, keyStride: u32,`,
    declarations: /* wgsl */ `
// First key of tile row r's recent window (INVALID for an idle row).
var<workgroup> rowStart: array<u32, BR>;

fn sinkWindowAllow(r: u32, keys: vec4<u32>) -> vec4<bool> {
  return (keys < vec4<u32>(P.sinks)) | (keys >= vec4<u32>(rowStart[r]));
}`,
    prologue: /* wgsl */ `
  let tilesPerSlot = (P.querySeq + BR - 1u) / BR;
  if (linear >= P.slots * tilesPerSlot) { return; }
  let qslot = linear / tilesPerSlot;
  let i0 = (linear % tilesPerSlot) * BR;
  let iLast = min(i0 + BR, P.querySeq) - 1u;
  let kvBase = (qslot / P.groupSize) * P.keyStride;
  let lastPos = P.queryOffset + iLast;
  let sinkCount = min(P.sinks, P.keySeq);
  // The band starts at the first row's window (the lowest of the tile's) and ends at its last query.
  let bandStart = max(max(P.queryOffset + i0 + 1u, P.recent) - P.recent, sinkCount);
  let bandEnd = max(bandStart, min(lastPos + 1u, P.keySeq));
  let slotCount = sinkCount + bandEnd - bandStart;
  if (lid < BR) {
    let i = i0 + lid;
    rowQ[lid] = INVALID;
    rowOut[lid] = INVALID;
    rowPos[lid] = 0u;
    rowStart[lid] = INVALID;
    if (i < P.querySeq) {
      let position = P.queryOffset + i;
      rowQ[lid] = qslot * P.querySeq + i;
      rowOut[lid] = qslot * P.querySeq + i;
      rowPos[lid] = position;
      rowStart[lid] = max(max(position + 1u, P.recent) - P.recent, sinkCount);
    }
  }
  workgroupBarrier();`,
    keyAt: (s) => `select(bandStart + ${s} - sinkCount, ${s}, ${s} < sinkCount)`,
    allow: (i) => `sinkWindowAllow(4u * ty + ${i}u, keys)`,
    workgroupBytes: 4 * 64,
  };
}
