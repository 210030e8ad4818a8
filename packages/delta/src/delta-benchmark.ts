/**
 * The DELTA benchmarks (issue 8, "Benchmark"), two suites for apps/bench:
 *
 * - `delta-trace-stack`: the model-free synthetic multi-layer trace stack (28 layers, Hq 8,
 *   Hkv 2, D 64; salient spans that shift at layers 2/14/22 and drift every 4 decode steps).
 *   Per context length and method (dense, DELTA with the reference defaults, TidalDecode at the
 *   same token budget, a HyLRA plan calibrated on the stack at 4k): attended-token share,
 *   KV bytes read per step, mass recall / output error / Jaccard overlap with the oracle top-k
 *   over the sparse layers, and decode attention time per token against dense in the same run.
 *   Target at 64k: ≥ 3× faster than dense attention with mass recall ≥ 0.95.
 * - `delta-model`: the model runtime with a random 28-layer model: decode time per token
 *   (end to end and attention only) against the dense model at each context (planted random
 *   K/V, since cost does not depend on the values), and, at a real prompt, greedy-token
 *   agreement, first divergence and teacher-forced logit error against the dense model.
 *
 * Every row records the kernels that ran (`backend`). Timings: warm-up, `repeats` timed runs,
 * medians; ratios come from the same run.
 */
import {
  ConfigError,
  forEachKeyRange,
  measure,
  relativeL2Error,
  tensor,
  type BenchmarkContext,
  type BenchmarkRow,
  type BenchmarkSuite,
  type Selection,
} from '@sparse-attn/core';
import { attentionScores, createRandomModel, plantContext, type LlamaConfigInput, type LlamaModel, type ModelSession } from '@sparse-attn/model';
import { createDeltaPolicy, deltaSelector, type DeltaConfigInput } from './delta.js';
import { planLayers, type TraceStep } from './hylra-planner.js';
import { defaultFullCacheLayers, layerPlanFromFullCacheLayers, roleCounts, type LayerPlan } from './layer-plan.js';
import { createLayerReusePolicy, type LayerReusePolicy, type ReuseSelector, type ReuseStepReport } from './layer-reuse-policy.js';
import { createTidalDecodePolicy, tidalDecodeSelector, tidalLayerPlan } from './tidal-decode.js';
import { appendStackToken, createTraceStack, runStackStep, type TraceStack, type TraceStackOptions } from './trace-stack.js';

/** Sizes of the trace-stack suite. */
export interface TraceStackBenchmarkOptions {
  readonly layers?: number;
  readonly queryHeads?: number;
  readonly kvHeads?: number;
  readonly headDim?: number;
  /** DELTA options (page size, budget, recency); defaults: the reference's. */
  readonly config?: DeltaConfigInput;
  /** Decode steps whose quality is measured per context. Default 8. */
  readonly qualitySteps?: number;
  /** Context of the HyLRA calibration stack. Default 4096. */
  readonly calibrationContext?: number;
  /** Planted structure of the stack (clusters, spans, salient logit, drift); defaults: {@link createTraceStack}'s. */
  readonly structure?: Pick<TraceStackOptions, 'shiftLayers' | 'clusters' | 'spans' | 'spanLength' | 'salientLogit' | 'driftEvery'>;
}

const QUICK_STACK = {
  layers: 8,
  queryHeads: 4,
  kvHeads: 2,
  headDim: 16,
  config: { pageSize: 8, pageBudget: 12, recentPages: 2 },
  qualitySteps: 3,
  calibrationContext: 512,
  structure: { spans: 1, spanLength: 8 },
} as const;

/** One method of a comparison: a name and a fresh policy (undefined: dense). */
interface Contender {
  readonly name: string;
  readonly create: () => LayerReusePolicy;
  /** The selector, to build each layer's oracle selection from its own scores. */
  readonly selector: ReuseSelector;
  /** Budget label of the rows. */
  readonly budget: string;
}

