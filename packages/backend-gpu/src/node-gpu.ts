/**
 * Node-only: Dawn's WebGPU through the `webgpu` npm package. Kept out of every kernel file and
 * loaded lazily by `platformGpu()`, so the browser path never imports it.
 */
import { GpuUnavailableError, recordToggles } from './gpu-device.js';

/**
 * Dawn instance flags Node uses by default: robustness off, as native Dawn users with trusted
 * shaders ship it (Chrome's Skia Graphite, ONNX Runtime's WebGPU EP in release builds). Every
 * kernel here indexes in bounds by construction, inputs are validated on the host first, and the
 * GPU checks run with this default on the device and with robustness on in Chromium. Robustness
 * (Dawn clamps every runtime index) costs about 17 % of dense attention on the H100. And
 * timestamps unquantised (Dawn rounds them to 2¹⁶ ns by default, coarser than a decode step's
 * kernels), so `oneSubmission`'s GPU time (`gpuMs`) resolves microseconds.
 */
export const DAWN_DEFAULT_FLAGS: readonly string[] = ['enable-dawn-features=disable_robustness', 'disable-dawn-features=timestamp_quantization'];

const cached = new Map<string, GPU>();

/**
 * Dawn's `GPU` object for this process (created once per flag set). Throws
 * {@link GpuUnavailableError} when the native module cannot load, e.g. on hosts whose libstdc++ is
 * older than Dawn's build needs. `flags` are Dawn instance options (default
 * {@link DAWN_DEFAULT_FLAGS}; pass `[]` for Dawn's robust default).
 */
export async function nodeGpu(flags: readonly string[] = DAWN_DEFAULT_FLAGS): Promise<GPU> {
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
  recordToggles(gpu, flags.flatMap((flag) => (flag.startsWith('enable-dawn-features=') ? flag.slice('enable-dawn-features='.length).split(',') : [])));
  cached.set(key, gpu);
  return gpu;
}
