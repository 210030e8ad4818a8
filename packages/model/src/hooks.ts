/**
 * The runtime's extension points: a {@link LayerPolicy} that decides, layer by layer within
 * one forward call, how each layer attends (its own method, dense, or a selection an earlier
 * layer produced), and {@link ForwardObserver}s that read what every layer computed.
 *
 * One forward call (a prefill chunk or a decode step) runs, for each layer `l` in order:
 *
 * 1. project, RoPE at the tokens' positions, append k/v to layer `l`'s {@link LayerKVCache};
 * 2. `policy.planLayer(context)` → a {@link LayerDirective} (default: the layer's method);
 * 3. attention as directed; per-head scores/probabilities captured if the directive asks;
 * 4. `policy.afterAttention(context, record)` (may edit the cache, e.g. `retain`);
 *    observers' `onAttention(record)`;
 * 5. o-proj, residual, MLP; observers' `onLayerOutput`.
 *
 * `context.trace` holds a {@link LayerSummary} of every earlier layer of the same call (its
 * selection and captured scores), which is how DELTA's sparse layers reuse the pages of the
 * last Δ-layer, TidalDecode's layers reuse a selection layer's top-k and a HyLRA plan maps
 * "reuse layer i" onto `trace[i].selection`.
 */
import type { AttentionMethod, AttentionResult, AttentionStats, BackendInfo, Selection, Tensor } from '@sparse-attn/core';
import type { LayerKVCache } from './layer-kv-cache.js';

/**
 * `prefill`: a call with several tokens, or the first token of an empty session;
 * `decode`: one token appended to a non-empty cache. DELTA and TidalDecode sparsify decode only;
 * kvpress-style compression fires on prefill.
 */
export type StepPhase = 'prefill' | 'decode';

/** What one forward call is processing. */
export interface StepInfo {
  /** Forward calls made before this one in the session (0 for the first). */
  readonly index: number;
  readonly phase: StepPhase;
  /** Token ids of this call. */
  readonly tokens: Int32Array;
  /** RoPE positions of those tokens (the session's `nextPosition` onwards unless given explicitly). */
  readonly positions: Int32Array;
  /** Entries in layer 0's cache before this call appended to it. */
  readonly cacheLengthBefore: number;
  /** Decoder layers of the model. */
  readonly layers: number;
}

/**
 * Which queries' scores to capture, as local indices of the call (0..T−1): `last` (the query
 * of a decode step, DELTA/TidalDecode), `all` (small prefills only: Hq·T·keys floats), or a
 * list (SnapKV/SpecKV observation windows: the last `w` prompt queries plus lookahead ones).
 */
export type CaptureQueries = 'last' | 'all' | readonly number[];

/**
 * How captured rows are folded over the queries: `sum` (H2O's accumulated attention), `mean`
 * (sum divided by the number of captured queries), `max` (SpecPC's reduction).
 */
export type ScoreReduction = 'sum' | 'mean' | 'max';

/** Request to record a layer's per-head attention scores for some queries. */
export interface ScoreCapture {
  readonly queries: CaptureQueries;
  /**
   * Fold the per-query probabilities into one row per query head (`scores.reduced`,
   * `[queryHeads, keySeq]`) instead of keeping `[queryHeads, queries, keySeq]`. Queries are
   * processed in chunks, so `queries: 'all'` on a long prefill costs O(heads · keys) memory.
   * Without it, captures above `MAX_CAPTURE_BYTES` (1 GiB) are refused with a `ConfigError`.
   */
  readonly reduce?: ScoreReduction;
  /**
   * Per-query weights applied before `reduce` (needs `reduce`): one per captured query in
   * ascending query order, e.g. SpecPC's linear 0→1 window weights.
   */
  readonly weights?: readonly number[];
}

/**
 * Per-head attention scores of the captured queries over the layer's cache, laid out
 * `[queryHeads, queries.length, keySeq]`. `logits` are the scaled scores `scale·q·k`;
 * `probabilities` the softmax over the keys the layer actually attended (its selection, causally
 * visible). Keys outside that set hold `-Infinity` / `0`. Computed through core's `matmul`.
 * When the capture asked for a reduction, `logits` and `probabilities` are empty and `reduced`
 * holds the folded probabilities `[queryHeads, keySeq]`.
 */
export interface AttentionScores {
  /** Local query indices (0..T−1) the rows refer to. */
  readonly queries: Int32Array;
  readonly queryHeads: number;
  /** Cache length the columns refer to. */
  readonly keySeq: number;
  readonly logits: Float32Array;
  readonly probabilities: Float32Array;
  /** The reduction applied, when the capture asked for one. */
  readonly reduction?: ScoreReduction;
  /** `[queryHeads, keySeq]`: the probabilities folded over the captured queries (with `reduction`). */
  readonly reduced?: Float32Array;
}

