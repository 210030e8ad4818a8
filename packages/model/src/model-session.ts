import {
  ConfigError,
  ShapeError,
  assertFinite,
  denseAttention,
  denseMethod,
  matmul,
  sparseAttention,
  tensor,
  type AttentionDecoder,
  type AttentionMethod,
  type AttentionResult,
  type MatmulOptions,
  type Tensor,
} from '@sparse-attn/core';
import { attentionScores, resolveCaptureQueries } from './attention-scores.js';
import type { ForwardObserver, ForwardResult, LayerContext, LayerDirective, LayerPolicy, LayerRecord, LayerSummary, StepInfo } from './hooks.js';
import { LayerKVCache } from './layer-kv-cache.js';
import type { LlamaModel } from './llama-model.js';
import { rmsNorm } from './rms-norm.js';

/**
 * How the session drives a layer's {@link AttentionMethod}.
 *
 * - `cache` (default): the session owns the layer's KV cache ({@link LayerKVCache}) and each call
 *   runs `method.prefill({ q, k: cache.keys(), v: cache.values() })` — core's contract for a
 *   query chunk aligned to the end of the keys, which is a decode step when T = 1. One copy of
 *   K/V exists, the policy can force dense attention or a selection over it, and KV-dropping
 *   methods can edit it.
 * - `decoder`: the method's own decoder (`createDecoder` → `step`), for methods that keep
 *   incremental per-sequence state (page summaries, compressed blocks) that a re-run of
 *   `prefill` would rebuild every step. The decoder holds a private copy of K/V, so the
 *   session's copy of that layer is locked against edits and the policy may only add captures
 *   (`method` directives); memory for that layer's K/V doubles.
 */
export type AttentionDriver = 'cache' | 'decoder';

/** Per-session choices: which method each layer runs, how it is driven, and the hooks. */
export interface SessionOptions {
  /**
   * The attention of every layer: one method for all layers, one per layer, or a function of
   * the layer index. Default: core's dense method (`denseMethod.create()`).
   */
  readonly attention?: AttentionMethod | readonly AttentionMethod[] | ((layer: number) => AttentionMethod);
  /** How each layer's method is driven (see {@link AttentionDriver}); one value or a function of the layer. Default `cache`. */
  readonly driver?: AttentionDriver | ((layer: number) => AttentionDriver);
  /** Decides each layer's directive in every call (DELTA, TidalDecode, HyLRA plans, captures). */
  readonly policy?: LayerPolicy;
  /** Read-only hooks (dumps, draft-model attention). */
  readonly observers?: readonly ForwardObserver[];
  /** KV rows allocated per layer up front (caches grow by doubling). Default 256. */
  readonly initialCapacity?: number;
}

/** Largest logits array a forward call materialises (float32): 1 GiB. Beyond it the call is refused up front. */
export const MAX_LOGITS_BYTES = 2 ** 30;

/** Options of one forward call. */
export interface ForwardOptions {
  /**
   * RoPE positions of the tokens. Default: `nextPosition, nextPosition + 1, …`, so decode after
   * a KV-dropping edit continues at the original positions (`N + t`). Pass positions to
   * re-index (e.g. the compressed cache length) or to keep a pruned prompt's original positions.
   */
  readonly positions?: ArrayLike<number>;
  /** Which logits to compute: the last token's (default), every token's, or none. */
  readonly logits?: 'last' | 'all' | 'none';
  /** Replaces the session's policy for this call only. */
  readonly policy?: LayerPolicy;
  /** Observers added to the session's for this call only. */
  readonly observers?: readonly ForwardObserver[];
}

/** Options of {@link ModelSession.generate}. */
export interface GenerateOptions {
  /** Stop after emitting one of these tokens (it is included in the output). */
  readonly stopTokens?: readonly number[];
  /** Positions of the prompt tokens (see {@link ForwardOptions.positions}). */
  readonly promptPositions?: ArrayLike<number>;
  /** Called after each generated token. */
  readonly onToken?: (token: number, index: number) => void;
}

/** Greedy generation output with its timings. */
export interface GenerationResult {
  /** The generated tokens (not the prompt). */
  readonly tokens: Int32Array;
  /** Milliseconds spent on the prompt forward (0 when the prompt was empty). */
  readonly prefillMs: number;
  /** Milliseconds spent on the decode steps. */
  readonly decodeMs: number;
}

