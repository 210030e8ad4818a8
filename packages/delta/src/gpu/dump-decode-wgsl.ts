/**
 * Kernel: a Δ-layer's dense decode with DELTA's score "dump" — the backend's split-K decode
 * kernels (`decodePartialWgsl`, `decodeMergeWgsl` of `@sparse-attn/backend-gpu`) with two extra
 * outputs, so the page scores need no second pass over the keys:
 *
 *   partial pass:  logits[x][t] = scale · q_x · k_t      for every key t the partition scores
 *   merge pass:    lseAll[x]    = lse_x                  (the merged log-sum-exp, as `lse`)
 *
 * where x = querySlotBase + local query slot is the query slot of the whole call (every chunk's
 * rows land in one `[B·Hq][keySeq]` buffer, which the page-score kernel reads across KV heads).
 * This is the reference's fused FlashInfer dump (`del3_legacy_softmax`), and what `decode-scores.ts`
 * does on the CPU by reusing the dense attention's lse. The attention itself is unchanged: the
 * generated code is the backend's kernel text plus the lines below, inserted at fixed anchors; a
 * change of the backend kernel that moves an anchor throws here (and in the unit test), instead of
 * silently running something else.
 */
import { decodeMergeWgsl, decodePartialWgsl, type DecodeKernelOptions } from '@sparse-attn/backend-gpu';

/** Uniform block of the dump outputs (4 × 4 bytes), bound after the backend kernel's own bindings. */
export const DUMP_PARAMS = ['querySlotBase', 'querySeq', 'pad0', 'pad1'] as const;

const DUMP_STRUCT = 'struct DumpParams { querySlotBase: u32, querySeq: u32, pad0: u32, pad1: u32 }\n';

/** Inserts `text` before (or after) the line containing `anchor`, which must occur exactly once. */
function insertAt(code: string, anchor: string, text: string, where: 'before' | 'after', kernel: string): string {
  const at = code.indexOf(anchor);
  if (at < 0 || code.indexOf(anchor, at + 1) >= 0) {
    throw new Error(`${kernel}: the backend kernel no longer contains "${anchor.trim()}" exactly once; update delta's dump-decode-wgsl.ts`);
  }
  const lineStart = code.lastIndexOf('\n', at) + 1;
  const lineEnd = code.indexOf('\n', at);
  return where === 'before' ? code.slice(0, lineStart) + text + code.slice(lineStart) : code.slice(0, lineEnd + 1) + text + code.slice(lineEnd + 1);
}

/**
 * The backend's split-K partial kernel that also writes every scored logit: bindings 0–4 as
 * `decodePartialWgsl` (params, q, k, v, partial), 5 the logits `[B·Hq·querySeq][keySeq]`, 6 the
 * {@link DUMP_PARAMS} uniform.
 */
export function decodePartialDumpWgsl(o: DecodeKernelOptions): string {
  let code = decodePartialWgsl(o);
  code = insertAt(code, '@group(0) @binding(4) var<storage, read_write> partial', `${DUMP_STRUCT}@group(0) @binding(5) var<storage, read_write> dumpLogits: array<f32>;\n@group(0) @binding(6) var<uniform> dump: DumpParams;\n`, 'after', 'decode partial');
  return insertAt(code, 'red[lid] = s;', '    if (live) { dumpLogits[((dump.querySlotBase + slot) * P.querySeq + i) * P.keySeq + key] = s; }\n', 'before', 'decode partial');
}

/**
 * The backend's split-K merge kernel that also writes each row's log-sum-exp into the call-wide
 * buffer: bindings 0–3 as `decodeMergeWgsl` (params, partial, out, lse), 4 `lseAll`, 5 the
 * {@link DUMP_PARAMS} uniform.
 */
export function decodeMergeLseWgsl(valueDim: number): string {
  let code = decodeMergeWgsl(valueDim);
  code = insertAt(code, '@group(0) @binding(3) var<storage, read_write> lse', `${DUMP_STRUCT}@group(0) @binding(4) var<storage, read_write> lseAll: array<f32>;\n@group(0) @binding(5) var<uniform> dump: DumpParams;\n`, 'after', 'decode merge');
  return insertAt(code, 'if (lid == 0u) { lse[row] =', '  if (lid == 0u) { lseAll[dump.querySlotBase * dump.querySeq + row] = lse[row]; }\n', 'after', 'decode merge');
}
