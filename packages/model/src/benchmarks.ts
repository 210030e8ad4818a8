import { ConfigError, Rng, denseAttention, matmul, measure, tensor, type BenchmarkContext, type BenchmarkRow, type BenchmarkSuite, type MatmulOptions } from '@sparse-attn/core';
import type { LlamaConfigInput } from './llama-config.js';
import type { LlamaModel } from './llama-model.js';
import type { ModelSession } from './model-session.js';
import { measureOrtMatmul } from './measure-ort-matmul.js';
import { createRandomModel } from './random-weights.js';

/**
 * The ~100M-parameter benchmark model: 12 layers, hidden 768, 12 query heads over 4 KV heads
 * (GQA, head dim 64), SwiGLU width 2048, a 32k vocabulary with tied embeddings — 100.2M
 * parameters, the size class of SmolLM-135M / GPT-2 small.
 */
export const benchmarkModelConfig: LlamaConfigInput = {
  num_hidden_layers: 12,
  hidden_size: 768,
  num_attention_heads: 12,
  num_key_value_heads: 4,
  head_dim: 64,
  intermediate_size: 2048,
  vocab_size: 32000,
  tie_word_embeddings: true,
};

/**
 * A draft for {@link benchmarkModelConfig}: the same 32k vocabulary, head dim and RoPE, with 2
 * layers of width 256 (4 query heads over 2 KV heads, SwiGLU 768) — 9.8M parameters, about a
 * tenth of the target, the size ratio of the SpecKV/SpecPC draft/target pairs (e.g. 1.5B/14B).
 */
export const benchmarkDraftConfig: LlamaConfigInput = {
  num_hidden_layers: 2,
  hidden_size: 256,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 64,
  intermediate_size: 768,
  vocab_size: 32000,
  tie_word_embeddings: true,
};

/** The `--quick` model: the same shape family, small enough for a smoke run. */
export const quickModelConfig: LlamaConfigInput = {
  num_hidden_layers: 2,
  hidden_size: 64,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 128,
  vocab_size: 256,
  tie_word_embeddings: true,
};

/** Sizes of one benchmark run. */
interface Plan {
  readonly workload: string;
  readonly config: LlamaConfigInput;
  readonly contexts: readonly number[];
  /** Tokens of the timed prefill chunk. */
  readonly chunk: number;
  /** Edge of the square GEMM. */
  readonly gemm: number;
  /** Contexts up to this length also get a full prefill from an empty cache (timed once). */
  readonly fullPrefillMax: number;
}

/**
 * The run's sizes. Context lengths are the ones the bench passes (`context.seqLengths`, sorted,
 * duplicates dropped); only when it passes none does the suite fall back to the 1k and
 * 8k (64 and 256 with `quick`). Quick mode keeps the tiny model and GEMM whatever the lengths.
 */
function planOf(context: BenchmarkContext): Plan {
  const requested = [...new Set(context.seqLengths)].sort((a, b) => a - b);
  for (const length of requested) {
    if (!(Number.isSafeInteger(length) && length >= 1)) throw new ConfigError(`model-throughput: context lengths must be positive integers, got ${length}`);
  }
  const contexts = (fallback: readonly number[]) => (requested.length > 0 ? requested : fallback);
  return context.quick
    ? { workload: 'random-tiny', config: quickModelConfig, contexts: contexts([64, 256]), chunk: 16, gemm: 256, fullPrefillMax: 64 }
    : { workload: 'random-100m', config: benchmarkModelConfig, contexts: contexts([1024, 8192]), chunk: 64, gemm: 2048, fullPrefillMax: 1024 };
}

/**
 * Fills every layer's cache with `length` synthetic post-RoPE K/V rows (seeded N(0, 1)) at
 * positions 0..length−1. Attention cost depends on the cache length, not on the values, so a
 * planted context measures decode and chunk-prefill speed at depth `length` without paying for
 * an 8k-token prefill first.
 */
export function plantContext(session: ModelSession, length: number, seed: number): void {
  const d = session.model.dims;
  const rng = new Rng(seed);
  const positions = Int32Array.from({ length }, (_, i) => i);
  for (const layer of session.layers) {
    const k = tensor([1, d.kvHeads, length, d.headDim], rng.fillNormal(new Float32Array(d.kvHeads * length * d.headDim)));
    const v = tensor([1, d.kvHeads, length, d.headDim], rng.fillNormal(new Float32Array(d.kvHeads * length * d.headDim)));
    layer.cache.append(k, v, positions);
  }
}

/**
 * Core's GEMM at `n³` (plain on 2 threads and on 1, `transposeB` on 2) and onnxruntime-node's
 * `MatMul` on the same inputs in the same run, also on 2 intra-op threads (the reference
 * setting), the two 2-thread products sampled alternately. Our row carries the 2-thread ratio to
 * ORT; the ORT row records its thread count, or that it could not run and why.
 */
