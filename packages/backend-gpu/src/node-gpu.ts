/**
 * Node-only: Dawn's WebGPU through the `webgpu` npm package. Kept out of every kernel file and
 * loaded lazily by `platformGpu()`, so the browser path never imports it.
 */
import { GpuUnavailableError } from './gpu-device.js';

const cached = new Map<string, GPU>();

/**
 * Dawn's `GPU` object for this process (created once per flag set). Throws
 * {@link GpuUnavailableError} when the native module cannot load, e.g. on hosts whose libstdc++ is
 * older than Dawn's build needs. `flags` are Dawn instance options such as
 * `enable-dawn-features=disable_robustness` (an experiment knob of the benchmark; default none).
 */
export async function nodeGpu(flags: readonly string[] = []): Promise<GPU> {
  const key = flags.join(' ');
  const found = cached.get(key);
  if (found) return found;
  let module: { create: (options: string[]) => GPU; globals: object };
  try {
    module = (await import('webgpu')) as never;
  } catch (error) {
    throw new GpuUnavailableError(`the 'webgpu' package (Dawn) could not load on this host: ${(error as Error).message.split('\n')[0]}`);
  }
  // GPUBufferUsage, GPUMapMode, … for code (gpu.js among it) that expects the browser globals.
  for (const [name, value] of Object.entries(module.globals)) {
    if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  }
  const gpu = module.create([...flags]);
  cached.set(key, gpu);
  return gpu;
}
