/**
 * The issue's benchmark suites (issue 9, "Benchmark"), registered in apps/bench through
 * `benchmarks`:
 *
 * - `draft-kv-fidelity`: the model-free harness (spec §8.2): share of the future queries'
 *   attention mass kept, their output error vs dense and needle recall, against the KV budget C,
 *   for SnapKV, SpecKV and SpecPC sweeping the draft noise ε, with StreamingLLM and the oracle
 *   top-C as bounds. Averaged over seeds.
 * - `draft-kv-decode`: KV bytes and decode latency with a compressed cache of C entries vs the
 *   dense cache at 16k and 64k, plus SpecKV's one-off scoring cost, on core's dense kernel.
 * - `draft-kv-model`: a random-weight target/draft pair on the model runtime: next-token top-1
 *   agreement and KL against dense (teacher-forced on dense's tokens), time to first token
 *   (SpecPC's selling point), decode time per token and KV bytes for every method at C = N/8 and N/4. Random weights measure fidelity to the dense
 *   model and cost, not task accuracy.
 *
 * Every speed figure is a ratio against our dense path measured in the same run.
 */
import {
  ConfigError,
  KVCache,
  Rng,
  denseAttention,
  measure,
  tensor,
  type BenchmarkContext,
  type BenchmarkRow,
  type BenchmarkSuite,
} from '@sparse-attn/core';
import { createRandomModel, type LlamaConfigInput, type LlamaModel } from '@sparse-attn/model';
import { createDraftHarness, harnessFidelity, harnessKeep, type HarnessMethod } from './draft-harness.js';
import { DraftModel } from './draft-model.js';
import { compressLayer } from './compress-layer.js';
import { h2oPress, pyramidKvPress, snapKvPress, streamingLlmPress } from './kv-press.js';
import { decodeTokens, denseKvBytes, generateWithPress, type CompressedRun, type DecodeOptions } from './press-policy.js';
import { specKvGenerate } from './speckv.js';
import { specKvPcGenerate } from './speckv-pc.js';
import { specPcGenerate } from './specpc.js';
import { tinyDraftConfig, tinyTargetConfig } from './tiny-models.js';

const FIDELITY_METHODS: readonly HarnessMethod[] = ['snapkv', 'speckv', 'specpc', 'streaming-llm', 'oracle'];

/** Fidelity vs budget on the model-free harness. */
export const draftKvFidelitySuite: BenchmarkSuite = {
  id: 'draft-kv-fidelity',
  family: 'draft-kv',
  description: 'Model-free draft harness: future-query mass recall, output error and needle recall vs KV budget C for SnapKV, SpecKV, SpecPC (draft noise ε sweep), StreamingLLM and the oracle top-C.',
  run(context: BenchmarkContext): BenchmarkRow[] {
    const lengths = context.quick ? [512] : context.seqLengths.filter((n) => n <= 16384).length ? context.seqLengths.filter((n) => n <= 16384) : [4096, 16384];
    const budgets = context.quick ? [64, 128] : [64, 128, 256, 512, 1024];
    const epsilons = context.quick ? [0, 2] : [0, 0.5, 1, 2, 4];
    const seeds = context.quick ? 1 : Math.max(3, Math.min(5, context.repeats));
    const headDim = 64;
    const kvHeads = 2;
    const rows: BenchmarkRow[] = [];
    for (const n of lengths) {
      const harnesses = Array.from({ length: seeds }, (_, s) => createDraftHarness({ seqLength: n, headDim, kvHeads, queryHeads: 8, seed: context.seed + 101 * s }));
      for (const capacity of budgets.filter((c) => c < n)) {
        for (const method of FIDELITY_METHODS) {
          const noisy = method === 'speckv' || method === 'specpc';
          for (const epsilon of noisy ? epsilons : [0]) {
            context.progress?.(`draft-kv-fidelity: N=${n} C=${capacity} ${method} ε=${epsilon}`);
            let recall = 0;
            let error = 0;
            let needles = 0;
            for (const [s, h] of harnesses.entries()) {
              const f = harnessFidelity(h, harnessKeep(h, method, { capacity, epsilon, seed: context.seed + s }));
              recall += f.futureMassRecall / seeds;
              error += f.outputError / seeds;
              needles += f.needleRecall / seeds;
            }
            rows.push({
              suite: 'draft-kv-fidelity',
              method,
              workload: noisy ? `harness ε=${epsilon}` : 'harness',
              seqLength: n,
              budget: `C=${capacity}`,
              backend: 'cpu (js-executor)',
              metrics: {
                futureMassRecall: recall,
                outputRelError: error,
                needleRecall: needles,
                epsilon,
                seeds,
                keptShare: capacity / n,
                kvBytes: capacity * kvHeads * headDim * 8,
                denseKvBytes: n * kvHeads * headDim * 8,
              },
            });
          }
        }
      }
    }
    return rows;
  },
};

