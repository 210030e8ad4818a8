/**
 * Adapter and device acquisition, runtime-neutral: it takes any `GPU` object (`navigator.gpu` in
 * a browser, the `webgpu` package's `create()` in Node via `./node.js`), asks for the adapter's
 * real buffer and workgroup-memory limits (the spec defaults cap storage bindings at 128 MiB and
 * workgroup memory at 16 KiB) and describes the adapter for every result's `backend.device`.
 */
import { isGpuJsFacade } from './gpu-js-bridge.js';

/** A device with what the kernels need to know about it. */
export interface GpuContext {
  readonly device: GPUDevice;
  /** The adapter the device came from (shared with gpu.js, which asks for it). */
  readonly adapter?: GPUAdapter;
  /** Human-readable adapter description recorded in every result (`vendor architecture (description)`). */
  readonly description: string;
  /** Non-default Dawn toggles the device runs with (e.g. `disable_robustness`), recorded in results. */
  readonly toggles?: readonly string[];
  /** Largest buffer binding the device accepts, in bytes. */
  readonly maxBinding: number;
  /** Workgroup memory per workgroup, in bytes. */
  readonly maxWorkgroupBytes: number;
  /**
   * Whether the device has `timestamp-query` (requested wherever the adapter offers it): then
   * `GpuBackend.oneSubmission` also reports the GPU time of its passes. Dawn quantises timestamps
   * (to 2¹⁶ ns in Node, 100 µs in Chrome) unless its `timestamp_quantization` toggle is disabled,
   * as Node's default Dawn flags do (`DAWN_DEFAULT_FLAGS`, `node-gpu.ts`).
   */
  readonly timestamps: boolean;
}

/** Thrown when no adapter can be had; the message says why, so callers can skip with it. */
export class GpuUnavailableError extends Error {
  override readonly name = 'GpuUnavailableError';
}

const togglesByGpu = new WeakMap<object, readonly string[]>();

/** Notes the non-default Dawn toggles a `GPU` object was created with (recorded in every result). */
export function recordToggles(gpu: GPU, toggles: readonly string[]): void {
  if (toggles.length > 0) togglesByGpu.set(gpu, toggles);
}

/** Requests a high-performance adapter from `gpu` and a device with the adapter's full limits. */
export async function createGpuContext(gpu: GPU): Promise<GpuContext> {
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new GpuUnavailableError('WebGPU is present but requestAdapter() returned null (no usable GPU adapter)');
  const limits = adapter.limits;
  const timestamps = adapter.features.has('timestamp-query');
  const device = await adapter.requestDevice({
    ...(timestamps ? { requiredFeatures: ['timestamp-query'] as GPUFeatureName[] } : {}),
    requiredLimits: {
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: Math.min(limits.maxStorageBuffersPerShaderStage, 10),
    },
  });
  makeUncapturedErrorAssignable(device);
  const info = adapter.info;
  const description = [info.vendor, info.architecture, info.device, info.description ? `(${info.description})` : ''].filter((x) => x).join(' ') || 'unknown adapter';
  const toggles = togglesByGpu.get(gpu);
  return {
    device,
    adapter,
    description,
    ...(toggles ? { toggles } : {}),
    maxBinding: Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize),
    maxWorkgroupBytes: device.limits.maxComputeWorkgroupStorageSize,
    timestamps,
  };
}

/**
 * The platform's `GPU` object: `navigator.gpu` where it exists (browsers, Deno), otherwise
 * Dawn through the `webgpu` package in Node (loaded lazily, so browser bundles never load it).
 * Throws {@link GpuUnavailableError} with the reason when neither works.
 */
export async function platformGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu && !isGpuJsFacade(nav.gpu)) return nav.gpu;
  const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
  if (!isNode) throw new GpuUnavailableError('navigator.gpu is missing: this runtime has no WebGPU');
  const node = await import('./node-gpu.js');
  return node.nodeGpu();
}

const patchedPrototypes = new WeakSet<object>();
const handlers = new WeakMap<object, unknown>();

/**
 * Dawn's Node binding throws on `device.onuncapturederror = fn` ("invalid value to
 * onuncapturederror"), which gpu.js's webgpu mode (and other code written for browsers) does when
 * it acquires a device. Done once per device class, at initialisation: if the assignment throws,
 * the property is replaced on the prototype by an accessor that keeps the handler and, where the
 * binding accepts it, listens for `uncapturederror` with it. Browsers keep their native
 * property (the assignment works there, so nothing is patched).
 */
function makeUncapturedErrorAssignable(device: GPUDevice): void {
  const proto = Object.getPrototypeOf(device) as object;
  if (patchedPrototypes.has(proto)) return;
  try {
    const probe = () => undefined;
    device.onuncapturederror = probe;
    if (device.onuncapturederror === probe) {
      device.onuncapturederror = null;
      return;
    }
  } catch {
    // Falls through to the accessor below.
  }
  patchedPrototypes.add(proto);
  Object.defineProperty(proto, 'onuncapturederror', {
    configurable: true,
    get(this: object) {
      return handlers.get(this) ?? null;
    },
    set(this: GPUDevice, handler: unknown) {
      const previous = handlers.get(this);
      handlers.set(this, handler);
      // Forward to the event where the binding accepts a plain function listener; Dawn's Node
      // binding (webgpu 0.2.9) rejects one ("no overload matched for addEventListener"), and
      // there the handler is only kept: this package reports its own errors through error scopes.
      const target = this as unknown as { addEventListener?: (t: string, f: unknown) => void; removeEventListener?: (t: string, f: unknown) => void };
      try {
        if (typeof previous === 'function') target.removeEventListener?.('uncapturederror', previous);
        if (typeof handler === 'function') target.addEventListener?.('uncapturederror', handler);
      } catch {
        // Kept, not forwarded (see above).
      }
    },
  });
}
