/**
 * The model-free synthetic multi-layer trace stack (spec §9.2): per-layer post-RoPE K/V caches
 * and per-step decode queries with the structure layer-reuse methods rely on, planted explicitly.
 *
 * - Background keys and values ~ N(0, 1) per layer (decorrelated across layers); a query of norm
 *   √D gives background logits ~ N(0, 1).
 * - Layer segments: the layers between consecutive `shiftLayers` share planted salient content;
 *   layers before the first shift are diffuse (no salient content, like early LLM layers).
 * - Each segment plants `clusters` salient clusters per KV head: a unit direction u and
 *   `spans` contiguous spans of `spanLength` tokens whose keys are `salientLogit · u + noise`.
 * - Query head h of KV group g at step s attends cluster `(h + ⌊s / driftEvery⌋) mod clusters`
 *   of its segment: q = √D·u + noise, so the salient set drifts across decode steps while every
 *   layer of a segment agrees, and the agreement breaks at a shift layer.
 *
 * Layers are independent here (no residual stream), so this harness measures selection quality
 * (mass recall, output error, overlap with the oracle top-k) and attention cost, not compounding.
 */
import { ConfigError, Rng, denseAttention, denseMethod, sparseAttention, tensor, type AttentionResult, type Selection, type Tensor } from '@sparse-attn/core';
import { LayerKVCache, attentionScores, type AttentionScores, type LayerContext, type LayerDirective, type LayerPolicy, type LayerRecord, type LayerSummary, type StepInfo } from '@sparse-attn/model';

/** Sizes and structure of a trace stack. */
export interface TraceStackOptions {
  readonly layers: number;
  readonly queryHeads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Tokens in every layer's cache before the first decode step. */
  readonly context: number;
  /** Decode steps the caches get room for. */
  readonly decodeSteps: number;
  /** Layers where the salient content changes. Default: DELTA's Δ-layers scaled (2, 14/28, 22/28 of the depth). */
  readonly shiftLayers?: readonly number[];
  /** Salient clusters per KV head and segment. Default 6. */
  readonly clusters?: number;
  /** Contiguous spans per cluster. Default 2. */
  readonly spans?: number;
  /** Tokens per span. Default 16. */
  readonly spanLength?: number;
  /** Logit of a salient key for its cluster's queries. Default 13. */
  readonly salientLogit?: number;
  /** Steps between drifts of each head's cluster. Default 4. */
  readonly driftEvery?: number;
  readonly seed?: number;
}

/** A built stack: per-layer caches and the planted structure. */
export interface TraceStack {
  readonly options: Required<TraceStackOptions>;
  readonly caches: readonly LayerKVCache[];
  /** Segment of every layer (−1: diffuse warm-up layer). */
  readonly segments: readonly number[];
  /** Planted cluster directions, indexed `[segment][kvHead][cluster]` (unit vectors). */
  readonly directions: readonly (readonly (readonly Float32Array[])[])[];
  /** Decode steps appended so far. */
  steps: number;
}

/** Standard normals reused with per-layer offsets: filling 2 GB of keys stays fast and deterministic. */
const POOL = 1 << 20;

/**
 * Builds a trace stack: every layer's cache filled with `context` tokens (background plus the
 * planted spans of its segment), with room for `decodeSteps` more. Deterministic per `seed`.
 * Memory: layers × 2 × kvHeads × (context + decodeSteps) × headDim floats (1.9 GB at 28 layers,
 * 2 KV heads of 64, 64k tokens).
 */
export function createTraceStack(options: TraceStackOptions): TraceStack {
  const o: Required<TraceStackOptions> = {
    shiftLayers: [2, Math.round((14 * options.layers) / 28), Math.round((22 * options.layers) / 28)].filter((l, i, a) => l < options.layers && a.indexOf(l) === i),
    clusters: 6,
    spans: 2,
    spanLength: 16,
    salientLogit: 13,
    driftEvery: 4,
    seed: 1,
    ...options,
  };
  for (const key of ['layers', 'queryHeads', 'kvHeads', 'headDim', 'context', 'decodeSteps', 'clusters', 'spans', 'spanLength', 'driftEvery'] as const) {
    if (!(Number.isInteger(o[key]) && o[key] > 0)) throw new ConfigError(`trace stack: ${key} must be a positive integer, got ${o[key]}`);
  }
  if (o.queryHeads % o.kvHeads !== 0) throw new ConfigError(`trace stack: queryHeads ${o.queryHeads} must be a multiple of kvHeads ${o.kvHeads}`);
  if (o.spans * o.spanLength * o.clusters > o.context / 2) throw new ConfigError(`trace stack: ${o.clusters} clusters × ${o.spans} spans × ${o.spanLength} tokens do not fit in half of ${o.context} tokens`);
  const rng = new Rng(o.seed);
  const pool = rng.fillNormal(new Float32Array(POOL));
  const { layers, kvHeads, headDim: dim, context } = o;
  const segments = Array.from({ length: layers }, (_, l) => o.shiftLayers.filter((s) => s <= l).length - 1);
  const segmentCount = Math.max(0, ...segments) + 1;
  // Planted content per segment and KV head: cluster directions and span starts.
  const directions: Float32Array[][][] = [];
  const spanStarts: number[][][][] = [];
  for (let g = 0; g < segmentCount; g++) {
    directions.push(Array.from({ length: kvHeads }, () => Array.from({ length: o.clusters }, () => rng.unitVector(dim))));
    spanStarts.push(Array.from({ length: kvHeads }, () => Array.from({ length: o.clusters }, () => Array.from({ length: o.spans }, () => rng.int(context - o.spanLength)))));
  }
  const caches: LayerKVCache[] = [];
  const positions = Int32Array.from({ length: context }, (_, i) => i);
  for (let l = 0; l < layers; l++) {
    const k = new Float32Array(kvHeads * context * dim);
    const v = new Float32Array(kvHeads * context * dim);
    const shift = (l * 7919 + 13) * 131;
    for (let i = 0; i < k.length; i++) {
      k[i] = pool[(i + shift) & (POOL - 1)]!;
      v[i] = pool[(i * 3 + shift * 5 + 7) & (POOL - 1)]!;
    }
    const g = segments[l]!;
    if (g >= 0) {
      for (let h = 0; h < kvHeads; h++) {
        for (let c = 0; c < o.clusters; c++) {
          const u = directions[g]![h]![c]!;
          for (const start of spanStarts[g]![h]![c]!) {
            for (let t = start; t < start + o.spanLength; t++) {
              const at = (h * context + t) * dim;
              for (let e = 0; e < dim; e++) k[at + e] = o.salientLogit * u[e]! + 0.5 * k[at + e]!;
            }
          }
        }
      }
    }
    const cache = new LayerKVCache(kvHeads, dim, context + o.decodeSteps + 1);
    cache.append(tensor([1, kvHeads, context, dim], k), tensor([1, kvHeads, context, dim], v), positions);
    caches.push(cache);
  }
  return { options: o, caches, segments, directions, steps: 0 };
}