/** Keys (per query head) a selection holds for one query, as sets. */
function selectedKeySets(selection: Selection, queryHeads: number): Set<number>[] {
  const group = selection.headScope === 'query' ? 1 : queryHeads / selection.heads;
  return Array.from({ length: queryHeads }, (_, h) => {
    const keys = new Set<number>();
    forEachKeyRange(selection, Math.floor(h / group), Infinity, (a, b) => {
      for (let j = a; j < b; j++) keys.add(j);
    });
    return keys;
  });
}

/** Running mean and minimum of a figure. */
class Tally {
  sum = 0;
  count = 0;
  min = Infinity;
  max = -Infinity;
  add(x: number): void {
    this.sum += x;
    this.count++;
    this.min = Math.min(this.min, x);
    this.max = Math.max(this.max, x);
  }
  get mean(): number {
    return this.count ? this.sum / this.count : Number.NaN;
  }
}

/**
 * Times `baseline` and `method` alternately (`repeats` pairs after one warm-up each) and returns
 * the median of the per-pair ratios baseline/method: on a machine shared with other jobs, a pair
 * run back to back sees nearly the same load, so this ratio is steadier than a ratio of medians.
 */
function pairedSpeedup(baseline: () => unknown, method: () => unknown, repeats: number): number {
  baseline();
  method();
  const ratios: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    baseline();
    const t1 = performance.now();
    method();
    const t2 = performance.now();
    ratios.push((t1 - t0) / (t2 - t1));
  }
  ratios.sort((a, b) => a - b);
  const m = ratios.length >> 1;
  return ratios.length % 2 ? ratios[m]! : (ratios[m - 1]! + ratios[m]!) / 2;
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** Calibrates a HyLRA plan on a small stack with the same structure (2 decode steps, dense). */
function calibrateHylra(base: TraceStackOptions, calibrationContext: number, config: DeltaConfigInput, deltaCount: number): LayerPlan {
  const stack = createTraceStack({ ...base, context: calibrationContext, decodeSteps: 2 });
  const steps: TraceStep[] = [];
  for (let s = 0; s < 2; s++) {
    appendStackToken(stack);
    const results = runStackStep(stack);
    const scale = 1 / Math.sqrt(base.headDim);
    steps.push({
      keySeq: stack.caches[0]!.length,
      probabilities: results.map((r, l) => attentionScores(r.q, stack.caches[l]!.keys(), Int32Array.of(0), scale).probabilities),
    });
  }
  // Same cost as DELTA's default: 2 full layers and as many Δ-layers.
  return planLayers({ layers: base.layers, queryHeads: base.queryHeads, steps }, { ...config, rollbackLayers: 2, maxRecomputes: deltaCount });
}

type StackStructure = NonNullable<TraceStackBenchmarkOptions['structure']>;

/**
 * The planted structure scaled down until it fits the stack's rule (all spans in half of the
 * context): span length halves down to 4, then spans per cluster drop to 1, then clusters, then
 * span length to 1. Unchanged where it already fits (every length of the full-size suite ≥ 384).
 */
export function fitStackStructure(structure: StackStructure, context: number): Required<Pick<StackStructure, 'clusters' | 'spans' | 'spanLength'>> {
  let clusters = structure.clusters ?? 6;
  let spans = structure.spans ?? 2;
  let spanLength = structure.spanLength ?? 16;
  const half = Math.floor(context / 2);
  if (half < 1) throw new ConfigError(`delta-trace-stack: a context of ${context} tokens is too short to plant salient spans (at least 2)`);
  while (clusters * spans * spanLength > half) {
    if (spanLength > 4) spanLength = Math.max(4, spanLength >> 1);
    else if (spans > 1) spans--;
    else if (clusters > 1) clusters--;
    else spanLength--;
  }
  return { clusters, spans, spanLength };
}

