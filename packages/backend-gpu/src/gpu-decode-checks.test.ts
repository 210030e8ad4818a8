import { fileURLToPath } from 'node:url';
import { gpuCheckSuites } from './testing.js';
import { gpuDecodeChecks } from './gpu-decode-checks.js';

// GPU decode (KV cache on the device, split-K kernel, dense and block top-k decoders) against
// the CPU decoders, in headless Chromium's WebGPU (SwiftShader without a GPU) and in Node's Dawn
// where an adapter exists.
gpuCheckSuites(gpuDecodeChecks, {
  title: 'GPU decode agrees with the CPU decoders (1e-4 relative)',
  module: fileURLToPath(new URL('./gpu-decode-checks.ts', import.meta.url)),
  exportName: 'gpuDecodeChecks',
  backendModule: './index.ts',
});
