/**
 * The `gpu-decoders` suite: each GPU method's real decoder (`createDecoder`: its KV cache and
 * kept state on the device, the token appended and output, lse and selection read back every
 * step) stepping one token at a time after a context of S − 1 tokens, against the dense GPU
 * decoder in the same run. What an inference loop pays per token, where the `gpu-attention`
 * suite's decode rows time the kernels of a step on a resident call.
 *
 * Each decoder is timed twice on one context: on a GPU that runs nothing but the decode steps
 * (`uniform-gpu-decoder` rows), and with each step following a few milliseconds of dense attention
 * work, as in a model whose other layers keep the GPU busy (`…-loaded` rows). The difference is
 * the GPU's clock: an H100 that sees only short bursts of work with host round trips between them
 * stays at its idle SM clock (345 MHz, sampled with nvidia-smi during a run), and boosts (1980 MHz)
 * under sustained work.
 */
import { assertFinite, tensor, type BenchmarkContext, type BenchmarkRow, type BenchmarkSuite, type DecoderShape, type Tensor } from '@sparse-attn/core';
import { createGpuBackend, describeBackend, type GpuBackend } from './gpu-backend.js';
import { gpuDenseMethod, type GpuAttentionDecoder, type GpuMethodDefinition } from './gpu-methods.js';
import { gpuLoad, timeSteps, type GpuLoad } from './gpu-load.js';

/** Shape of the decoder benchmark: the B = 1, H = 32, D = 128 (small in quick mode). */
export interface GpuDecoderBenchShape {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

/** Options of {@link runGpuDecoderBenchmark}. */
export interface GpuDecoderBenchOptions {
  /** Default: H = 32, D = 128, MHA (H = 4, D = 64 in quick mode). */
  readonly shape?: GpuDecoderBenchShape;
  /**
   * Untimed steps after the context, on the idle GPU (default 300; 3 in quick mode); the loaded
   * rows, which run after them on warm code, take at most 10.
   */
  readonly warmupSteps?: number;
  /** Timed one-token steps per decoder and mode (default 31; 15 in quick mode). */
  readonly timedSteps?: number;
  /** Tokens of the dense call that loads the GPU before each step of the loaded rows (default 4096; 256 in quick mode), with the benchmark's heads and head size. */
  readonly loadSeq?: number;
  /** Called after each row, for streaming output on long device runs. */
  readonly onRow?: (row: BenchmarkRow) => void;
}

/**
 * Untimed one-token steps before a decoder's timed ones. An inference loop runs thousands, and
 * its first ones are not its steady state: the step's host code (validation, append, encoding,
 * readback) runs before V8 has optimised it (a landmark step 0.5–0.95 ms over its first ten calls,
 * 0.26–0.32 ms from the hundredth on, in the `gpu-attention` suite's resident rows), and the GPU's
 * clock governor has not reacted to the steps yet (on the H100, continuous dense steps over 64k
 * keys take 3.4–4.6 ms at the idle 345 MHz for ~50 steps, then 1.5 ms at 1980 MHz; light sparse
 * steps keep it near idle). Until the eighteenth session this suite timed steps 4–18.
 */
const DECODER_WARMUP = 300;
/** Untimed steps before the loaded rows' timed ones (the code is warm by then: they follow the idle rows). */
const LOADED_DECODER_WARMUP = 10;
/** Timed steps per decoder and mode (as the resident decode rows: medians over 31 moved less between runs than over 15). */
const DECODER_TIMED = 31;

/** Seeded uniform values in [−1, 1) (a 32-bit LCG: the context of a 64k cache is 2 GiB of floats, built in seconds). */
function uniformValues(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x / 2147483648 - 1;
  }
  return out;
}

interface DecoderWorkload {
  readonly shape: DecoderShape;
  /** Context k, v `[1, Hkv, S − 1, D]`. */
  readonly k: Tensor;
  readonly v: Tensor;
  /** One-token steps (q `[1, Hq, 1, D]`, k and v `[1, Hkv, 1, D]`). */
  readonly steps: readonly { q: Tensor; k: Tensor; v: Tensor }[];
}

