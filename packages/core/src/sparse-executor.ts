import { densePairCount, validateAttentionInput, type AttentionDims, type AttentionInput, type AttentionResult } from './attention.js';
import { ShapeError } from './errors.js';
import { forEachKeyRange, validateSelection, type Selection } from './selection.js';
import { rowOffset, tensor } from './tensor.js';
import { attendRanges, createRowScratch } from './kernels/attend-ranges.js';

/** Result of the exact sparse executor: output, the selection it ran, and per-query log-sum-exp. */
export interface SparseAttentionResult extends AttentionResult {
  readonly selection: Selection;
  /**
   * Natural-log log-sum-exp of the scaled scores over each query's attended keys, `[B, Hq, Sq]`
   * flattened; `-Infinity` where a query attended to nothing (its output row is 0). Two partial
   * attentions over disjoint key sets merge exactly with {@link mergeAttention}.
   */
  readonly lse: Float32Array;
}

/** Options of {@link sparseAttention}. */
export interface SparseAttentionOptions {
  /** Milliseconds the caller spent choosing the selection, carried into the stats. */
  readonly selectionMs?: number;
  /** Check the selection's structure (sorted, unique, in range). On by default; O(nnz). */
  readonly validateSelection?: boolean;
  /** Skip the NaN/Infinity scan of q, k, v when the caller already did it. */
  readonly checkFinite?: boolean;
}

/**
 * The exact sparse executor: attention of every query over exactly its selected keys, with
 * causal masking applied on top of the selection, computed with a max-subtracted softmax
 * per query (O(selected keys) scratch, never S×S). Every method family runs its attention
 * through this function instead of writing its own loop.
 *
 * o_i = Σ_{j ∈ sel(i), j ≤ pos(i)} softmax_j(scale · q_i·k_j) v_j
 */
export function sparseAttention(input: AttentionInput, selection: Selection, options: SparseAttentionOptions = {}): SparseAttentionResult {
  const d = validateAttentionInput(input, { checkFinite: options.checkFinite ?? true });
  checkSelectionFits(selection, d);
  if (options.validateSelection ?? true) validateSelection(selection);
  const started = performance.now();
  const out = new Float32Array(d.batch * d.queryHeads * d.querySeq * d.valueDim);
  const lse = new Float32Array(d.batch * d.queryHeads * d.querySeq);
  const scratch = createRowScratch(d.keySeq, d.valueDim);
  const { q, k, v } = input;
  let pairs = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      const kvh = Math.floor(h / d.groupSize);
      const selHead = selection.headScope === 'query' ? h : kvh;
      const kBase = rowOffset(d.kDims, b, kvh, 0);
      const vBase = rowOffset(d.vDims, b, kvh, 0);
      for (let i = 0; i < d.querySeq; i++) {
        const row = (b * selection.heads + selHead) * selection.rows + Math.floor(i / selection.queryBlockSize);
        const limit = d.causal ? d.queryOffset + i + 1 : d.keySeq;
        const outRow = (b * d.queryHeads + h) * d.querySeq + i;
        scratch.rangeCount = 0;
        forEachKeyRange(selection, row, limit, (start, end) => scratch.pushRange(start, end));
        pairs += attendRanges(
          q.data, rowOffset(d.qDims, b, h, i),
          k.data, kBase, v.data, vBase,
          d.headDim, d.valueDim, d.scale,
          scratch, out, outRow * d.valueDim, lse, outRow,
        );
      }
    }
  }
  const attentionMs = performance.now() - started;
  return {
    output: tensor([d.batch, d.queryHeads, d.querySeq, d.valueDim], out),
    selection,
    lse,
    stats: sparseStats(d, pairs, selection.headScope === 'kv', options.selectionMs ?? 0, attentionMs),
    // The row kernel that actually ran (`wasm-simd` where WebAssembly SIMD loads, else `js`).
    backend: { backend: 'cpu', kernel: `executor-${scratch.kernel}`, ...(scratch.fallbackReason ? { fallbackReason: scratch.fallbackReason } : {}) },
  };
}

/** Stats for `pairs` scored pairs; KV rows shared by a GQA group are counted once per group. */
export function sparseStats(d: AttentionDims, pairs: number, sharedAcrossGroup: boolean, selectionMs: number, attentionMs: number) {
  const densePairs = densePairCount(d);
  const rowsRead = sharedAcrossGroup ? pairs / d.groupSize : pairs;
  return {
    pairs,
    densePairs,
    density: densePairs === 0 ? 0 : pairs / densePairs,
    kvBytesRead: rowsRead * 4 * (d.headDim + d.valueDim),
    selectionMs,
    attentionMs,
  };
}

function checkSelectionFits(s: Selection, d: AttentionDims): void {
  const heads = s.headScope === 'query' ? d.queryHeads : d.kvHeads;
  if (s.batch !== d.batch || s.heads !== heads) {
    throw new ShapeError(`selection is for batch ${s.batch} × ${s.heads} ${s.headScope} heads, input has batch ${d.batch} × ${heads} ${s.headScope} heads`);
  }
  const rows = Math.ceil(d.querySeq / s.queryBlockSize);
  if (s.rows !== rows) throw new ShapeError(`selection has ${s.rows} query rows of ${s.queryBlockSize}; ${d.querySeq} queries need ${rows}`);
  if (s.keySeq !== d.keySeq) throw new ShapeError(`selection refers to ${s.keySeq} keys, input has ${d.keySeq}`);
}

/**
 * Merges two partial attentions over disjoint key sets exactly, using their log-sum-exps:
 * o = (e^{lse_a} o_a + e^{lse_b} o_b) / (e^{lse_a} + e^{lse_b}). Returns the merged output and lse.
 */
export function mergeAttention(
  a: { output: Float32Array; lse: Float32Array },
  b: { output: Float32Array; lse: Float32Array },
  valueDim: number,
): { output: Float32Array; lse: Float32Array } {
  if (a.output.length !== b.output.length || a.lse.length !== b.lse.length || a.lse.length * valueDim !== a.output.length) {
    throw new ShapeError(`mergeAttention: partials differ in size (${a.output.length}/${a.lse.length} vs ${b.output.length}/${b.lse.length}, valueDim ${valueDim})`);
  }
  const output = new Float32Array(a.output.length);
  const lse = new Float32Array(a.lse.length);
  for (let r = 0; r < a.lse.length; r++) {
    const la = a.lse[r]!;
    const lb = b.lse[r]!;
    const m = Math.max(la, lb);
    if (m === -Infinity) {
      lse[r] = -Infinity;
      continue;
    }
    const wa = Math.exp(la - m);
    const wb = Math.exp(lb - m);
    const sum = wa + wb;
    lse[r] = m + Math.log(sum);
    const o = r * valueDim;
    for (let c = 0; c < valueDim; c++) output[o + c] = (wa * a.output[o + c]! + wb * b.output[o + c]!) / sum;
  }
  return { output, lse };
}
