/**
 * `@sparse-attn/backend-gpu/node`: the Node entry. Acquires Dawn's WebGPU adapter through the
 * `webgpu` package and builds the same backend the browser entry builds from `navigator.gpu`.
 */
import { createGpuBackend, type GpuBackend } from './gpu-backend.js';
import { nodeGpu } from './node-gpu.js';

export { nodeGpu } from './node-gpu.js';

/**
 * A GPU backend on Dawn (Node). Rejects with `GpuUnavailableError` when Dawn or an adapter is
 * missing. `dawnFlags` are passed to Dawn's instance (see `nodeGpu`).
 */
export async function createNodeGpuBackend(dawnFlags: readonly string[] = []): Promise<GpuBackend> {
  return createGpuBackend({ gpu: await nodeGpu(dawnFlags) });
}
