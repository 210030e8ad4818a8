import type { BudgetPoint } from '@sparse-attn/core';

/**
 * Budget points `label=x` (config `{ [key]: x }`) for every x of `values` sparser than full
 * coverage, then the point that covers every block of `blockSize` keys (at least `minimum`), where
 * each method of this package equals dense attention. Sparsest first, as the bench expects.
 */
export function sweep(sequenceLength: number, blockSize: number, values: readonly number[], key: string, label: string, minimum = 1, extra: (x: number) => Record<string, unknown> = () => ({})): BudgetPoint[] {
  const full = Math.max(minimum, Math.ceil(sequenceLength / blockSize));
  const points = values.filter((x) => x < full).map((x) => ({ label: `${label}=${x}`, config: { [key]: x, ...extra(x) } }));
  return [...points, { label: `${label}=${full} (full)`, config: { [key]: full, ...extra(full) } }];
}

/** Share of a call's time spent choosing keys (the bench's "selection overhead" column). */
export function selectionShare(selectionMs: number, attentionMs: number): number {
  const total = selectionMs + attentionMs;
  return total > 0 ? selectionMs / total : 0;
}
