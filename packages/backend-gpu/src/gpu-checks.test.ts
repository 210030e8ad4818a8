import { afterAll, describe, expect, it } from 'vitest';
import { createGpuBackend, type GpuBackend } from './gpu-backend.js';
import { gpuAttentionSuite } from './gpu-benchmarks.js';
import { gpuChecks } from './gpu-checks.js';
import { GpuUnavailableError } from './gpu-device.js';

// The GPU checks need a WebGPU adapter. Where none exists (CI, or Debian hosts whose libstdc++ is
// too old for Dawn) the suite is skipped with the reason in its title; on a GPU machine the same
// checks run here, or without vitest through `node gpu-check.js` (see the README).
let backend: GpuBackend | undefined;
let reason = '';
try {
  backend = await createGpuBackend();
} catch (error) {
  if (!(error instanceof GpuUnavailableError)) throw error;
  reason = error.message;
  console.warn(`[backend-gpu] GPU checks skipped: ${reason}`);
}

afterAll(() => backend?.destroy());

describe.skipIf(!backend)(`GPU agrees with the CPU path (1e-4 relative)${backend ? ` on ${backend.info.device}` : ` — skipped: ${reason}`}`, () => {
  for (const check of gpuChecks) {
    it(check.name, async () => {
      await check.run(backend!);
    }, 120_000);
  }
});

describe('without an adapter', () => {
  it.runIf(!backend)('the GPU benchmark suite fails loudly instead of reporting CPU numbers', async () => {
    await expect(gpuAttentionSuite.run({ quick: true, seqLengths: [512], repeats: 1, seed: 1, backend: 'gpu' })).rejects.toThrow(GpuUnavailableError);
  });
});