/**
 * How a layer attends in this call.
 *
 * - `method`: the layer's own {@link AttentionMethod}, driven by the session (default).
 * - `dense`: core's dense attention over the layer's whole cache (DELTA full and Δ-layers).
 * - `selection`: core's exact `sparseAttention` over the layer's cache restricted to
 *   `selection` (DELTA/TidalDecode sparse layers, HyLRA reuse). The selection's `keySeq` must be
 *   the layer's cache length after the append, its rows the call's queries.
 *
 * Any directive may add `capture` to record the layer's per-head scores in its record.
 */
export type LayerDirective =
  | { readonly kind: 'method'; readonly capture?: ScoreCapture }
  | { readonly kind: 'dense'; readonly capture?: ScoreCapture }
  | { readonly kind: 'selection'; readonly selection: Selection; readonly capture?: ScoreCapture; readonly selectionMs?: number };

/** What a policy sees before and after a layer's attention. */
export interface LayerContext {
  readonly layer: number;
  readonly step: StepInfo;
  /** Queries of the call, post-RoPE, `[1, queryHeads, T, headDim]`. */
  readonly q: Tensor;
  /** Keys of the call's tokens, post-RoPE, `[1, kvHeads, T, headDim]` (already appended to `cache`). */
  readonly k: Tensor;
  /** Values of the call's tokens, `[1, kvHeads, T, headDim]` (already appended to `cache`). */
  readonly v: Tensor;
  /** The layer's KV cache, holding this call's tokens too. Editable from `afterAttention`. */
  readonly cache: LayerKVCache;
  /** The layer's configured method. */
  readonly method: AttentionMethod;
  /** Summaries of the layers already run in this call, indexed by layer. */
  readonly trace: readonly LayerSummary[];
}

/** What remains of a layer's attention once the call moves on (kept in {@link ForwardResult}). */
export interface LayerSummary {
  readonly layer: number;
  readonly directive: LayerDirective['kind'];
  /** The keys the layer attended: the forced selection, or the method's reported one. */
  readonly selection?: Selection;
  /** Captured scores, when the directive asked for them. */
  readonly scores?: AttentionScores;
  readonly stats: AttentionStats;
  readonly backend: BackendInfo;
  readonly diagnostics?: Readonly<Record<string, number>>;
  /** Cache entries the layer attended over (after this call's append). */
  readonly keySeq: number;
}

/** Everything a layer's attention produced, handed to observers and `afterAttention`. */
export interface LayerRecord extends LayerSummary {
  /** Post-RoPE queries `[1, queryHeads, T, headDim]`. */
  readonly q: Tensor;
  /** Post-RoPE keys of the call's tokens `[1, kvHeads, T, headDim]`. */
  readonly k: Tensor;
  /** Values of the call's tokens `[1, kvHeads, T, headDim]`. */
  readonly v: Tensor;
  /** Attention output before `o_proj`, `[1, queryHeads, T, headDim]`. */
  readonly output: Tensor;
  readonly result: AttentionResult;
}

/**
 * Decides how each layer attends. One object sees every layer of every call in order, so it
 * may keep state across layers and steps (DELTA's current page set, a HyLRA plan's cursor).
 * Every callback is optional.
 */
export interface LayerPolicy {
  /** Before layer 0 of a call. */
  beginStep?(step: StepInfo): void;
  /** How layer `context.layer` attends; `undefined` means `{ kind: 'method' }`. */
  planLayer?(context: LayerContext): LayerDirective | undefined;
  /** After the layer's attention, before its o-proj. May edit `context.cache` (evict / retain). */
  afterAttention?(context: LayerContext, record: LayerRecord): void;
  /** After the last layer of a call. */
  endStep?(step: StepInfo, trace: readonly LayerSummary[]): void;
}

/**
 * Reads what the model computes without changing it: the bench dumps per-layer q/k/v, and
 * draft-guided methods read a draft model's attention. Records' tensors are only valid during
 * the callback unless copied (the runtime may reuse buffers in later versions).
 */
export interface ForwardObserver {
  beginStep?(step: StepInfo): void;
  /** After each layer's attention (and after the policy's `afterAttention`). */
  onAttention?(record: LayerRecord, step: StepInfo): void;
  /** The residual stream after layer `layer`, `[T, hidden]` row-major. */
  onLayerOutput?(layer: number, hidden: Float32Array, step: StepInfo): void;
  endStep?(step: StepInfo, trace: readonly LayerSummary[]): void;
}

/** The result of one forward call. */
export interface ForwardResult {
  readonly step: StepInfo;
  /** Logits `[rows, vocab]` row-major for the rows asked for (`last`: the last token only). */
  readonly logits: Float32Array;
  /** Rows of `logits`. */
  readonly logitRows: number;
  readonly vocabSize: number;
  /** Per-layer summaries of this call. */
  readonly trace: readonly LayerSummary[];
}
