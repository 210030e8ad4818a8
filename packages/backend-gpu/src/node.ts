/**
 * `@sparse-attn/backend-gpu/node`: the Node entry. Acquires Dawn's WebGPU adapter through the
 * `webgpu` package and builds the same backend the browser entry builds from `navigator.gpu`.
 */
import { createGpuBackend, type GpuBackend } from './gpu-backend.js';
import { createGpuContext } from './gpu-device.js';
import { nodeGpu } from './node-gpu.js';

export { nodeGpu } from './node-gpu.js';

/**
 * A GPU backend on Dawn (Node). Rejects with `GpuUnavailableError` when Dawn or an adapter is
 * missing. `dawnFlags` are passed to Dawn's instance (see `nodeGpu`).
 */
export async function createNodeGpuBackend(dawnFlags: readonly string[] = []): Promise<GpuBackend> {
  const gpu = await nodeGpu(dawnFlags);
  const toggles = dawnFlags.flatMap((flag) => (flag.startsWith('enable-dawn-features=') ? flag.slice('enable-dawn-features='.length).split(',') : []));
  return createGpuBackend({ context: { ...(await createGpuContext(gpu)), toggles } });
}