/** One layer of a session: its method, how it is driven, and its KV cache. */
export interface SessionLayer {
  readonly index: number;
  readonly method: AttentionMethod;
  readonly driver: AttentionDriver;
  /** The layer's KV cache (post-RoPE keys, values, original positions). */
  readonly cache: LayerKVCache;
  /** The method's decoder when `driver` is `decoder`. */
  readonly decoder?: AttentionDecoder;
}

/** Scratch buffers of one forward call, sized for its token count. */
interface Buffers {
  readonly x: Float32Array;
  readonly normed: Float32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly attention: Float32Array;
  readonly gate: Float32Array;
  readonly up: Float32Array;
}

/**
 * Below this many rows the session asks core's `matmul` for its JS kernel: the WebAssembly SIMD
 * path packs the whole weight matrix into its memory on every call, which for a decode step
 * (one row) costs twice the JS dot products (measured: 768×2048 weight, 1 row: 3.9 ms JS vs
 * 8.3 ms SIMD; 4 rows: 12.0 vs 7.6 ms). A core API for weights kept packed would remove this.
 */
export const SIMD_MIN_ROWS = 4;

/** `matmul` options for a `Linear` (`y = x·Wᵀ`) over `rows` rows. */
export function linearOptions(rows: number, accumulate = false): MatmulOptions {
  return { transposeB: true, accumulate, kernel: rows < SIMD_MIN_ROWS ? 'js' : 'auto' };
}

/**
 * One sequence being processed by a {@link LlamaModel}: per-layer KV caches, per-layer attention
 * methods, the hooks, and the next RoPE position. Batch size is 1: run one session per sequence.
 */
export class ModelSession {
  readonly model: LlamaModel;
  readonly layers: readonly SessionLayer[];
  private readonly policy: LayerPolicy | undefined;
  private readonly observers: readonly ForwardObserver[];
  private position = 0;
  private calls = 0;
  private last: Float32Array | undefined;

  constructor(model: LlamaModel, options: SessionOptions = {}, defaultMethod: () => AttentionMethod) {
    this.model = model;
    const d = model.dims;
    const methodOf = (layer: number): AttentionMethod => {
      const a = options.attention;
      if (a === undefined) return defaultMethod();
      if (typeof a === 'function') return a(layer);
      if (isMethodList(a)) {
        if (a.length !== d.layers) throw new ConfigError(`session: attention lists ${a.length} methods, the model has ${d.layers} layers`);
        return a[layer]!;
      }
      return a;
    };
    const driverOf = (layer: number): AttentionDriver => {
      const x = options.driver ?? 'cache';
      const driver = typeof x === 'function' ? x(layer) : x;
      if (driver !== 'cache' && driver !== 'decoder') throw new ConfigError(`session: driver of layer ${layer} must be 'cache' or 'decoder', got ${String(driver)}`);
      return driver;
    };
    this.layers = Array.from({ length: d.layers }, (_, index) => {
      const method = methodOf(index);
      if (!method || method.specificationVersion !== 'v1') throw new ConfigError(`session: attention of layer ${index} is not an AttentionMethod (v1)`);
      const driver = driverOf(index);
      const cache = new LayerKVCache(d.kvHeads, d.headDim, options.initialCapacity ?? 256);
      if (driver === 'decoder') {
        cache.lock(`layer ${index} is driven by method '${method.methodId}''s own decoder, which keeps its own copy of K/V`);
        const decoder = method.createDecoder({ batch: 1, queryHeads: d.queryHeads, kvHeads: d.kvHeads, headDim: d.headDim, scale: model.scale });
        return { index, method, driver, cache, decoder };
      }
      return { index, method, driver, cache };
    });
    this.policy = options.policy;
    this.observers = options.observers ?? [];
  }

  /** RoPE position the next token gets by default (one past the last position processed). */
  get nextPosition(): number {
    return this.position;
  }

  /** Entries in layer 0's KV cache (every layer holds the same count unless a policy evicted per layer). */
  get cacheLength(): number {
    return this.layers[0]?.cache.length ?? 0;
  }

