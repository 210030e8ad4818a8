import type { BudgetPoint } from '@sparse-attn/core';

/**
 * A budget sweep for the bench, sparsest first: k = first, 2·first, … while k < `below` and
 * k ≤ `last`, then the point `all` that covers every key (equals dense, or the method's full form).
 * Every method of this package sweeps its budget this way, so their rows line up in the report.
 */
export function doublingBudgets(
  first: number,
  last: number,
  below: number,
  point: (k: number) => Record<string, unknown>,
  all: Record<string, unknown>,
): BudgetPoint[] {
  const out: BudgetPoint[] = [];
  for (let k = first; k < below && k <= last; k *= 2) out.push({ label: `k=${k}`, config: point(k) });
  out.push({ label: 'all', config: all });
  return out;
}

/** Retrieved-block sweep for a sequence of `blockSize`-key blocks: k ∈ {1, 2, 4, …} below the block count (minus first and current). */
export function blockBudgets(sequenceLength: number, blockSize: number, all: Record<string, unknown>): BudgetPoint[] {
  const blocks = Math.ceil(sequenceLength / blockSize);
  return doublingBudgets(1, 256, blocks - 2, (topK) => ({ topK }), all);
}
