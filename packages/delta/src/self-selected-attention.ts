/**
 * The attention-level form of a layer-reuse selector: each query row attends to what the
 * selector picks from that row's own per-head attention scores (what a sparse layer would reuse
 * if its attention matched its Δ-layer's exactly — the selector's upper bound). Rows whose
 * visible keys fit the budget attend to every visible key. Scores come from `decode-scores.ts`
 * one query row at a time (O(S) scratch, never S×S), the same arithmetic for a prefill row and
 * the decode step at that position, so decode equals prefill exactly; the attention itself runs
 * through core's exact `sparseAttention`.
 */
import {
  ConfigError,
  KVCache,
  SelectionBuilder,
  validateDecoderStep,
  type AttentionDecoder,
  type DecoderShape,
  denseAttention,
  sparseAttention,
  validateAttentionInput,
  type AttentionDims,
  type AttentionInput,
  type AttentionResult,
  type Selection,
  type Tensor,
} from '@sparse-attn/core';
import { decodeLogits, softmaxRows } from './decode-scores.js';

/** One query row's per-head scores over its visible keys, laid out `[queryHeads, keySeq]`. */
export interface RowScores {
  readonly queryHeads: number;
  /** Keys the row sees (causally visible). */
  readonly keySeq: number;
  /** Scaled logits `scale · q · k`. */
  readonly logits: Float32Array;
  /** Softmax of `logits` per head (computed on first access: token top-k selectors never need it). */
  readonly probabilities: Float32Array;
}

/** Row scores over `logits` whose probabilities are computed only if a selector reads them. */
function rowScores(queryHeads: number, keySeq: number, logits: Float32Array): RowScores {
  let probabilities: Float32Array | undefined;
  return {
    queryHeads,
    keySeq,
    logits,
    get probabilities() {
      probabilities ??= softmaxRows(logits, queryHeads, keySeq);
      return probabilities;
    },
  };
}

/** How a selector turns one query row's scores into key lists. */
export interface RowSelector {
  readonly kind: 'token' | 'block';
  /** Keys per selected unit (the page size, or 1 for tokens). */
  readonly blockSize: number;
  /** `kv`: one list per KV head (unified selection); `query`: one list per query head. */
  readonly headScope: 'kv' | 'query';
  /** Whether a query seeing `visible` keys needs scoring (otherwise it keeps every visible unit). */
  needsSelection(visible: number): boolean;
  /** The lists of one query row from its scores: one sorted list per head of `headScope`. */
  selectRow(scores: RowScores, kvHeads: number): readonly Int32Array[];
}

/** A `[1, heads, seq, dim]` view of batch `b` of a rank-4 tensor (no copy). */
function batchView(t: Tensor, d: { heads: number; seq: number; dim: number; capacity: number }, b: number): Tensor {
  const size = d.heads * d.capacity * d.dim;
  return { data: t.data.subarray(b * size, (b + 1) * size), shape: [1, d.heads, d.seq, d.dim], seqCapacity: d.capacity };
}

/** Builds the self-selected selection of every query row of a causal `input` (rows = querySeq). */
export function selfSelection(input: AttentionInput, d: AttentionDims, selector: RowSelector): Selection {
  const heads = selector.headScope === 'kv' ? d.kvHeads : d.queryHeads;
  const builder = new SelectionBuilder({ kind: selector.kind, blockSize: selector.blockSize, headScope: selector.headScope, batch: d.batch, heads, rows: d.querySeq, keySeq: d.keySeq });
  const units = (visible: number) => Math.ceil(visible / selector.blockSize);
  for (let b = 0; b < d.batch; b++) {
    const q = batchView(input.q, d.qDims, b);
    const k = batchView(input.k, d.kDims, b);
    const lists: Int32Array[][] = Array.from({ length: heads }, () => new Array<Int32Array>(d.querySeq));
    for (let i = 0; i < d.querySeq; i++) {
      const visible = d.queryOffset + i + 1;
      let rowLists: readonly Int32Array[];
      if (selector.needsSelection(visible)) {
        const logits = decodeLogits(q, k, d.scale, { row: i, visible });
        rowLists = selector.selectRow(rowScores(d.queryHeads, visible, logits), d.kvHeads);
      } else {
        const all = Int32Array.from({ length: units(visible) }, (_, u) => u);
        rowLists = Array.from({ length: heads }, () => all);
      }
      for (let h = 0; h < heads; h++) lists[h]![i] = rowLists[h]!;
    }
    for (let h = 0; h < heads; h++) for (let i = 0; i < d.querySeq; i++) builder.pushRow(lists[h]![i]!);
  }
  return builder.finish();
}

/**
 * A selection naming every unit for every query (one row shared by all queries, masked causally
 * by the executor): what a dense prefill reports.
 */
export function denseSelection(d: AttentionDims, selector: Pick<RowSelector, 'kind' | 'blockSize' | 'headScope'>): Selection {
  const heads = selector.headScope === 'kv' ? d.kvHeads : d.queryHeads;
  const builder = new SelectionBuilder({ kind: selector.kind, blockSize: selector.blockSize, headScope: selector.headScope, batch: d.batch, heads, rows: 1, queryBlockSize: d.querySeq, keySeq: d.keySeq });
  for (let r = 0; r < d.batch * heads; r++) builder.pushRange(0, Math.ceil(d.keySeq / selector.blockSize));
  return builder.finish();
}

/**
 * Attention of `input` where each query row attends to its self-selected keys (`select`) or,
 * for `dense`, core's dense attention reported with a selection of every key. `finiteChecked`:
 * the caller already checked every value (a decoder checks each step before caching it), so the
 * cache is not scanned again.
 */
export function selfSelectedAttention(input: AttentionInput, selector: RowSelector, mode: 'dense' | 'select', finiteChecked = false): AttentionResult {
  const d = validateAttentionInput(input, { checkFinite: !finiteChecked });
  if (!d.causal) throw new ConfigError('layer-reuse methods select from causal decoder attention; causal: false is not supported');
  if (mode === 'dense') {
    const result = denseAttention(input, { checkFinite: false });
    return { output: result.output, selection: denseSelection(d, selector), stats: result.stats, backend: result.backend };
  }
  const started = performance.now();
  const selection = selfSelection(input, d, selector);
  const selectionMs = performance.now() - started;
  const result = sparseAttention(input, selection, { checkFinite: false, selectionMs });
  return { output: result.output, selection, stats: result.stats, backend: result.backend };
}

/**
 * A decoder over its own KV cache for a self-selected method: one-token steps select (decode),
 * longer chunks follow `prefillMode`. Each step's tokens are validated (shapes, finite values)
 * before they are cached, so a step never re-scans the cache; the cache lives in the kernels'
 * memory (as core's dense decoder's) so dense and sparse kernels read it in place.
 */
export function selfSelectedDecoder(shape: DecoderShape, selector: RowSelector, prefillMode: 'dense' | 'select'): AttentionDecoder {
  const cache = new KVCache({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim: shape.valueDim ?? shape.headDim, storage: 'kernel' });
  return {
    get length() {
      return cache.length;
    },
    step(input: AttentionInput): AttentionResult {
      validateDecoderStep(shape, input, cache.length);
      cache.append(input.k, input.v);
      const mode = input.q.shape[2] === 1 ? 'select' : prefillMode;
      return selfSelectedAttention({ q: input.q, k: cache.keys(), v: cache.values(), causal: true, scale: shape.scale }, selector, mode, true);
    },
    reset: () => cache.reset(),
  };
}