  /** Logits of the last token processed (`[vocab]`), if any call computed them. */
  get lastLogits(): Float32Array | undefined {
    return this.last;
  }

  /** Empties every cache and decoder and restarts positions at 0. */
  reset(): void {
    for (const layer of this.layers) {
      layer.cache.reset();
      layer.decoder?.reset();
    }
    this.position = 0;
    this.calls = 0;
    this.last = undefined;
  }

  /**
   * Runs `tokens` through every layer: prefill when several tokens (or the first), decode when
   * one token follows a non-empty cache. Appends to every layer's KV cache.
   */
  forward(tokens: ArrayLike<number>, options: ForwardOptions = {}): ForwardResult {
    const d = this.model.dims;
    const count = tokens.length;
    if (count === 0) throw new ShapeError('forward: tokens is empty');
    const ids = Int32Array.from(tokens as ArrayLike<number>);
    for (let t = 0; t < count; t++) {
      const id = (tokens as ArrayLike<number>)[t]!;
      if (!(Number.isInteger(id) && id >= 0 && id < d.vocab)) throw new ShapeError(`forward: tokens[${t}] = ${id} outside the vocabulary [0, ${d.vocab})`);
    }
    const which = options.logits ?? 'last';
    if (which !== 'last' && which !== 'all' && which !== 'none') throw new ConfigError(`forward: logits must be 'last', 'all' or 'none', got ${String(which)}`);
    const rows = which === 'all' ? count : which === 'last' ? 1 : 0;
    if (rows * d.vocab * 4 > MAX_LOGITS_BYTES) {
      throw new ConfigError(`forward: logits 'all' for ${count} tokens × ${d.vocab} vocabulary would take ${Math.ceil((rows * d.vocab * 4) / 2 ** 20)} MiB; ask for logits 'last' or 'none', or forward in chunks`);
    }
    const positions = this.resolvePositions(count, options.positions);
    const cacheLengthBefore = this.cacheLength;
    const step: StepInfo = {
      index: this.calls,
      phase: count === 1 && cacheLengthBefore > 0 ? 'decode' : 'prefill',
      tokens: ids,
      positions,
      cacheLengthBefore,
      layers: d.layers,
    };
    const policy = options.policy ?? this.policy;
    const observers = options.observers ? [...this.observers, ...options.observers] : this.observers;
    policy?.beginStep?.(step);
    for (const o of observers) o.beginStep?.(step);

    const b = this.allocate(count);
    const w = this.model.weights;
    for (let t = 0; t < count; t++) b.x.set(w.embedTokens.subarray(ids[t]! * d.hidden, (ids[t]! + 1) * d.hidden), t * d.hidden);
    const trace: LayerSummary[] = [];
    for (const layer of this.layers) {
      const summary = this.runLayer(layer, b, step, trace, policy, observers);
      trace.push(summary);
      for (const o of observers) o.onLayerOutput?.(layer.index, b.x.subarray(0, count * d.hidden), step);
    }
    policy?.endStep?.(step, trace);
    for (const o of observers) o.endStep?.(step, trace);

    const logits = this.model.logitsOf(b.x, count, rows);
    if (rows > 0) this.last = logits.slice((rows - 1) * d.vocab, rows * d.vocab);
    this.position = positions[count - 1]! + 1;
    this.calls++;
    return { step, logits, logitRows: rows, vocabSize: d.vocab, trace };
  }

