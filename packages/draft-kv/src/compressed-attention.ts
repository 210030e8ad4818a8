/**
 * Application at the attention level: a call's keys are compressed once — scored by the call's
 * own window queries (and lookahead queries), top entries kept per KV head plus the window — and
 * every query of the call attends over the kept entries through core's exact `sparseAttention`.
 * This is what a decode query sees after kvpress-style prefill compression, applied to the whole
 * call so the conformance kit can check it (full budget equals dense; output equals exact
 * attention over the reported `headScope: 'kv'` selection; nothing after a query is read).
 */
import {
  ConfigError,
  KVCache,
  SelectionBuilder,
  denseAttention,
  sparseAttention,
  validateAttentionInput,
  validateDecoderStep,
  type AttentionDecoder,
  type AttentionInput,
  type AttentionResult,
  type DecoderShape,
  type Selection,
  type Tensor,
} from '@sparse-attn/core';
import { compressLayer, type LayerCompression } from './compress-layer.js';

/**
 * A decoder whose cache may hold fewer entries than the tokens it was fed. `length` counts the
 * tokens fed (the sequence position, as core's conformance kit expects); `cachedEntries` the KV
 * entries per head actually held.
 */
export interface EvictingDecoder extends AttentionDecoder {
  readonly cachedEntries: number;
}

/**
 * A call's compression: the scorer pipeline of {@link compressLayer}, or `choose` for methods
 * that pick their entries another way (SpecPC's shared token set).
 */
export type PlannedCompression = LayerCompression & { readonly choose?: (q: Tensor, k: Tensor, scale: number) => Int32Array[] };

/** Resolves a call's compression from its key and query counts (budget, window, observers). */
export type CompressionPlanner = (keySeq: number, querySeq: number) => PlannedCompression;

/** A `headScope: 'kv'` token selection with one row per (batch, KV head) shared by all `querySeq` queries. */
export function keptSelection(keep: readonly ArrayLike<number>[], batch: number, kvHeads: number, querySeq: number, keySeq: number): Selection {
  const builder = new SelectionBuilder(
    { kind: 'token', headScope: 'kv', batch, heads: kvHeads, rows: 1, queryBlockSize: querySeq, keySeq },
    keep.reduce((a, list) => a + list.length, 0),
  );
  for (const list of keep) builder.pushRow(list);
  return builder.finish();
}

/** Attention of every query of the call over the entries the planned compression keeps. */
export function compressedAttention(input: AttentionInput, plan: CompressionPlanner): AttentionResult {
  const d = validateAttentionInput(input);
  if (!d.causal) throw new ConfigError('KV-dropping methods are causal: the observation window scores the keys before it (causal: false is not supported)');
  return attendKept(input, d.batch, d.kvHeads, d.querySeq, d.keySeq, d.scale, plan);
}

function attendKept(input: AttentionInput, batch: number, kvHeads: number, querySeq: number, keySeq: number, scale: number, plan: CompressionPlanner): AttentionResult & { keep: Int32Array[] } {
  const spec = plan(keySeq, querySeq);
  const started = performance.now();
  const keep = spec.choose && spec.capacity < keySeq ? spec.choose(input.q, input.k, scale) : compressLayer(input.q, input.k, scale, spec).keep;
  const selectionMs = performance.now() - started;
  const selection = keptSelection(keep, batch, kvHeads, querySeq, keySeq);
  const result = sparseAttention({ ...input, causal: true, scale }, selection, { checkFinite: false, validateSelection: false, selectionMs });
  return {
    output: result.output,
    selection,
    stats: result.stats,
    backend: result.backend,
    diagnostics: { keptPerHead: keep[0]?.length ?? 0, keptShare: (keep[0]?.length ?? 0) / keySeq },
    keep,
  };
}

/**
 * The part every evicting decoder shares: a KV cache, the count of tokens fed, and the
 * accessors. `attend` runs one step over the cache (the step's tokens already appended) and may
 * compact the cache; `onReset` clears the caller's per-sequence state.
 */
export function createEvictingDecoder(
  shape: DecoderShape,
  attend: (input: AttentionInput, cache: KVCache, scale: number) => AttentionResult,
  onReset: () => void = () => {},
): EvictingDecoder {
  const cache = new KVCache({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim: shape.valueDim ?? shape.headDim });
  const scale = shape.scale ?? 1 / Math.sqrt(shape.headDim);
  let seen = 0;
  return {
    // Tokens fed so far (the sequence position, as core's conformance kit expects); the cache
    // itself may hold fewer (`cachedEntries`).
    get length() {
      return seen;
    },
    get cachedEntries() {
      return cache.length;
    },
    step(input: AttentionInput): AttentionResult {
      validateDecoderStep(shape, input, cache.length);
      cache.append(input.k, input.v);
      seen += input.q.shape[2]!;
      return attend(input, cache, scale);
    },
    reset() {
      cache.reset();
      seen = 0;
      onReset();
    },
  };
}

/**
 * A decoder that owns a KV cache and compresses it the way kvpress presses fire: on a multi-token
 * step (a prefill chunk) whose cache exceeds the budget, the step attends over the kept entries
 * exactly as {@link compressedAttention} does and the cache then drops every other entry
 * (`KVCache.retain`), so memory really shrinks; one-token steps append and attend over the whole
 * (compressed) cache. Token-by-token decoding from an empty cache therefore never compresses.
 */
export function createCompressingDecoder(shape: DecoderShape, plan: CompressionPlanner): EvictingDecoder {
  return createEvictingDecoder(shape, (input, cache, scale) => {
    const querySeq = input.q.shape[2]!;
    const call = { q: input.q, k: cache.keys(), v: cache.values(), causal: true, scale };
    if (querySeq > 1 && plan(cache.length, querySeq).capacity < cache.length) {
      const { keep, ...result } = attendKept(call, shape.batch, shape.kvHeads, querySeq, cache.length, scale, plan);
      cache.retain(keep);
      return result;
    }
    return denseAttention(call, { checkFinite: false });
  });
}
