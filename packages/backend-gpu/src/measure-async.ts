import type { MeasureOptions, Timing } from '@sparse-attn/core';

/**
 * Async counterpart of core's `measure`: GPU work resolves through promises, so each sample
 * awaits `run`, which returns the milliseconds it measured itself (queue time, not host time).
 */
export async function measureAsync(run: () => Promise<number>, options: MeasureOptions = {}): Promise<Timing> {
  const warmup = options.warmup ?? 1;
  const repeats = Math.max(1, options.repeats ?? 5);
  const budget = options.budgetMs ?? Infinity;
  for (let i = 0; i < warmup; i++) await run();
  const samples: number[] = [];
  let spent = 0;
  while (samples.length < repeats && (samples.length === 0 || spent < budget)) {
    const ms = await run();
    samples.push(ms);
    spent += ms;
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const deviations = samples.map((x) => Math.abs(x - median)).sort((a, b) => a - b);
  const dm = deviations.length >> 1;
  return {
    medianMs: median,
    minMs: sorted[0]!,
    maxMs: sorted[sorted.length - 1]!,
    madMs: deviations.length % 2 ? deviations[dm]! : (deviations[dm - 1]! + deviations[dm]!) / 2,
    samplesMs: samples,
  };
}