  /**
   * Greedy generation: forwards `prompt` (may be empty to continue from {@link lastLogits}),
   * then emits `maxNewTokens` tokens, each the argmax of the previous logits (ties to the lower id).
   */
  generate(prompt: ArrayLike<number>, maxNewTokens: number, options: GenerateOptions = {}): GenerationResult {
    if (!(Number.isInteger(maxNewTokens) && maxNewTokens >= 0)) throw new ConfigError(`generate: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
    const started = performance.now();
    if (prompt.length > 0) this.forward(prompt, { positions: options.promptPositions });
    const prefillMs = prompt.length > 0 ? performance.now() - started : 0;
    if (maxNewTokens > 0 && !this.last) throw new ConfigError('generate: the prompt is empty and no earlier call left logits to continue from');
    const stops = new Set(options.stopTokens ?? []);
    const out: number[] = [];
    const decodeStart = performance.now();
    while (out.length < maxNewTokens) {
      const token = argmax(this.last!);
      out.push(token);
      options.onToken?.(token, out.length - 1);
      if (stops.has(token) || out.length === maxNewTokens) break;
      this.forward([token]);
    }
    return { tokens: Int32Array.from(out), prefillMs, decodeMs: performance.now() - decodeStart };
  }

  private resolvePositions(count: number, given: ArrayLike<number> | undefined): Int32Array {
    if (given === undefined) return Int32Array.from({ length: count }, (_, i) => this.position + i);
    if (given.length !== count) throw new ShapeError(`forward: positions has ${given.length} entries, tokens has ${count}`);
    const positions = new Int32Array(count);
    for (let t = 0; t < count; t++) {
      const p = given[t]!;
      if (!(Number.isInteger(p) && p >= 0)) throw new ShapeError(`forward: positions[${t}] = ${p} is not a non-negative integer`);
      positions[t] = p;
    }
    return positions;
  }

  private allocate(count: number): Buffers {
    const d = this.model.dims;
    return {
      x: new Float32Array(count * d.hidden),
      normed: new Float32Array(count * d.hidden),
      q: new Float32Array(count * d.queryWidth),
      k: new Float32Array(count * d.kvWidth),
      v: new Float32Array(count * d.kvWidth),
      attention: new Float32Array(count * d.queryWidth),
      gate: new Float32Array(count * d.intermediate),
      up: new Float32Array(count * d.intermediate),
    };
  }

  /** One decoder layer on the residual stream `b.x` (updated in place). */
  private runLayer(layer: SessionLayer, b: Buffers, step: StepInfo, trace: readonly LayerSummary[], policy: LayerPolicy | undefined, observers: readonly ForwardObserver[]): LayerSummary {
    const d = this.model.dims;
    const cfg = this.model.config;
    const w = this.model.weights.layers[layer.index]!;
    const count = step.tokens.length;
    const transposeB = linearOptions(count);
    const accumulateTransposed = linearOptions(count, true);

    // Attention block: x += o_proj(attention(rope(q), rope(k), v)) on RMSNorm(x).
    rmsNorm(b.x, w.inputLayernorm, count, d.hidden, cfg.rms_norm_eps, b.normed);
    matmul(b.normed, w.qProj, count, d.hidden, d.queryWidth, b.q, transposeB);
    matmul(b.normed, w.kProj, count, d.hidden, d.kvWidth, b.k, transposeB);
    matmul(b.normed, w.vProj, count, d.hidden, d.kvWidth, b.v, transposeB);
    if (w.qBias) addBias(b.q, w.qBias, count);
    if (w.kBias) addBias(b.k, w.kBias, count);
    if (w.vBias) addBias(b.v, w.vBias, count);
    const q = toHeads(b.q, count, d.queryHeads, d.headDim);
    const k = toHeads(b.k, count, d.kvHeads, d.headDim);
    const v = toHeads(b.v, count, d.kvHeads, d.headDim);
    this.model.rope.apply(q.data, 0, d.queryHeads, count, count, step.positions);
    this.model.rope.apply(k.data, 0, d.kvHeads, count, count, step.positions);
    assertFinite(q, `layer ${layer.index} q`);
    layer.cache.append(k, v, step.positions);

    const context: LayerContext = { layer: layer.index, step, q, k, v, cache: layer.cache, method: layer.method, trace };
    const directive: LayerDirective = policy?.planLayer?.(context) ?? { kind: 'method' };
    const result = this.attend(layer, directive, q, k, v);
    const selection = directive.kind === 'selection' ? directive.selection : result.selection;
    const keys = layer.cache.keys();
    const scores = directive.capture
      ? attentionScores(q, keys, resolveCaptureQueries(directive.capture.queries, count), this.model.scale, selection, {
          reduce: directive.capture.reduce,
          weights: directive.capture.weights,
        })
      : undefined;
    const record: LayerRecord = {
      layer: layer.index,
      directive: directive.kind,
      selection,
      scores,
      stats: result.stats,
      backend: result.backend,
      diagnostics: result.diagnostics,
      keySeq: keys.shape[2]!,
      q,
      k,
      v,
      output: result.output,
      result,
    };
    policy?.afterAttention?.(context, record);
    for (const o of observers) o.onAttention?.(record, step);

    fromHeads(result.output, count, d.queryHeads, d.headDim, b.attention);
    matmul(b.attention, w.oProj, count, d.queryWidth, d.hidden, b.x, accumulateTransposed);
    if (w.oBias) addBias(b.x, w.oBias, count);

    // MLP block: x += down(silu(gate(n)) ⊙ up(n)) with n = RMSNorm(x).
    rmsNorm(b.x, w.postAttentionLayernorm, count, d.hidden, cfg.rms_norm_eps, b.normed);
    matmul(b.normed, w.gateProj, count, d.hidden, d.intermediate, b.gate, transposeB);
    matmul(b.normed, w.upProj, count, d.hidden, d.intermediate, b.up, transposeB);
    const gate = b.gate;
    const up = b.up;
    for (let i = 0; i < count * d.intermediate; i++) {
      const g = gate[i]!;
      gate[i] = (g / (1 + Math.exp(-g))) * up[i]!;
    }
    matmul(gate, w.downProj, count, d.intermediate, d.hidden, b.x, accumulateTransposed);

    const { q: _q, k: _k, v: _v, output: _o, result: _r, ...summary } = record;
    return summary;
  }

  /** Runs a layer's attention as directed, over the layer's cache (or through its decoder). */
  private attend(layer: SessionLayer, directive: LayerDirective, q: Tensor, k: Tensor, v: Tensor): AttentionResult {
    const scale = this.model.scale;
    if (layer.decoder) {
      if (directive.kind !== 'method') {
        throw new ConfigError(`layer ${layer.index}: a '${directive.kind}' directive needs the session-owned cache, but the layer is driven by method '${layer.method.methodId}''s own decoder (driver 'decoder')`);
      }
      return layer.decoder.step({ q, k, v, causal: true, scale });
    }
    const input = { q, k: layer.cache.keys(), v: layer.cache.values(), causal: true, scale };
    switch (directive.kind) {
      case 'method':
        // Core's dense method is `validateAttentionInput` + `denseAttention(checkFinite: false)`.
        // Its validation rescans the whole cache for NaN/Infinity every step (at 8k context that
        // costs more than the SIMD attention itself), yet every entry was already checked on
        // append: call the kernel directly. Same output, bit for bit.
        if (layer.method.methodId === denseMethod.id) return denseAttention(input, { checkFinite: false });
        return layer.method.prefill(input);
      case 'dense':
        // Every cache entry was checked for NaN/Infinity on append, and q just now.
        return denseAttention(input, { checkFinite: false });
      case 'selection':
        return sparseAttention(input, directive.selection, { checkFinite: false, selectionMs: directive.selectionMs });
      default:
        throw new ConfigError(`layer ${layer.index}: unknown directive kind '${String((directive as { kind: unknown }).kind)}'`);
    }
  }
}