/**
 * DELTA's budget scaled to a context: where the context holds fewer than `2K` pages, `K` drops to
 * half of its pages (at least 1) and `L` to at most half of `K`, so the subset is active and
 * sparse at short lengths (the bench's quick lengths); unchanged otherwise.
 */
export function fitDeltaBudget(config: DeltaConfigInput, context: number): { pageSize: number; pageBudget: number; recentPages: number } {
  const pageSize = config.pageSize ?? 16;
  let pageBudget = config.pageBudget ?? 64;
  let recentPages = config.recentPages ?? 8;
  const pages = Math.ceil(context / pageSize);
  if (pages < 2 * pageBudget) {
    if (pages < 2) throw new ConfigError(`delta-trace-stack: a context of ${context} tokens holds ${pages} page(s) of ${pageSize}; DELTA needs at least 2 to select`);
    pageBudget = Math.max(1, Math.floor(pages / 2));
    recentPages = Math.min(recentPages, Math.floor(pageBudget / 2));
  }
  return { pageSize, pageBudget, recentPages };
}

/** The trace-stack suite. */
export function createTraceStackSuite(options: TraceStackBenchmarkOptions = {}): BenchmarkSuite {
  return {
    id: 'delta-trace-stack',
    family: 'delta',
    description: 'DELTA, TidalDecode and a HyLRA plan vs dense on a synthetic 28-layer trace stack with planted salient spans that shift at chosen layers and drift across decode steps: attended share, mass recall, output error, oracle overlap, decode attention time.',
    run(context: BenchmarkContext): BenchmarkRow[] {
      const o = context.quick ? { ...QUICK_STACK, ...options } : { layers: 28, queryHeads: 8, kvHeads: 2, headDim: 64, config: {}, qualitySteps: 8, calibrationContext: 4096, structure: {}, ...options };
      const plans = new Map<string, LayerPlan>();
      const rows: BenchmarkRow[] = [];
      for (const seqLength of context.seqLengths) {
        // Short contexts (the bench's quick lengths) get a smaller planted structure and budget.
        const structure = { ...o.structure, ...fitStackStructure(o.structure, Math.min(seqLength, o.calibrationContext)) };
        const deltaConfig = { ...o.config, ...fitDeltaBudget(o.config, seqLength) };
        const tokenBudget = deltaConfig.pageSize * deltaConfig.pageBudget;
        const deltaPolicy = () => createDeltaPolicy({ layers: o.layers, config: deltaConfig });
        const probe = deltaPolicy();
        const base = { ...structure, layers: o.layers, queryHeads: o.queryHeads, kvHeads: o.kvHeads, headDim: o.headDim, seed: context.seed };
        const key = JSON.stringify([structure, deltaConfig]);
        if (!plans.has(key)) {
          context.progress?.('delta-trace-stack: HyLRA calibration');
          plans.set(key, calibrateHylra({ ...base, context: 0, decodeSteps: 0 }, o.calibrationContext, deltaConfig, roleCounts(probe.plan).delta));
        }
        const hylraPlan = plans.get(key)!;
        const contenders: Contender[] = [
          { name: 'delta', create: deltaPolicy, selector: probe.selector, budget: `K=${deltaConfig.pageBudget}` },
          { name: 'tidal-decode', create: () => createTidalDecodePolicy({ layers: o.layers, config: { tokenBudget } }), selector: tidalDecodeSelector({ tokenBudget }), budget: `k=${tokenBudget}` },
          { name: 'hylra-plan', create: () => createLayerReusePolicy(hylraPlan, deltaSelector(deltaConfig)), selector: deltaSelector(deltaConfig), budget: `K=${deltaConfig.pageBudget}` },
        ];
        context.progress?.(`delta-trace-stack: N=${seqLength}`);
        const stack = createTraceStack({ ...base, context: seqLength, decodeSteps: o.qualitySteps + 1 });
        rows.push(...traceStackRows(stack, contenders, o.qualitySteps, context));
      }
      return rows;
    },
  };
}