/** The decode query of `layer` at decode step `step`, `[1, queryHeads, 1, headDim]`. */
export function stackQuery(stack: TraceStack, layer: number, step: number): Tensor {
  const o = stack.options;
  const group = o.queryHeads / o.kvHeads;
  const rng = new Rng(o.seed * 1_000_003 + layer * 7_919 + step * 104_729);
  const q = new Float32Array(o.queryHeads * o.headDim);
  const g = stack.segments[layer]!;
  const scale = Math.sqrt(o.headDim);
  for (let h = 0; h < o.queryHeads; h++) {
    if (g < 0) {
      for (let e = 0; e < o.headDim; e++) q[h * o.headDim + e] = rng.normal();
      continue;
    }
    const cluster = (h + Math.floor(step / o.driftEvery)) % o.clusters;
    const u = stack.directions[g]![Math.floor(h / group)]![cluster]!;
    for (let e = 0; e < o.headDim; e++) q[h * o.headDim + e] = scale * u[e]! + 0.3 * rng.normal();
  }
  return tensor([1, o.queryHeads, 1, o.headDim], q);
}

/** Appends decode step `stack.steps`'s own token (background key/value) to every layer. */
export function appendStackToken(stack: TraceStack): void {
  const o = stack.options;
  if (stack.steps >= o.decodeSteps) throw new ConfigError(`trace stack: room for ${o.decodeSteps} decode steps only`);
  const rng = new Rng(o.seed * 31 + stack.steps);
  const position = o.context + stack.steps;
  for (const cache of stack.caches) {
    const k = tensor([1, o.kvHeads, 1, o.headDim], rng.fillNormal(new Float32Array(o.kvHeads * o.headDim)));
    const v = tensor([1, o.kvHeads, 1, o.headDim], rng.fillNormal(new Float32Array(o.kvHeads * o.headDim)));
    cache.append(k, v, [position]);
  }
  stack.steps++;
}

/** One layer's attention in a stack step. */
export interface StackLayerResult {
  readonly q: Tensor;
  readonly result: AttentionResult;
  readonly summary: LayerSummary;
}

/**
 * Runs the current decode step (queries of step `stack.steps − 1`, caches as they are) through
 * every layer under `policy` (dense everywhere without one), exactly as the model session drives
 * a policy: plan → dense / selection attention through core → captured scores → afterAttention.
 */
export function runStackStep(stack: TraceStack, policy?: LayerPolicy): StackLayerResult[] {
  const o = stack.options;
  const step = Math.max(0, stack.steps - 1);
  const keySeq = stack.caches[0]!.length;
  const info: StepInfo = { index: step + 1, phase: 'decode', tokens: Int32Array.of(0), positions: Int32Array.of(keySeq - 1), cacheLengthBefore: keySeq - 1, layers: o.layers };
  policy?.beginStep?.(info);
  const trace: LayerSummary[] = [];
  const results: StackLayerResult[] = [];
  const method = denseMethod.create();
  const scale = 1 / Math.sqrt(o.headDim);
  const empty = tensor([1, o.kvHeads, 1, o.headDim]);
  for (let l = 0; l < o.layers; l++) {
    const cache = stack.caches[l]!;
    const q = stackQuery(stack, l, step);
    const context: LayerContext = { layer: l, step: info, q, k: empty, v: empty, cache, method, trace };
    const directive: LayerDirective = policy?.planLayer?.(context) ?? { kind: 'dense' };
    const input = { q, k: cache.keys(), v: cache.values(), causal: true, scale };
    const result: AttentionResult =
      directive.kind === 'selection' ? sparseAttention(input, directive.selection, { checkFinite: false }) : denseAttention(input, { checkFinite: false });
    const selection: Selection | undefined = directive.kind === 'selection' ? directive.selection : undefined;
    const scores: AttentionScores | undefined = directive.capture ? attentionScores(q, input.k, Int32Array.of(0), scale, selection) : undefined;
    const summary: LayerSummary = { layer: l, directive: directive.kind, selection, scores, stats: result.stats, backend: result.backend, keySeq };
    const record: LayerRecord = { ...summary, q, k: empty, v: empty, output: result.output, result };
    policy?.afterAttention?.(context, record);
    trace.push(summary);
    results.push({ q, result, summary });
  }
  policy?.endStep?.(info, trace);
  return results;
}
