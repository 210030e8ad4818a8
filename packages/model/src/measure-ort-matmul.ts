/**
 * Reference GEMM for the model benchmark: onnxruntime-node's CPU `MatMul`, measured in the same
 * run as core's `matmul`, so the GFLOP/s of our kernel is quoted against a production BLAS-class
 * kernel on the same machine and load rather than against a figure from elsewhere.
 *
 *   Y[m, n] = Σ_k A[m, k] · B[k, n]          (one ONNX `MatMul` node, float32, static shapes)
 *
 * onnxruntime-node is an optional dependency loaded lazily: when it is missing or fails to load,
 * the result says so (`available: false` and the reason) instead of throwing, and the benchmark
 * row records that no baseline ran.
 */
import { onnxMatMulModel, type Timing } from '@sparse-attn/core';

/** Outcome of {@link measureOrtMatmul}: a timing, or why there is none. */
export type OrtMatmulResult =
  | {
      readonly available: true;
      readonly timing: Timing;
      /** Intra-op threads the session was created with (recorded in the benchmark row). */
      readonly threads: number;
      /** onnxruntime-node's version string. */
      readonly version: string;
      /** Timing of `options.alongside`, sampled in turn with ORT, when given. */
      readonly alongside?: Timing;
    }
  | { readonly available: false; readonly reason: string };

/** Options of {@link measureOrtMatmul}. */
export interface OrtMatmulOptions {
  /** Intra-op threads of the ORT session. Default 2 (the CI machine's cores; the reference figure). */
  readonly threads?: number;
  readonly warmup?: number;
  readonly repeats?: number;
  /**
   * A synchronous competitor (our GEMM on the same inputs) timed right before every ORT run,
   * warm-up included, so both are sampled in turn under the same machine load: on a shared
   * machine a ratio of back-to-back blocks of runs drifts with the load, an interleaved one much less.
   */
  readonly alongside?: () => unknown;
}

/**
 * Times `A·B` for `A [m, k]`, `B [k, n]` on onnxruntime-node's CPU execution provider. The
 * inputs are fed as tensors on every run (as a caller of a MatMul-only graph would); output
 * allocation is ORT's. Never throws for a missing runtime: see {@link OrtMatmulResult}.
 */
export async function measureOrtMatmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, options: OrtMatmulOptions = {}): Promise<OrtMatmulResult> {
  const threads = options.threads ?? 2;
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (error) {
    return { available: false, reason: `onnxruntime-node could not be loaded (${(error as Error).message.split('\n')[0]})` };
  }
  const session = await ort.InferenceSession.create(matmulModel(m, k, n), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
  });
  try {
    const feeds = { a: new ort.Tensor('float32', a, [m, k]), b: new ort.Tensor('float32', b, [k, n]) };
    // `run` is asynchronous; time the awaited call by resolving each sample before the next.
    const samples: number[] = [];
    const alongside: number[] = [];
    const warmup = options.warmup ?? 1;
    const repeats = Math.max(1, options.repeats ?? 5);
    for (let i = 0; i < warmup + repeats; i++) {
      if (options.alongside) {
        const ours = performance.now();
        options.alongside();
        if (i >= warmup) alongside.push(performance.now() - ours);
      }
      const started = performance.now();
      await session.run(feeds);
      if (i >= warmup) samples.push(performance.now() - started);
    }
    return {
      available: true,
      timing: { ...spread(samples), samplesMs: samples },
      threads,
      version: ort.env.versions.node ?? ort.env.versions.common,
      ...(options.alongside ? { alongside: { ...spread(alongside), samplesMs: alongside } } : {}),
    };
  } finally {
    await session.release();
  }
}

/**
 * Median, min, max and median absolute deviation of samples (the fields of core's `Timing`).
 * Core's `measure` times synchronous functions only; ORT's `run` is asynchronous.
 */
function spread(samples: readonly number[]): Omit<Timing, 'samplesMs'> {
  const sorted = [...samples].sort((x, y) => x - y);
  const middle = (xs: readonly number[]) => (xs.length % 2 ? xs[xs.length >> 1]! : (xs[(xs.length >> 1) - 1]! + xs[xs.length >> 1]!) / 2);
  const medianMs = middle(sorted);
  return { medianMs, minMs: sorted[0]!, maxMs: sorted[sorted.length - 1]!, madMs: middle(samples.map((x) => Math.abs(x - medianMs)).sort((x, y) => x - y)) };
}

/** The ONNX model of one float32 `MatMul` node `y = a·b` with static shapes (core's encoder). */
export const matmulModel = onnxMatMulModel;