/** Decode latency and KV bytes of a compressed cache vs dense. */
export const draftKvDecodeSuite: BenchmarkSuite = {
  id: 'draft-kv-decode',
  family: 'draft-kv',
  description: 'Decode step with a C-entry compressed cache vs the dense N-entry cache (Hq=16, Hkv=4, D=64) at 16k and 64k: latency ratio, KV bytes, SpecKV scoring cost.',
  run(context: BenchmarkContext): BenchmarkRow[] {
    const lengths = context.quick ? [1024] : context.seqLengths.filter((n) => n >= 4096).length ? context.seqLengths.filter((n) => n >= 4096) : [16384, 65536];
    const budgets = context.quick ? [128] : [256, 1024, 4096];
    const queryHeads = 16;
    const kvHeads = 4;
    const headDim = 64;
    const steps = Math.max(5, context.repeats);
    const rows: BenchmarkRow[] = [];
    for (const n of lengths) {
      const rng = new Rng(context.seed);
      const k = tensor([1, kvHeads, n, headDim], rng.fillNormal(new Float32Array(kvHeads * n * headDim)));
      const v = tensor([1, kvHeads, n, headDim], rng.fillNormal(new Float32Array(kvHeads * n * headDim)));
      // Observers: w + 1 = 33 window queries and L = 16 lookahead queries (SpecKV's scoring pass).
      const observers = tensor([1, queryHeads, 49, headDim], rng.fillNormal(new Float32Array(queryHeads * 49 * headDim)));
      const query = tensor([1, queryHeads, 1, headDim], rng.fillNormal(new Float32Array(queryHeads * headDim)));
      const dense = new KVCache({ batch: 1, kvHeads, headDim, valueDim: headDim, initialCapacity: n });
      dense.append(k, v);
      context.progress?.(`draft-kv-decode: dense decode N=${n}`);
      let denseKernel = '';
      const denseTiming = measure(() => {
        denseKernel = denseAttention({ q: query, k: dense.keys(), v: dense.values() }, { checkFinite: false }).backend.kernel;
      }, { warmup: 1, repeats: steps });
      for (const capacity of budgets.filter((c) => c < n)) {
        context.progress?.(`draft-kv-decode: N=${n} C=${capacity}`);
        const compress = measure(
          () => compressLayer(observers, k, 1 / Math.sqrt(headDim), { scorer: 'observed-attention', window: 49, capacity: capacity + 17, kernel: 7, pooling: 'max', reduction: 'max' }),
          { warmup: 1, repeats: 1 },
        );
        const { keep } = compressLayer(observers, k, 1 / Math.sqrt(headDim), { scorer: 'observed-attention', window: 49, capacity: capacity + 17, kernel: 7, pooling: 'max', reduction: 'max' });
        const cache = new KVCache({ batch: 1, kvHeads, headDim, valueDim: headDim, initialCapacity: n });
        cache.append(k, v);
        cache.retain(keep.map((list) => list.subarray(0, capacity)));
        let kernel = '';
        const timing = measure(() => {
          kernel = denseAttention({ q: query, k: cache.keys(), v: cache.values() }, { checkFinite: false }).backend.kernel;
        }, { warmup: 1, repeats: steps });
        rows.push({
          suite: 'draft-kv-decode',
          method: 'speckv-cache',
          workload: `decode Hq=${queryHeads} Hkv=${kvHeads} D=${headDim}`,
          seqLength: n,
          budget: `C=${capacity}`,
          backend: `cpu (${kernel}; dense ${denseKernel})`,
          metrics: {
            decodeMs: timing.medianMs,
            denseDecodeMs: denseTiming.medianMs,
            speedupVsDense: denseTiming.medianMs / timing.medianMs,
            kvBytes: cache.length * kvHeads * headDim * 8,
            denseKvBytes: n * kvHeads * headDim * 8,
            kvBytesRatio: cache.length / n,
            scoringMs: compress.medianMs,
            scoringVsDenseDecodeSteps: compress.medianMs / denseTiming.medianMs,
          },
        });
      }
    }
    return rows;
  },
};

