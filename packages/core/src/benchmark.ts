/**
 * Shared benchmark contract: timing helper and the suite interface through which families
 * with cross-layer or cross-model methods (delta, draft-kv) contribute rows to apps/bench.
 * Runtime-neutral (uses `performance.now`), so it runs in browsers too.
 */

/** Timing of repeated runs, in milliseconds. */
export interface Timing {
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** Median absolute deviation: a spread robust to one noisy run. */
  readonly madMs: number;
  readonly samplesMs: readonly number[];
}

export interface MeasureOptions {
  /** Untimed warm-up runs (JIT, caches). Default 1. */
  readonly warmup?: number;
  /** Timed runs. Default 5. */
  readonly repeats?: number;
  /** Stop adding repeats once this many milliseconds were spent timing (at least 1 run). Default Infinity. */
  readonly budgetMs?: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs `fn` `warmup` times untimed, then `repeats` times timed; returns median and spread. */
export function measure(fn: () => unknown, options: MeasureOptions = {}): Timing {
  const warmup = options.warmup ?? 1;
  const repeats = Math.max(1, options.repeats ?? 5);
  const budget = options.budgetMs ?? Infinity;
  for (let i = 0; i < warmup; i++) fn();
  const samples: number[] = [];
  let spent = 0;
  while (samples.length < repeats && (samples.length === 0 || spent < budget)) {
    const t0 = performance.now();
    fn();
    const dt = performance.now() - t0;
    samples.push(dt);
    spent += dt;
  }
  const med = median(samples);
  return {
    medianMs: med,
    minMs: Math.min(...samples),
    maxMs: Math.max(...samples),
    madMs: median(samples.map((x) => Math.abs(x - med))),
    samplesMs: samples,
  };
}

/** Options the bench passes to every suite. */
export interface BenchmarkContext {
  /** Tiny sizes for smoke tests (CI). */
  readonly quick: boolean;
  /** Context lengths to run at (the suite may clip to what it supports). */
  readonly seqLengths: readonly number[];
  readonly repeats: number;
  readonly seed: number;
  /** Requested backend. */
  readonly backend: 'cpu' | 'gpu';
  /** Method ids a suite that times several methods restricts itself to (default: all of them). */
  readonly methods?: readonly string[];
  /** Progress callback: a short line describing the step that just started. */
  readonly progress?: (message: string) => void;
}

/** One row of a suite's results: identifying fields plus named figures. */
export interface BenchmarkRow {
  readonly suite: string;
  readonly method: string;
  readonly workload: string;
  readonly seqLength: number;
  /** Budget label (e.g. `K=64`), if the row is one point of a sweep. */
  readonly budget?: string;
  /** Which kernel/backend ran. */
  readonly backend: string;
  /** Named figures: times in ms, ratios, errors, recalls, densities, bytes. */
  readonly metrics: Readonly<Record<string, number>>;
}

/**
 * A benchmark a family contributes beyond the generic method × workload sweep (e.g. DELTA on a
 * multi-layer model, SpecKV with a draft model). Exported by the family as `benchmarks`.
 */
export interface BenchmarkSuite {
  readonly id: string;
  readonly family: string;
  readonly description: string;
  run(context: BenchmarkContext): Promise<readonly BenchmarkRow[]> | readonly BenchmarkRow[];
}