function traceStackRows(stack: TraceStack, contenders: readonly Contender[], qualitySteps: number, context: BenchmarkContext): BenchmarkRow[] {
  const o = stack.options;
  const scale = 1 / Math.sqrt(o.headDim);
  const quality = contenders.map(() => ({ recall: new Tally(), error: new Tally(), jaccard: new Tally(), attended: new Tally(), bytes: new Tally(), selectionMs: new Tally(), activeSteps: 0 }));
  // Per-layer curves of the first contender (DELTA): recall, output error, oracle overlap.
  const perLayer = Array.from({ length: o.layers }, () => ({ recall: new Tally(), error: new Tally(), jaccard: new Tally(), kernel: '' }));
  const denseBytes = new Tally();
  for (let s = 0; s < qualitySteps; s++) {
    appendStackToken(stack);
    const dense = runStackStep(stack);
    denseBytes.add(sum(dense.map((r) => r.result.stats.kvBytesRead)));
    const scores = dense.map((r, l) => attentionScores(r.q, stack.caches[l]!.keys(), Int32Array.of(0), scale));
    for (const [c, contender] of contenders.entries()) {
      const policy = contender.create();
      const results = runStackStep(stack, policy);
      const report = policy.lastStep!;
      const q = quality[c]!;
      q.attended.add(sum(report.attendedKeys) / (o.layers * report.keySeq));
      q.bytes.add(sum(report.kvBytesRead));
      q.selectionMs.add(sum(report.selectionMs));
      if (report.active) q.activeSteps++;
      for (let l = 0; l < o.layers; l++) {
        if (policy.plan.roles[l] !== 'sparse' || !report.active) continue;
        const selection = report.selections[l]!;
        const p = scores[l]!.probabilities;
        const keySeq = scores[l]!.keySeq;
        const chosen = selectedKeySets(selection, o.queryHeads);
        const lse = (dense[l]!.result as { lse?: Float32Array }).lse;
        const oracle = selectedKeySets(contender.selector.fromLayer({ q: dense[l]!.q, keys: stack.caches[l]!.keys(), scale, ...(lse ? { lse } : {}) }), o.queryHeads);
        for (let h = 0; h < o.queryHeads; h++) {
          let mass = 0;
          for (const j of chosen[h]!) mass += p[h * keySeq + j]!;
          q.recall.add(mass);
          let common = 0;
          for (const j of chosen[h]!) if (oracle[h]!.has(j)) common++;
          const jaccard = common / (chosen[h]!.size + oracle[h]!.size - common);
          q.jaccard.add(jaccard);
          if (c === 0) {
            perLayer[l]!.recall.add(mass);
            perLayer[l]!.jaccard.add(jaccard);
          }
        }
        const error = relativeL2Error(results[l]!.result.output, dense[l]!.result.output);
        q.error.add(error);
        if (c === 0) {
          perLayer[l]!.error.add(error);
          perLayer[l]!.kernel = `${results[l]!.result.backend.backend}:${results[l]!.result.backend.kernel}`;
        }
      }
    }
  }
  const timing = { warmup: 1, repeats: Math.max(3, context.repeats) };
  const denseTime = measure(() => runStackStep(stack), timing);
  const denseKernel = runStackStep(stack)[0]!.result.backend.kernel;
  const rows: BenchmarkRow[] = [
    {
      suite: 'delta-trace-stack',
      method: 'dense',
      workload: `trace-stack-${o.layers}L`,
      seqLength: o.context,
      backend: `cpu:${denseKernel}`,
      metrics: { decodeAttentionMsPerToken: denseTime.medianMs, madMs: denseTime.madMs, attendedShare: 1, kvBytesReadPerStep: denseBytes.mean, layers: o.layers, queryHeads: o.queryHeads, kvHeads: o.kvHeads, headDim: o.headDim },
    },
  ];
  for (const [c, contender] of contenders.entries()) {
    const policy = contender.create();
    const time = measure(() => runStackStep(stack, policy), timing);
    const paired = pairedSpeedup(() => runStackStep(stack), () => runStackStep(stack, policy), timing.repeats);
    const kernels = [...new Set(runStackStep(stack, policy).map((r) => r.result.backend.kernel))].join('+');
    const q = quality[c]!;
    const counts = roleCounts(policy.plan);
    rows.push({
      suite: 'delta-trace-stack',
      method: contender.name,
      workload: `trace-stack-${o.layers}L`,
      seqLength: o.context,
      budget: contender.budget,
      backend: `cpu:${kernels}`,
      metrics: {
        decodeAttentionMsPerToken: time.medianMs,
        madMs: time.madMs,
        speedupVsDense: denseTime.medianMs / time.medianMs,
        speedupPairedMedian: paired,
        attendedShare: q.attended.mean,
        attendedReduction: 1 / q.attended.mean,
        kvBytesReadPerStep: q.bytes.mean,
        kvBytesReduction: denseBytes.mean / q.bytes.mean,
        massRecallMean: q.recall.mean,
        massRecallMin: q.recall.min,
        outputRelErrorMean: q.error.mean,
        outputRelErrorMax: q.error.max,
        jaccardOracleMean: q.jaccard.mean,
        selectionMsPerStep: q.selectionMs.mean,
        fullLayers: counts.full,
        deltaLayers: counts.delta,
        sparseLayers: counts.sparse,
        activeSteps: q.activeSteps,
        plantedTokens: o.clusters * o.spans * o.spanLength,
      },
    });
  }
  const first = contenders[0]!;
  for (const [l, figures] of perLayer.entries()) {
    if (figures.recall.count === 0) continue;
    rows.push({
      suite: 'delta-trace-stack',
      method: first.name,
      workload: `trace-stack-${o.layers}L-per-layer`,
      seqLength: o.context,
      budget: `layer ${l}`,
      backend: figures.kernel,
      metrics: { layer: l, segment: stack.segments[l]!, massRecallMean: figures.recall.mean, massRecallMin: figures.recall.min, outputRelErrorMean: figures.error.mean, jaccardOracleMean: figures.jaccard.mean },
    });
  }
  return rows;
}

