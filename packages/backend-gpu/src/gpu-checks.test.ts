import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gpuAttentionSuite } from './gpu-benchmarks.js';
import { gpuChecks } from './gpu-checks.js';
import { GpuUnavailableError, platformGpu } from './gpu-device.js';
import { gpuCheckSuites } from './testing.js';

// The backend's GPU-vs-CPU checks on every WebGPU this host has: Dawn in Node where an adapter
// exists (the H100 device; skipped with the reason on hosts whose libstdc++ is too old for
// Dawn), and headless Chromium's navigator.gpu (SwiftShader without a GPU), which CI runs.
gpuCheckSuites(gpuChecks, {
  title: 'GPU agrees with the CPU path (1e-4 relative)',
  module: fileURLToPath(new URL('./gpu-checks.ts', import.meta.url)),
  exportName: 'gpuChecks',
  backendModule: './index.ts',
});

let nodeGpuReason = '';
try {
  await platformGpu();
} catch (error) {
  if (!(error instanceof GpuUnavailableError)) throw error;
  nodeGpuReason = error.message;
}

describe('without an adapter in Node', () => {
  it.runIf(nodeGpuReason !== '')('the GPU benchmark suite fails loudly instead of reporting CPU numbers', async () => {
    await expect(gpuAttentionSuite.run({ quick: true, seqLengths: [512], repeats: 1, seed: 1, backend: 'gpu' })).rejects.toThrow(GpuUnavailableError);
  });
});
