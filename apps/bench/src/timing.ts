/**
 * Timing helpers on top of core's `measure`: the summary the results file stores (median with
 * 20/80 quantiles, spec §3) and an async twin for onnxruntime's promise-based `run`.
 */
import { measure, type MeasureOptions } from '@sparse-attn/core';
import type { Timing } from './results-schema.js';

function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 1) return sorted[0]!;
  const at = p * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/** Summarises raw samples (milliseconds) as stored in the results file. */
export function summarise(samplesMs: readonly number[]): Timing {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const median = quantile(sorted, 0.5);
  const deviations = sorted.map((x) => Math.abs(x - median)).sort((a, b) => a - b);
  return {
    medianMs: median,
    p20Ms: quantile(sorted, 0.2),
    p80Ms: quantile(sorted, 0.8),
    minMs: sorted[0]!,
    maxMs: sorted[sorted.length - 1]!,
    madMs: quantile(deviations, 0.5),
    samples: sorted.length,
  };
}

/** Times a synchronous call with core's `measure` (warm-up, repeats, time budget) and summarises it. */
export function timeSync(fn: () => unknown, options: MeasureOptions): Timing {
  return summarise(measure(fn, options).samplesMs);
}

/**
 * The async counterpart of core's `measure` (same options and stopping rule) for calls that
 * return promises, such as onnxruntime's `InferenceSession.run`.
 */
export async function timeAsync(fn: () => Promise<unknown>, options: MeasureOptions): Promise<Timing> {
  const repeats = Math.max(1, options.repeats ?? 5);
  const budget = options.budgetMs ?? Infinity;
  for (let i = 0; i < (options.warmup ?? 1); i++) await fn();
  const samples: number[] = [];
  let spent = 0;
  while (samples.length < repeats && (samples.length === 0 || spent < budget)) {
    const started = performance.now();
    await fn();
    const elapsed = performance.now() - started;
    samples.push(elapsed);
    spent += elapsed;
  }
  return summarise(samples);
}