/** The model suite's target and draft (random weights, shared 2048-token vocabulary). */
export const benchmarkTargetConfig: LlamaConfigInput = {
  num_hidden_layers: 4,
  hidden_size: 384,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  intermediate_size: 1024,
  vocab_size: 2048,
  tie_word_embeddings: true,
};

/** The draft of the model suite: 2 layers, hidden 96 (≈ 1/15 of the target's parameters). */
export const benchmarkDraftConfig: LlamaConfigInput = {
  num_hidden_layers: 2,
  hidden_size: 96,
  num_attention_heads: 3,
  num_key_value_heads: 1,
  intermediate_size: 256,
  vocab_size: 2048,
  tie_word_embeddings: true,
};

type ModelMethod = 'snapkv' | 'pyramidkv' | 'h2o' | 'streaming-llm' | 'speckv' | 'specpc' | 'speckv-pc';

function runMethod(method: ModelMethod, target: LlamaModel, draft: DraftModel, prompt: Int32Array, newTokens: number, capacity: number, decode: DecodeOptions): CompressedRun {
  const n = prompt.length;
  // The paper's windows (32) at C ≥ 128; a quarter of the budget below (quick mode).
  const window = Math.min(32, capacity >> 2);
  switch (method) {
    case 'snapkv':
      return generateWithPress(target, prompt, newTokens, snapKvPress({ capacity, window, kernel: 7 }), decode);
    case 'pyramidkv':
      return generateWithPress(target, prompt, newTokens, pyramidKvPress({ capacity, window: Math.min(8, window), beta: 4 }), decode);
    case 'h2o':
      return generateWithPress(target, prompt, newTokens, h2oPress({ heavy: capacity >> 1, recent: capacity - (capacity >> 1) }), decode);
    case 'streaming-llm':
      return generateWithPress(target, prompt, newTokens, streamingLlmPress({ sinks: 4, recent: capacity - 4 }), decode);
    case 'speckv':
      return specKvGenerate(target, draft, prompt, newTokens, { capacity, window, kernel: 7 }, decode);
    case 'specpc':
      return specPcGenerate(target, draft, prompt, newTokens, { capacity, window, kernel: 8, startLayer: 1 }, decode);
    case 'speckv-pc':
      return specKvPcGenerate(target, draft, prompt, newTokens, {
        promptCompression: { capacity: Math.min(n, 2 * capacity), window, kernel: 8, neighbors: 8, startLayer: 1 },
        kvCompression: { capacity, window, kernel: 7 },
      }, decode);
    default:
      throw new ConfigError(`draft-kv-model: unknown method ${String(method)}`);
  }
}