async function gemmRows(plan: Plan, context: BenchmarkContext): Promise<BenchmarkRow[]> {
  const n = plan.gemm;
  const threads = 2;
  const rng = new Rng(context.seed);
  const a = rng.fillNormal(new Float32Array(n * n));
  const b = rng.fillNormal(new Float32Array(n * n));
  const out = new Float32Array(n * n);
  const run = (options: MatmulOptions) => () => matmul(a, b, n, n, n, out, options);
  const single = measure(run({ threads: 1 }), { warmup: 1, repeats: context.repeats });
  const transposed = measure(run({ threads, transposeB: true }), { warmup: 1, repeats: context.repeats });
  // Ours (2 threads) and ORT (2 threads) sampled in turn, so the ratio sees one load.
  const ort = await measureOrtMatmul(a, b, n, n, n, { threads, warmup: 1, repeats: context.repeats, alongside: run({ threads }) });
  const plain = ort.available && ort.alongside ? ort.alongside : measure(run({ threads }), { warmup: 1, repeats: context.repeats });
  const flops = 2 * n * n * n;
  const gflops = flops / (plain.medianMs * 1e6);
  const base = { suite: 'model-throughput', workload: `gemm-${n}x${n}x${n}`, seqLength: n };
  const ours: BenchmarkRow = {
    ...base,
    method: 'matmul',
    backend: `cpu:core-matmul ${gemmKernel()} (${threads} threads)`,
    metrics: {
      gflops,
      gflopsOneThread: flops / (single.medianMs * 1e6),
      gflopsTransposeB: flops / (transposed.medianMs * 1e6),
      medianMs: plain.medianMs,
      madMs: plain.madMs,
      medianMsOneThread: single.medianMs,
      medianMsTransposeB: transposed.medianMs,
      threads,
      ...(ort.available ? { ratioVsOrt: gflops / (flops / (ort.timing.medianMs * 1e6)) } : {}),
    },
  };
  const baseline: BenchmarkRow = ort.available
    ? {
        ...base,
        method: 'ort-matmul',
        backend: `cpu:onnxruntime-node ${ort.version} MatMul (${ort.threads} threads)`,
        metrics: { gflops: flops / (ort.timing.medianMs * 1e6), medianMs: ort.timing.medianMs, madMs: ort.timing.madMs, threads: ort.threads },
      }
    : { ...base, method: 'ort-matmul', backend: `none: ${ort.reason}`, metrics: {} };
  return [ours, baseline];
}

/**
 * The kernel core's `matmul` resolves to under `auto` (`wasm-simd`, or `js` with the reason).
 * Core exports no query for it, but dense attention resolves through the same function and
 * reports the result, so a one-key attention call names it.
 */
function gemmKernel(): string {
  const one = tensor([1, 1, 1, 4], new Float32Array(4));
  const backend = denseAttention({ q: one, k: one, v: one }).backend;
  return backend.fallbackReason ? `${backend.kernel} (${backend.fallbackReason})` : backend.kernel;
}

