/**
 * The `gpu-delta-stack` benchmark suite (`bench --backend gpu`): DELTA's layer-stack decode step
 * against the dense step on the GPU ({@link runDeltaStackDecode}), the GPU counterpart of the CPU
 * `delta-trace-stack` suite's attention ms per token.
 */
import type { BenchmarkRow, BenchmarkSuite } from '@sparse-attn/core';
import { createGpuBackend } from '@sparse-attn/backend-gpu';
import { deltaStackRows, runDeltaStackDecode } from './gpu-delta-stack.js';

/** Head shapes the full suite runs: the CPU benchmark's (Hq 8, Hkv 2, D 64), then the H 32, D 128 (MHA and GQA 32/8). */
const SHAPES = [
  { queryHeads: 8, kvHeads: 2, headDim: 64 },
  { queryHeads: 32, kvHeads: 32, headDim: 128 },
  { queryHeads: 32, kvHeads: 8, headDim: 128 },
] as const;

/**
 * 28 layers with DELTA's defaults (P 16, K 64, L 8, full layers 0 1 2 14 22) at each requested
 * length; quick mode runs the CPU benchmark's head shape at 2048 keys (128 pages, so the subset is
 * active). On `--backend cpu` it returns no rows (the CPU suites cover DELTA there); on `gpu` it
 * fails loudly when no adapter exists.
 */
export const deltaStackSuite: BenchmarkSuite = {
  id: 'gpu-delta-stack',
  family: 'delta',
  description: "DELTA's model-level layer reuse on the GPU: one decode step through 28 layers (full 0 1, Δ 2 14 22, 23 sparse layers reusing the Δ-layers' pages) vs dense split-K decode in every layer; Hq 8 / Hkv 2 / D 64, then H 32 / D 128 (MHA, GQA 32/8).",
  async run(context) {
    if (context.backend !== 'gpu') return [];
    const backend = await createGpuBackend();
    const rows: BenchmarkRow[] = [];
    try {
      for (const keySeq of context.quick ? [2048] : context.seqLengths) {
        for (const shape of context.quick ? SHAPES.slice(0, 1) : SHAPES) {
          const result = await runDeltaStackDecode(backend, {
            ...shape,
            keySeq,
            seed: context.seed,
            repeats: context.quick ? 3 : Math.max(context.repeats, 9),
            ...(context.quick ? { warmupMs: 0 } : {}),
            ...(context.progress ? { progress: context.progress } : {}),
          });
          for (const row of deltaStackRows(result)) {
            rows.push(row);
            context.progress?.(`row ${JSON.stringify(row)}`);
          }
        }
      }
    } finally {
      backend.destroy();
    }
    return rows;
  },
};
