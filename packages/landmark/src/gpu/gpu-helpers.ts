/**
 * Plumbing the family's GPU methods share: a causal check, and running a selection step on
 * resident buffers with its rows released afterwards.
 */
import { ConfigError } from '@sparse-attn/core';
import type { GpuBackend, GpuSelection, GpuSelectionStep, ResidentAttention } from '@sparse-attn/backend-gpu';

/** Throws `<methodId>: causal must be true[ (why)], got false` for a non-causal call. */
export function requireCausal(methodId: string, causal: boolean, why?: string): void {
  if (!causal) throw new ConfigError(`${methodId}: causal must be true${why === undefined ? '' : ` (${why})`}, got false`);
}

/**
 * Runs a selection step on a resident call and hands its rows (and the step's time) to `use`;
 * the rows are released when `use` settles, whether or not it throws.
 */
export async function withGpuSelection<T>(
  backend: GpuBackend,
  resident: ResidentAttention,
  step: GpuSelectionStep,
  use: (selection: GpuSelection, selectionMs: number) => Promise<T>,
): Promise<T> {
  const { selection, ms } = await backend.runSelection(resident, step);
  try {
    return await use(selection, ms);
  } finally {
    backend.releaseSelection(selection);
  }
}
