/**
 * gpu.js on the backend's own WebGPU device, for the kernels that fit gpu.js's model (one output
 * element per thread, no workgroup memory): here the block pooling of the block top-k pipeline.
 *
 * gpu.js 2.24's `webgpu` mode acquires a module-wide device from `navigator.gpu` on its first
 * kernel call. To make it use *our* device (so its outputs are plain `GPUBuffer`s our WGSL kernels
 * bind directly, with no readback between kernels), {@link attachGpuJs} presents gpu.js a
 * `navigator.gpu` whose adapter hands out the backend's device, and has gpu.js acquire it at once.
 * In Node (no `navigator.gpu`) that facade stays installed and always hands out the device of the
 * backend attached last; in a browser the native `navigator.gpu` is shadowed only while gpu.js
 * acquires. gpu.js assigns `device.onuncapturederror`, which Dawn's binding rejects: the shim for
 * that is installed earlier, when the backend acquires its device (`createGpuContext`).
 */

/** The parts of gpu.js this package uses (its typings do not cover the webgpu mode). */
interface GpuJsModule {
  readonly GPU: new (settings: { mode: 'webgpu' }) => GpuJsInstance;
  readonly WebGPUContext: { acquire(): Promise<GpuJsContext> };
  readonly WebGPUBufferResult: new (settings: { buffer: GPUBuffer; output: number[]; context: GpuJsContext; kernel: unknown }) => GpuJsBuffer;
}

interface GpuJsContext {
  readonly adapter: unknown;
  readonly device: GPUDevice;
}

interface GpuJsInstance {
  createKernel(source: (...args: never[]) => number, settings: Record<string, unknown>): (...args: unknown[]) => Promise<GpuJsBuffer>;
  destroy(): void;
}

/** A gpu.js pipeline result: a GPU-resident buffer. */
export interface GpuJsBuffer {
  readonly buffer: GPUBuffer;
  delete(): void;
}

/** gpu.js bound to the backend's device. */
export interface GpuJsBridge {
  /** The gpu.js version that runs, recorded in results. */
  readonly version: string;
  readonly gpu: GpuJsInstance;
  /** Wraps one of our buffers as a gpu.js pipeline argument of logical shape `output` (x fastest). */
  wrap(buffer: GPUBuffer, output: number[]): GpuJsBuffer;
}

const FACADE = Symbol.for('@sparse-attn/backend-gpu:gpu.js-facade');

let current: { adapter: GPUAdapter; device: GPUDevice } | undefined;

/** True for the `navigator.gpu` stand-in this module installs (so `platformGpu` skips it). */
export function isGpuJsFacade(gpu: unknown): boolean {
  return typeof gpu === 'object' && gpu !== null && FACADE in gpu;
}

function facade(): GPU {
  const adapter = () => {
    if (!current) return null;
    const { adapter: real, device } = current;
    return { limits: real.limits, features: real.features, info: real.info, requestDevice: async () => device };
  };
  return { [FACADE]: true, requestAdapter: async () => adapter(), getPreferredCanvasFormat: () => 'bgra8unorm' } as unknown as GPU;
}

/**
 * Loads gpu.js and makes it run on `device`. Rejects with the reason when gpu.js cannot load or
 * already holds another device (then callers use their WGSL kernel and record why).
 */
export async function attachGpuJs(adapter: GPUAdapter, device: GPUDevice): Promise<GpuJsBridge> {
  const loaded = (await import('gpu.js')) as unknown as GpuJsModule & { default?: GpuJsModule };
  const gpuJs: GpuJsModule = loaded.WebGPUContext ? loaded : loaded.default!;
  current = { adapter, device };
  const global = globalThis as { navigator?: { gpu?: GPU } };
  let restore: (() => void) | undefined;
  if (!global.navigator) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: facade() }, configurable: true, writable: true });
  } else if (!global.navigator.gpu) {
    Object.defineProperty(global.navigator, 'gpu', { value: facade(), configurable: true, writable: true });
  } else if (!isGpuJsFacade(global.navigator.gpu)) {
    const navigator = global.navigator;
    Object.defineProperty(navigator, 'gpu', { value: facade(), configurable: true, writable: true });
    restore = () => delete (navigator as { gpu?: GPU }).gpu;
  }
  let context: GpuJsContext;
  try {
    context = await gpuJs.WebGPUContext.acquire();
  } finally {
    restore?.();
  }
  if (context.device !== device) throw new Error('gpu.js already holds another WebGPU device in this process');
  return {
    version: gpuJsVersion,
    gpu: new gpuJs.GPU({ mode: 'webgpu' }),
    wrap: (buffer, output) => new gpuJs.WebGPUBufferResult({ buffer, output, context, kernel: null }),
  };
}

/** The gpu.js version this package is built against (package.json pins it exactly). */
export const gpuJsVersion = '2.24.1';