/** Decode and chunked-prefill throughput of `model` at one context length, dense attention. */
function modelRows(model: LlamaModel, plan: Plan, contextLength: number, context: BenchmarkContext): BenchmarkRow[] {
  const rng = new Rng(context.seed + contextLength);
  const token = () => rng.int(model.dims.vocab);
  const chunk = Math.min(plan.chunk, contextLength);

  // Prefill: a chunk of `chunk` new tokens on top of `contextLength − chunk` planted entries.
  // Only the forward call is timed (session creation and planting are not).
  let kernel = '';
  let attentionMs = 0;
  const prefillSamples: number[] = [];
  const prefillCpu: number[] = [];
  for (let r = 0; r < Math.max(1, Math.min(context.repeats, 3)); r++) {
    const session = model.createSession({ initialCapacity: contextLength + 1 });
    plantContext(session, contextLength - chunk, context.seed);
    const tokens = Array.from({ length: chunk }, token);
    const cpuStart = cpuMs();
    const started = performance.now();
    const result = session.forward(tokens);
    prefillSamples.push(performance.now() - started);
    prefillCpu.push(cpuMs() - cpuStart);
    kernel = result.trace[0]!.backend.kernel;
    attentionMs = result.trace.reduce((s, t) => s + t.stats.attentionMs, 0);
  }
  const prefillMs = middle(prefillSamples);

  // Full prefill: the whole context from an empty cache in one call (one timed run: at 1k tokens
  // on the 100M model it is ~0.2 TFLOP; longer contexts are covered by the chunk rows).
  const full: BenchmarkRow[] = [];
  if (contextLength <= plan.fullPrefillMax) {
    const session = model.createSession({ initialCapacity: contextLength });
    const tokens = Array.from({ length: contextLength }, token);
    const cpuStart = cpuMs();
    const started = performance.now();
    const result = session.forward(tokens);
    const ms = performance.now() - started;
    const cpu = cpuMs() - cpuStart;
    full.push({
      suite: 'model-throughput',
      method: 'dense',
      workload: plan.workload,
      seqLength: contextLength,
      backend: `cpu:${result.trace[0]!.backend.kernel}`,
      budget: 'prefill-full',
      metrics: {
        tokensPerSecond: contextLength / (ms / 1000),
        medianMs: ms,
        cpuMs: cpu,
        tokensPerCpuSecond: contextLength / (cpu / 1000),
        attentionShare: result.trace.reduce((sum, t) => sum + t.stats.attentionMs, 0) / ms,
        parameters: model.parameterCount,
      },
    });
  }

  // Decode: single-token steps on a cache of `contextLength` entries.
  const session = model.createSession({ initialCapacity: contextLength + context.repeats + 8 });
  plantContext(session, contextLength, context.seed);
  let decodeAttentionMs = 0;
  const decodeCpu: number[] = [];
  const decode = measure(
    () => {
      const cpuStart = cpuMs();
      const result = session.forward([token()]);
      decodeCpu.push(cpuMs() - cpuStart);
      decodeAttentionMs = result.trace.reduce((s, t) => s + t.stats.attentionMs, 0);
    },
    { warmup: 1, repeats: Math.max(3, context.repeats) },
  );
  const kvBytes = session.layers.reduce((s, l) => s + 2 * 4 * l.cache.length * l.cache.kvHeads * l.cache.headDim, 0);
  const base = { suite: 'model-throughput', method: 'dense', workload: plan.workload, seqLength: contextLength, backend: `cpu:${kernel}` };
  return [
    ...full,
    {
      ...base,
      budget: `prefill-chunk-${chunk}`,
      metrics: {
        tokensPerSecond: chunk / (prefillMs / 1000),
        medianMs: prefillMs,
        cpuMs: middle(prefillCpu),
        tokensPerCpuSecond: chunk / (middle(prefillCpu) / 1000),
        attentionShare: attentionMs / prefillMs,
        parameters: model.parameterCount,
      },
    },
    {
      ...base,
      budget: 'decode',
      metrics: {
        tokensPerSecond: 1000 / decode.medianMs,
        medianMs: decode.medianMs,
        // The warm-up call is the first sample; the timed ones follow.
        cpuMs: middle(decodeCpu.slice(1)),
        tokensPerCpuSecond: 1000 / middle(decodeCpu.slice(1)),
        madMs: decode.madMs,
        attentionShare: decodeAttentionMs / decode.medianMs,
        kvBytes,
        parameters: model.parameterCount,
      },
    },
  ];
}

/**
 * CPU time of the whole process (every thread) in ms. On a machine shared with other jobs, wall
 * time stretches with the load while CPU time barely does, so rows report both: `tokensPerSecond`
 * (wall) and `tokensPerCpuSecond`. Runtimes without `process.cpuUsage` report NaN.
 */
function cpuMs(): number {
  const usage = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }).process?.cpuUsage?.();
  return usage ? (usage.user + usage.system) / 1000 : Number.NaN;
}

/** Median of samples. */
function middle(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
}

/**
 * The model runtime's benchmarks: core GEMM GFLOP/s (2048³; 2 threads plain and `transposeB`,
 * 1 thread plain) against onnxruntime-node's MatMul on 2 threads in the same run, and
 * tokens/s of the ~100M random model with dense attention at the context lengths the bench
 * passes (`context.seqLengths`; 1k and 8k when it passes none), for decode (one token per step) and for prefill (a 64-token chunk at that depth; the context is planted, see
 * {@link plantContext}), plus a full prefill from an empty cache at lengths up to 1k. `--quick` uses a 2-layer model and a 256³ GEMM (64/256 context when none is passed).
 */
export const benchmarks: readonly BenchmarkSuite[] = [
  {
    id: 'model-throughput',
    family: 'model',
    description: 'Llama-style runtime: core GEMM GFLOP/s vs onnxruntime-node MatMul, and dense prefill/decode tokens/s of a random ~100M model at the requested context lengths (default 1k and 8k).',
    async run(context) {
      const plan = planOf(context);
      context.progress?.(`model-throughput: GEMM ${plan.gemm}³ (core and onnxruntime-node)`);
      const rows: BenchmarkRow[] = await gemmRows(plan, context);
      context.progress?.(`model-throughput: building ${plan.workload}`);
      const model = createRandomModel(plan.config, { seed: context.seed });
      for (const length of plan.contexts) {
        context.progress?.(`model-throughput: ${plan.workload} at ${length} tokens`);
        rows.push(...modelRows(model, plan, length, context));
      }
      return rows;
    },
  },
];