function decoderWorkload(seq: number, s: GpuDecoderBenchShape, stepCount: number, seed: number): DecoderWorkload {
  const context = seq - 1;
  const kv = (n: number, at: number) => tensor([1, s.kvHeads, n, s.headDim], uniformValues(s.kvHeads * n * s.headDim, at));
  const steps = Array.from({ length: stepCount }, (_, i) => ({
    q: tensor([1, s.heads, 1, s.headDim], uniformValues(s.heads * s.headDim, seed + 10 + i)),
    k: kv(1, seed + 1000 + i),
    v: kv(1, seed + 2000 + i),
  }));
  return { shape: { batch: 1, queryHeads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim }, k: kv(context, seed + 1), v: kv(context, seed + 2), steps };
}

/**
 * Loads the context into a decoder: `appendContext` where it has one; otherwise a prefill step
 * whose queries are the context's (the decoder attends them, as its CPU twin's prefill does).
 */
async function loadContext(decoder: GpuAttentionDecoder, w: DecoderWorkload, seed: number): Promise<void> {
  if (decoder.appendContext) {
    decoder.appendContext(w.k, w.v);
    return;
  }
  const context = w.k.shape[2]!;
  const q = tensor([1, w.shape.queryHeads, context, w.shape.headDim], uniformValues(w.shape.queryHeads * context * w.shape.headDim, seed + 3));
  await decoder.step({ q, k: w.k, v: w.v });
}

/**
 * Times a decoder's one-token steps: median wall time per step (append, kernels, readback), and
 * the last step's density over the tokens fed (a KV-dropping decoder attends its kept entries,
 * fewer than the tokens it has seen). With `load`, each step follows one run of it (untimed).
 */
async function timeDecoderSteps(decoder: GpuAttentionDecoder, steps: DecoderWorkload['steps'], warmup: number, repeats: number, load?: GpuLoad): Promise<{ ms: number; madMs: number; density: number; selectionMs: number; attentionMs: number }> {
  let step = 0;
  let density = 0;
  const split = { selectionMs: [] as number[], attentionMs: [] as number[] };
  const timing = await timeSteps(
    async () => {
      const input = steps[step++]!;
      return { input, result: await decoder.step(input) };
    },
    { warmup, repeats },
    load,
    ({ input, result }) => {
      assertFinite(result.output, 'output');
      // One query per head: the dense pairs of the step are the query heads times the tokens fed.
      density = result.stats.pairs / (input.q.shape[1]! * decoder.length);
      split.selectionMs.push(result.stats.selectionMs);
      split.attentionMs.push(result.stats.attentionMs);
    },
  );
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? 0;
  return { ms: timing.medianMs, madMs: timing.madMs, density, selectionMs: median(split.selectionMs), attentionMs: median(split.attentionMs) };
}

/**
 * The dense decoder and each method's GPU decoder (default config; methods without `createDecoder`
 * are skipped with a row saying so), at each sequence length: a context of S − 1 tokens, then
 * warm-up and timed one-token steps (300 + 31 by default) on an otherwise idle GPU, then 10 + 31
 * more each after a run of dense work (the `…-loaded` rows, see the file's comment);
 * `speedupVsDense` = the dense decoder's median step over the method's in the same mode. A method that throws gets a row with `failed: 1` and
 * the run goes on.
 */