/** Model-level fidelity and cost on a random target/draft pair. */
export const draftKvModelSuite: BenchmarkSuite = {
  id: 'draft-kv-model',
  family: 'draft-kv',
  description: 'Random-weight target (4×384) and draft (2×96) on the model runtime: teacher-forced top-1 agreement and KL vs dense, TTFT and decode time vs dense, KV bytes, for SnapKV, PyramidKV, H2O, StreamingLLM, SpecKV, SpecPC, SpecKV-PC at C = N/8, N/4.',
  run(context: BenchmarkContext): BenchmarkRow[] {
    const quick = context.quick;
    const target = createRandomModel(quick ? tinyTargetConfig : benchmarkTargetConfig, { seed: context.seed, std: 0.2 });
    const draft = new DraftModel(createRandomModel(quick ? tinyDraftConfig : benchmarkDraftConfig, { seed: context.seed + 1, std: 0.2 }));
    const lengths = quick ? [160] : context.seqLengths.filter((n) => n <= 2048).length ? context.seqLengths.filter((n) => n <= 2048) : [1024, 2048];
    const newTokens = quick ? 4 : 16;
    const methods: ModelMethod[] = ['snapkv', 'pyramidkv', 'h2o', 'streaming-llm', 'speckv', 'specpc', 'speckv-pc'];
    const rows: BenchmarkRow[] = [];
    const rng = new Rng(context.seed + 7);
    for (const n of lengths) {
      const prompt = Int32Array.from({ length: n }, () => rng.int(target.dims.vocab));
      context.progress?.(`draft-kv-model: dense N=${n}`);
      const denseRuns: { tokens: Int32Array; ttft: number; decodeMs: number; probabilities: Float64Array[] }[] = [];
      measure(() => {
        const session = target.createSession();
        const started = performance.now();
        session.forward(prompt);
        const ttft = performance.now() - started;
        const probabilities: Float64Array[] = [];
        const generated = decodeTokens(session, newTokens, { onLogits: (_t, logits) => probabilities.push(softmax(logits)) });
        denseRuns.push({ tokens: generated.tokens, ttft, decodeMs: generated.decodeMs, probabilities });
      }, { warmup: 1, repeats: quick ? 1 : 2 });
      const dense = denseRuns.reduce((a, b) => (a.ttft <= b.ttft ? a : b));
      for (const divisor of [8, 4]) {
        const capacity = Math.floor(n / divisor);
        for (const method of methods) {
          context.progress?.(`draft-kv-model: N=${n} C=${capacity} ${method}`);
          const runs: CompressedRun[] = [];
          let kl = 0;
          let top1 = 0;
          // Teacher-forced on dense's tokens: step t's next-token distribution vs dense's.
          const decode: DecodeOptions = {
            forceTokens: dense.tokens,
            onLogits: (t, logits) => {
              const p = dense.probabilities[t]!;
              const q = softmax(logits);
              let sum = 0;
              for (let i = 0; i < p.length; i++) if (p[i]! > 0) sum += p[i]! * Math.log(p[i]! / Math.max(q[i]!, 1e-300));
              kl += sum / newTokens;
              if (argmaxOf(q) === dense.tokens[t]) top1 += 1 / newTokens;
            },
          };
          measure(() => {
            kl = 0;
            top1 = 0;
            runs.push(runMethod(method, target, draft, prompt, newTokens, capacity, decode));
          }, { warmup: 0, repeats: quick ? 1 : 2 });
          const run = runs.reduce((a, b) => (a.timeToFirstTokenMs <= b.timeToFirstTokenMs ? a : b));
          rows.push({
            suite: 'draft-kv-model',
            method,
            workload: `random target ${target.dims.layers}×${target.dims.hidden}, draft ${draft.model.dims.layers}×${draft.model.dims.hidden}`,
            seqLength: n,
            budget: `C=${capacity}`,
            backend: 'cpu (model runtime: core matmul + dense/sparse attention)',
            metrics: {
              top1Agreement: top1,
              meanKlVsDense: kl,
              ttftMs: run.timeToFirstTokenMs,
              denseTtftMs: dense.ttft,
              ttftVsDense: run.timeToFirstTokenMs / dense.ttft,
              draftMs: run.draftMs,
              decodeMsPerToken: run.decodeMs / Math.max(1, newTokens - 1),
              denseDecodeMsPerToken: dense.decodeMs / Math.max(1, newTokens - 1),
              kvBytes: run.kvBytes,
              denseKvBytes: denseKvBytes(target, n + newTokens - 1),
              kvBytesRatio: run.kvBytes / denseKvBytes(target, n + newTokens - 1),
              positionsPreserved: run.positionMode === 'original' ? 1 : 0,
            },
          });
        }
      }
    }
    return rows;
  },
};

function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i]! - max);
  for (let i = 0; i < out.length; i++) out[i]! /= sum;
  return out;
}

function argmaxOf(values: Float64Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Every suite of this package, for apps/bench. */
export const benchmarks: BenchmarkSuite[] = [draftKvFidelitySuite, draftKvDecodeSuite, draftKvModelSuite];
