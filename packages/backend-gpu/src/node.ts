/**
 * `@sparse-attn/backend-gpu/node`: the Node entry. Acquires Dawn's WebGPU adapter through the
 * `webgpu` package and builds the same backend the browser entry builds from `navigator.gpu`.
 */
import { createGpuBackend, type GpuBackend } from './gpu-backend.js';
import { createGpuContext } from './gpu-device.js';
import { DAWN_DEFAULT_FLAGS, nodeGpu } from './node-gpu.js';

export { DAWN_DEFAULT_FLAGS, nodeGpu } from './node-gpu.js';

/** Options of {@link createNodeGpuBackend}. */
export interface NodeGpuBackendOptions {
  /** Keep Dawn's robustness transform (every runtime index clamped; what browsers run). Default false. */
  readonly robust?: boolean;
  /** Dawn instance flags, replacing the default ones entirely (see `nodeGpu`). */
  readonly dawnFlags?: readonly string[];
}

/**
 * A GPU backend on Dawn (Node). Rejects with `GpuUnavailableError` when Dawn or an adapter is
 * missing. Robustness is off unless `robust`; timestamps are unquantised either way (see
 * `DAWN_DEFAULT_FLAGS`); results record the robustness toggle.
 */
export async function createNodeGpuBackend(options: NodeGpuBackendOptions = {}): Promise<GpuBackend> {
  const gpu = await nodeGpu(options.dawnFlags ?? (options.robust ? DAWN_DEFAULT_FLAGS.filter((flag) => !flag.includes('disable_robustness')) : DAWN_DEFAULT_FLAGS));
  return createGpuBackend({ context: await createGpuContext(gpu) });
}