export async function runGpuDecoderBenchmark(backend: GpuBackend, context: BenchmarkContext, methods: readonly GpuMethodDefinition[], options: GpuDecoderBenchOptions = {}): Promise<BenchmarkRow[]> {
  const s = options.shape ?? (context.quick ? { heads: 4, kvHeads: 4, headDim: 64 } : { heads: 32, kvHeads: 32, headDim: 128 });
  const warmup = Math.max(0, options.warmupSteps ?? (context.quick ? 3 : DECODER_WARMUP));
  const loadedWarmup = Math.min(warmup, LOADED_DECODER_WARMUP);
  const timed = Math.max(1, options.timedSteps ?? (context.quick ? 15 : DECODER_TIMED));
  const onRow = options.onRow;
  const gqa = s.kvHeads === s.heads ? '' : `-gqa${s.heads / s.kvHeads}`;
  const label = describeBackend(backend.info);
  const rows: BenchmarkRow[] = [];
  const push = (row: BenchmarkRow) => {
    rows.push(row);
    onRow?.(row);
  };
  const wanted = (id: string) => id !== 'dense' && (!context.methods || context.methods.includes(id));
  const load = await gpuLoad(backend, s, options.loadSeq ?? (context.quick ? 256 : 4096), context.seed);
  try {
    for (const seq of context.quick ? [512] : context.seqLengths) {
      context.progress?.(`gpu decoders: B=1 Hq=${s.heads} Hkv=${s.kvHeads} D=${s.headDim}, context ${seq - 1}, one-token steps, idle and loaded GPU`);
      const w = decoderWorkload(seq, s, warmup + loadedWarmup + 2 * timed, context.seed + seq);
      const base = { suite: 'gpu-decoders', workload: `uniform-gpu-decoder${gqa}`, seqLength: seq };
      // The dense decoder's step in each mode, for the methods' ratios.
      const dense: { idle?: number; loaded?: number } = {};
      for (const definition of [gpuDenseMethod, ...methods.filter((m) => wanted(m.id))]) {
        backend.releaseScratch();
        const method = definition.create(backend);
        if (!method.createDecoder) {
          push({ ...base, method: definition.id, backend: label, metrics: { skipped: 1 } });
          continue;
        }
        context.progress?.(`gpu decoders: ${definition.id} S=${seq}`);
        let decoder: GpuAttentionDecoder | undefined;
        try {
          decoder = method.createDecoder(w.shape, { initialCapacity: seq + w.steps.length });
          const loadStarted = performance.now();
          await loadContext(decoder, w, context.seed + seq);
          const contextMs = performance.now() - loadStarted;
          for (const mode of ['idle', 'loaded'] as const) {
            const steps = mode === 'idle' ? w.steps.slice(0, warmup + timed) : w.steps.slice(warmup + timed);
            const t = await timeDecoderSteps(decoder, steps, mode === 'idle' ? warmup : loadedWarmup, timed, mode === 'loaded' ? load : undefined);
            if (definition.id === 'dense') dense[mode] = t.ms;
            const denseMs = dense[mode];
            push({
              ...base,
              ...(mode === 'loaded' ? { workload: `${base.workload}-loaded` } : {}),
              method: definition.id,
              backend: label,
              metrics: {
                ms: t.ms,
                madMs: t.madMs,
                selectionMs: t.selectionMs,
                attentionMs: t.attentionMs,
                ...(mode === 'idle' ? { contextMs } : {}),
                density: t.density,
                ...(denseMs === undefined || definition.id === 'dense' ? {} : { speedupVsDense: denseMs / t.ms }),
                heads: s.heads,
                kvHeads: s.kvHeads,
                headDim: s.headDim,
              },
            });
          }
        } catch (error) {
          context.progress?.(`gpu decoders: ${definition.id} S=${seq} failed: ${(error as Error).message}`);
          push({ ...base, method: definition.id, backend: label, metrics: { failed: 1 } });
        } finally {
          decoder?.destroy();
        }
      }
    }
  } finally {
    load.release();
  }
  return rows;
}

/**
 * The suite `bench --backend gpu` runs for real decoders over `methods` (default: this package's;
 * apps/bench builds it with every family's GPU methods). On `--backend cpu` it returns no rows; on
 * `gpu` it fails loudly when no adapter exists.
 */
export function createGpuDecoderSuite(methods: readonly GpuMethodDefinition[] = []): BenchmarkSuite {
  return {
    id: 'gpu-decoders',
    family: 'backend-gpu',
    description: 'Real GPU decoders (KV cache on the device, append + kernels + readback per token) vs the dense GPU decoder: one-token steps after a context of S − 1 tokens, on an idle and on a loaded GPU (B=1, H=32, D=128; MHA, then GQA with 8 KV heads).',
    async run(context) {
      if (context.backend !== 'gpu') return [];
      const backend = await createGpuBackend();
      try {
        const onRow = (row: BenchmarkRow) => context.progress?.(`row ${JSON.stringify(row)}`);
        const rows = await runGpuDecoderBenchmark(backend, context, methods, { onRow });
        if (context.quick) return rows;
        // The same decoders with GQA 32/8 (a quarter of the cache; selections shared by 4 query heads).
        return [...rows, ...(await runGpuDecoderBenchmark(backend, context, methods, { onRow, shape: { heads: 32, kvHeads: 8, headDim: 128 } }))];
      } finally {
        backend.destroy();
      }
    },
  };
}