function isMethodList(a: AttentionMethod | readonly AttentionMethod[]): a is readonly AttentionMethod[] {
  return Array.isArray(a);
}

/** `[T, heads·dim]` rows → a `[1, heads, T, dim]` tensor. */
function toHeads(flat: Float32Array, count: number, heads: number, dim: number): Tensor {
  const out = new Float32Array(heads * count * dim);
  for (let t = 0; t < count; t++) {
    for (let h = 0; h < heads; h++) out.set(flat.subarray((t * heads + h) * dim, (t * heads + h + 1) * dim), (h * count + t) * dim);
  }
  return tensor([1, heads, count, dim], out);
}

/** A `[1, heads, T, dim]` tensor → `[T, heads·dim]` rows in `out`. */
function fromHeads(t: Tensor, count: number, heads: number, dim: number, out: Float32Array): void {
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < count; i++) out.set(t.data.subarray((h * count + i) * dim, (h * count + i + 1) * dim), (i * heads + h) * dim);
  }
}

function addBias(x: Float32Array, bias: Float32Array, rows: number): void {
  const n = bias.length;
  for (let r = 0; r < rows; r++) for (let c = 0; c < n; c++) x[r * n + c]! += bias[c]!;
}

/** Index of the largest value (the lowest index among ties). */
export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
