/**
 * Kernel: the compression and sliding-window branches of NSA's `gated` combination, run through
 * core's exact sparse executor in query chunks (spec §3.2, §3.5; FLA semantics).
 *
 *   o_t^cmp = Σ_{i < NC(t)} softmax_i(scale · q_t·k̃_i) ṽ_i      (0 when NC(t) = 0)
 *   o_t^win = Σ_{j = max(0, t − w + 1)}^{t} softmax_j(scale · q_t·k_j) v_j   (exactly w keys incl. t)
 *
 * Both are token-level selections (a window starts at any token), so queries are processed in
 * chunks that bound the selection's size; no S×S buffer and no softmax loop of our own.
 */
import {
  SelectionBuilder,
  rowOffset,
  sliceSeq,
  sparseAttention,
  type BackendInfo,
  type Selection,
  type Tensor,
} from '@sparse-attn/core';
import type { ForwardCall } from './cached-decoder.js';
import { visibleWindows } from './nsa-block-selector.js';

/** One branch's output `[B, Hq, Tq, Dv]` flattened, with what it cost. */
export interface BranchResult {
  readonly output: Float32Array;
  readonly pairs: number;
  readonly kvBytesRead: number;
  readonly attentionMs: number;
  readonly backend: BackendInfo;
}

/** Selection entries per chunk: bounds the memory of token-level branch selections. */
const CHUNK_ENTRIES = 1 << 22;

/**
 * Runs token-level range attention over query chunks. `keysFor(end)` gives the K/V (and whether
 * the call is causal) for queries `[0, end)`; `range(t)` the `[start, end)` keys of absolute query t.
 */
function chunkedRangeAttention(
  call: ForwardCall,
  keysPerQuery: number,
  keysFor: (chunkStart: number, chunkEnd: number) => { k: Tensor; v: Tensor; causal: boolean; keySeq: number },
  range: (t: number) => readonly [number, number],
): BranchResult {
  const d = call.dims;
  const output = new Float32Array(d.batch * d.queryHeads * d.querySeq * d.valueDim);
  const chunk = Math.max(1, Math.min(d.querySeq, Math.floor(CHUNK_ENTRIES / Math.max(1, d.batch * d.kvHeads * keysPerQuery))));
  let pairs = 0;
  let kvBytesRead = 0;
  let attentionMs = 0;
  let backend: BackendInfo = { backend: 'cpu', kernel: 'none' };
  for (let a = 0; a < d.querySeq; a += chunk) {
    const e = Math.min(d.querySeq, a + chunk);
    const keys = keysFor(a, e);
    const builder = new SelectionBuilder({ kind: 'token', headScope: 'kv', batch: d.batch, heads: d.kvHeads, rows: e - a, keySeq: keys.keySeq }, d.batch * d.kvHeads * (e - a) * keysPerQuery);
    for (let b = 0; b < d.batch; b++) {
      for (let h = 0; h < d.kvHeads; h++) {
        for (let i = a; i < e; i++) {
          const [start, end] = range(d.queryOffset + i);
          builder.pushRange(start, end);
        }
      }
    }
    const q = a === 0 && e === d.querySeq ? call.q : sliceSeq(call.q, a, e);
    const result = sparseAttention({ q, k: keys.k, v: keys.v, causal: keys.causal, scale: d.scale }, builder.finish() as Selection, { checkFinite: false, validateSelection: false });
    scatterRows(result.output.data, output, d.batch * d.queryHeads, e - a, d.querySeq, a, d.valueDim);
    pairs += result.stats.pairs;
    kvBytesRead += result.stats.kvBytesRead;
    attentionMs += result.stats.attentionMs;
    backend = result.backend;
  }
  return { output, pairs, kvBytesRead, attentionMs, backend };
}

/** Copies `[heads, rows, dim]` chunk rows into rows `[at, at + rows)` of a `[heads, total, dim]` buffer. */
function scatterRows(chunk: Float32Array, out: Float32Array, heads: number, rows: number, total: number, at: number, dim: number): void {
  for (let hh = 0; hh < heads; hh++) out.set(chunk.subarray(hh * rows * dim, (hh + 1) * rows * dim), (hh * total + at) * dim);
}

/** The sliding-window branch: each query attends to its last `window` keys (itself included). */
export function windowBranch(call: ForwardCall, window: number): BranchResult {
  const d = call.dims;
  return chunkedRangeAttention(
    call,
    Math.max(1, window),
    (_a, e) => {
      const keySeq = d.queryOffset + e;
      return {
        k: { data: call.k.data, shape: [d.batch, d.kvHeads, keySeq, d.headDim], seqCapacity: d.kDims.capacity },
        v: { data: call.v.data, shape: [d.batch, d.kvHeads, keySeq, d.valueDim], seqCapacity: d.vDims.capacity },
        causal: true,
        keySeq,
      };
    },
    (t) => (window > 0 ? [Math.max(0, t - window + 1), t + 1] : [0, 0]),
  );
}

/** The compression branch: each query attends to the pooled windows visible to it (0 if none). */
export function compressionBranch(call: ForwardCall, length: number, stride: number): BranchResult {
  const d = call.dims;
  const windows = Math.max(1, call.means.count);
  return chunkedRangeAttention(
    call,
    windows,
    (a, e) => {
      const { k, v } = call.means.tensors(e - a);
      return { k, v, causal: false, keySeq: k.shape[2]! };
    },
    (t) => [0, visibleWindows(t, length, stride)],
  );
}

/** Offset helper re-exported for the combiner: row `[b, h, i]` of a `[B, H, T, D]` buffer. */
export function outputOffset(d: ForwardCall['dims'], b: number, h: number, i: number): number {
  return rowOffset({ batch: d.batch, heads: d.queryHeads, seq: d.querySeq, dim: d.valueDim, capacity: d.querySeq }, b, h, i);
}