/** Sizes of the model suite. */
export interface ModelBenchmarkOptions {
  /** The random model; default 28 layers, hidden 512, 8 query / 2 KV heads of 64, SwiGLU 1024, vocab 4096 (~65M parameters). */
  readonly model?: LlamaConfigInput;
  readonly config?: DeltaConfigInput;
  /** Prompt length of the quality run (real tokens through the model). Default 1536. */
  readonly qualityContext?: number;
  /** Greedy tokens generated in the quality run. Default 24. */
  readonly generate?: number;
}

/** The random model of the model suite: DS-R1-Distill-Qwen-like depth (28 layers) and GQA, small width. */
export const deltaBenchmarkModel: LlamaConfigInput = {
  num_hidden_layers: 28,
  hidden_size: 512,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  head_dim: 64,
  intermediate_size: 1024,
  vocab_size: 4096,
  tie_word_embeddings: true,
};

const QUICK_MODEL: LlamaConfigInput = { num_hidden_layers: 8, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, intermediate_size: 96, vocab_size: 256, tie_word_embeddings: true };

/** A session holding a copy of `source`'s caches (same tokens and positions), under `policy`. */
function forkSession(model: LlamaModel, source: ModelSession, policy: LayerReusePolicy | undefined, room: number): ModelSession {
  const session = model.createSession({ ...(policy ? { policy } : {}), initialCapacity: source.cacheLength + room });
  for (const [l, layer] of session.layers.entries()) {
    const from = source.layers[l]!.cache;
    layer.cache.append(from.keys(), from.values(), from.positions(0));
  }
  return session;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** The model suite. */
export function createModelSuite(options: ModelBenchmarkOptions = {}): BenchmarkSuite {
  return {
    id: 'delta-model',
    family: 'delta',
    description: 'DELTA on the model runtime (random 28-layer model): decode time per token (end to end and attention only) vs the dense model at each context, and greedy agreement / logit error vs dense at a real prompt.',
    run(context: BenchmarkContext): BenchmarkRow[] {
      const config = options.model ?? (context.quick ? QUICK_MODEL : deltaBenchmarkModel);
      const deltaConfig: DeltaConfigInput = options.config ?? (context.quick ? { pageSize: 16, pageBudget: 8, recentPages: 2 } : {});
      context.progress?.('delta-model: building the random model');
      const model = createRandomModel(config, { seed: context.seed });
      const layers = model.dims.layers;
      const rows: BenchmarkRow[] = [];
      const workload = `random-${layers}L-${model.dims.hidden}`;
      const plan = layerPlanFromFullCacheLayers(deltaConfig.fullCacheLayers ?? defaultFullCacheLayers(layers), layers);
      const repeats = Math.max(3, context.repeats);
      for (const seqLength of context.seqLengths) {
        context.progress?.(`delta-model: decode speed at N=${seqLength}`);
        const session = model.createSession({ initialCapacity: seqLength + 4 * repeats + 8 });
        plantContext(session, seqLength, context.seed);
        session.forward([1], { positions: [seqLength] });
        const densePolicy = createDeltaPolicy({ layers, config: { ...deltaConfig, fullCacheLayers: [] } });
        const delta = createDeltaPolicy({ layers, config: deltaConfig });
        const attention = { dense: new Tally(), delta: new Tally() };
        const attended = new Tally();
        const kernels = { dense: new Set<string>(), delta: new Set<string>() };
        const bytes = { dense: new Tally(), delta: new Tally() };
        const record = (which: 'dense' | 'delta') => (r: ReuseStepReport) => {
          attention[which].add(sum(r.attentionMs) + sum(r.selectionMs));
          bytes[which].add(sum(r.kvBytesRead));
          for (const k of r.kernels) kernels[which].add(k);
          if (which === 'delta') attended.add(sum(r.attendedKeys) / (layers * r.keySeq));
        };
        densePolicy.onStep = record('dense');
        delta.onStep = record('delta');
        let token = 2;
        const step = (policy: LayerReusePolicy) => () => {
          session.forward([token], { policy, positions: [session.nextPosition] });
          token = (token * 31 + 7) % model.dims.vocab;
        };
        const denseTime = measure(step(densePolicy), { warmup: 1, repeats });
        const deltaTime = measure(step(delta), { warmup: 1, repeats });
        const paired = pairedSpeedup(step(densePolicy), step(delta), repeats);
        const active = delta.lastStep?.active ? 1 : 0;
        rows.push({
          suite: 'delta-model',
          method: 'dense',
          workload,
          seqLength,
          backend: [...kernels.dense].join('+'),
          metrics: { decodeMsPerToken: denseTime.medianMs, attentionMsPerToken: attention.dense.mean, kvBytesReadPerStep: bytes.dense.mean, parameters: model.parameterCount },
        });
        rows.push({
          suite: 'delta-model',
          method: 'delta',
          workload,
          seqLength,
          budget: `K=${deltaConfig.pageBudget ?? 64}`,
          backend: [...kernels.delta].join('+'),
          metrics: {
            decodeMsPerToken: deltaTime.medianMs,
            endToEndSpeedup: denseTime.medianMs / deltaTime.medianMs,
            endToEndSpeedupPairedMedian: paired,
            attentionMsPerToken: attention.delta.mean,
            attentionSpeedup: attention.dense.mean / attention.delta.mean,
            attendedShare: attended.mean,
            kvBytesReadPerStep: bytes.delta.mean,
            subsetActive: active,
            deltaLayers: roleCounts(plan).delta,
          },
        });
      }
      rows.push(...modelQualityRows(model, deltaConfig, options, context, workload));
      return rows;
    },
  };
}

function modelQualityRows(model: LlamaModel, deltaConfig: DeltaConfigInput, options: ModelBenchmarkOptions, context: BenchmarkContext, workload: string): BenchmarkRow[] {
  const promptLength = options.qualityContext ?? (context.quick ? 200 : 1536);
  const steps = options.generate ?? (context.quick ? 6 : 24);
  const layers = model.dims.layers;
  context.progress?.(`delta-model: quality at N=${promptLength}`);
  const prompt = Array.from({ length: promptLength }, (_, i) => (i * 7919 + context.seed) % model.dims.vocab);
  const base = model.createSession({ initialCapacity: promptLength + steps + 4 });
  const first = base.forward(prompt).logits;
  const rows: BenchmarkRow[] = [];
  const methods: [string, () => LayerReusePolicy][] = [
    ['delta', () => createDeltaPolicy({ layers, config: deltaConfig })],
    ['tidal-decode', () => createTidalDecodePolicy({ layers, config: { tokenBudget: (deltaConfig.pageSize ?? 16) * (deltaConfig.pageBudget ?? 64) } })],
  ];
  // Dense greedy continuation (the reference tokens and logits).
  const dense = forkSession(model, base, undefined, steps + 4);
  const denseTokens: number[] = [];
  const denseLogits: Float32Array[] = [];
  let logits = first;
  for (let s = 0; s < steps; s++) {
    denseTokens.push(argmax(logits));
    logits = dense.forward([denseTokens[s]!], { positions: [promptLength + s] }).logits;
    denseLogits.push(logits);
  }
  for (const [name, create] of methods) {
    // Free-running greedy decode: agreement and first divergence.
    const free = forkSession(model, base, create(), steps + 4);
    let agree = 0;
    let firstDivergence = steps;
    logits = first;
    for (let s = 0; s < steps; s++) {
      const token = argmax(logits);
      if (token === denseTokens[s]) agree++;
      else firstDivergence = Math.min(firstDivergence, s);
      logits = free.forward([token], { positions: [promptLength + s] }).logits;
    }
    // Teacher-forced on the dense tokens: per-step logit error and top-1 agreement.
    const policy = create();
    const forced = forkSession(model, base, policy, steps + 4);
    const error = new Tally();
    const kernels = new Set<string>();
    let top1 = 0;
    let active = 0;
    for (let s = 0; s < steps; s++) {
      const out = forced.forward([denseTokens[s]!], { positions: [promptLength + s] }).logits;
      error.add(relativeL2Error(tensor([out.length], out), tensor([out.length], denseLogits[s]!)));
      if (argmax(out) === argmax(denseLogits[s]!)) top1++;
      if (policy.lastStep?.active) active++;
      for (const k of policy.lastStep?.kernels ?? []) kernels.add(k);
    }
    rows.push({
      suite: 'delta-model',
      method: name,
      workload: `${workload}-quality`,
      seqLength: promptLength,
      backend: [...kernels].join('+'),
      metrics: {
        greedyAgreement: agree / steps,
        firstDivergenceStep: firstDivergence,
        teacherForcedTop1: top1 / steps,
        logitRelErrorMean: error.mean,
        logitRelErrorMax: error.max,
        activeSteps: active,
        steps,
      },
    });
  }
  return rows;
}

/** Both suites with their default sizes. */
export function createDeltaBenchmarkSuites(options: { traceStack?: TraceStackBenchmarkOptions; model?: ModelBenchmarkOptions } = {}): BenchmarkSuite[] {
  return [createTraceStackSuite(options.traceStack), createModelSuite(options.model)];
}

/** The suites apps/bench registers. */
export const benchmarks: BenchmarkSuite[] = createDeltaBenchmarkSuites();
