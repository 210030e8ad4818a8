import { describe, expect, it } from 'vitest';
import { GpuUnavailableError, createGpuContext, platformGpu } from './gpu-device.js';

/** A device class whose `onuncapturederror` setter rejects functions, like Dawn's Node binding. */
class DawnLikeDevice {
  readonly limits = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 32, maxComputeWorkgroupStorageSize: 49152 };
  readonly listeners: Array<[string, unknown]> = [];
  addEventListener(type: string, listener: unknown): void {
    this.listeners.push([type, listener]);
  }
  removeEventListener(type: string, listener: unknown): void {
    const at = this.listeners.findIndex(([t, l]) => t === type && l === listener);
    if (at >= 0) this.listeners.splice(at, 1);
  }
  get onuncapturederror(): unknown {
    return null;
  }
  set onuncapturederror(_value: unknown) {
    throw new TypeError('invalid value to onuncapturederror');
  }
}

function fakeGpu(device: object, requested: unknown[] = [], features: readonly string[] = []): GPU {
  const adapter = {
    features: new Set(features),
    limits: { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 32, maxComputeWorkgroupStorageSize: 49152, maxStorageBuffersPerShaderStage: 16 },
    info: { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H100 80GB HBM3' },
    requestDevice: async (descriptor: unknown) => {
      requested.push(descriptor);
      return device;
    },
  };
  return { requestAdapter: async () => adapter } as unknown as GPU;
}

describe('adapter detection', () => {
  it('reports a clear reason when the platform has no WebGPU adapter, or finds a working one', async () => {
    // On hosts where Dawn cannot load (e.g. Debian's libstdc++ is older than Dawn's build needs)
    // this must be a GpuUnavailableError naming the cause, never a crash or a CPU fallback.
    try {
      const gpu = await platformGpu();
      expect(typeof gpu.requestAdapter).toBe('function');
    } catch (error) {
      expect(error).toBeInstanceOf(GpuUnavailableError);
      expect((error as Error).message).toMatch(/webgpu|Dawn|navigator\.gpu/i);
      console.warn(`[backend-gpu] no WebGPU on this host: ${(error as Error).message}`);
    }
  });

  it('rejects with GpuUnavailableError when requestAdapter() returns null', async () => {
    const gpu = { requestAdapter: async () => null } as unknown as GPU;
    await expect(createGpuContext(gpu)).rejects.toThrow(GpuUnavailableError);
    await expect(createGpuContext(gpu)).rejects.toThrow(/no usable GPU adapter/);
  });

  it("asks for the adapter's full buffer and workgroup-memory limits and describes the adapter", async () => {
    const requested: unknown[] = [];
    const context = await createGpuContext(fakeGpu(new DawnLikeDevice(), requested));
    expect(requested[0]).toEqual({
      requiredLimits: { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 32, maxComputeWorkgroupStorageSize: 49152, maxStorageBuffersPerShaderStage: 10 },
    });
    expect(context.description).toBe('nvidia hopper (NVIDIA H100 80GB HBM3)');
    expect(context.maxBinding).toBe(2 ** 31);
    expect(context.maxWorkgroupBytes).toBe(49152);
    expect(context.timestamps).toBe(false);
  });

  it('asks for timestamp-query where the adapter offers it (for oneSubmission GPU times)', async () => {
    const requested: { requiredFeatures?: unknown }[] = [];
    const context = await createGpuContext(fakeGpu(new DawnLikeDevice(), requested, ['timestamp-query', 'shader-f16']));
    expect(requested[0]!.requiredFeatures).toEqual(['timestamp-query']);
    expect(context.timestamps).toBe(true);
  });
});

describe('onuncapturederror shim (done once at initialisation)', () => {
  it("makes Dawn's throwing setter assignable and forwards the handler as an event listener", async () => {
    const device = new DawnLikeDevice();
    const context = await createGpuContext(fakeGpu(device));
    const gpuDevice = context.device as unknown as DawnLikeDevice & { onuncapturederror: unknown };
    const handler = () => undefined;
    expect(() => {
      gpuDevice.onuncapturederror = handler;
    }).not.toThrow();
    expect(gpuDevice.onuncapturederror).toBe(handler);
    expect(device.listeners).toEqual([['uncapturederror', handler]]);
    const next = () => undefined;
    gpuDevice.onuncapturederror = next;
    expect(device.listeners).toEqual([['uncapturederror', next]]);
    gpuDevice.onuncapturederror = null;
    expect(device.listeners).toEqual([]);
    expect(gpuDevice.onuncapturederror).toBeNull();
  });

  it('leaves a device whose native property works untouched', async () => {
    class BrowserLikeDevice {
      onuncapturederror: unknown = null;
      readonly limits = new DawnLikeDevice().limits;
    }
    const device = new BrowserLikeDevice();
    await createGpuContext(fakeGpu(device));
    expect(Object.getOwnPropertyDescriptor(BrowserLikeDevice.prototype, 'onuncapturederror')).toBeUndefined();
    expect(device.onuncapturederror).toBeNull();
  });
});
