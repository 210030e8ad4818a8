import { describe, expect, it } from 'vitest';
import { ConfigError, NumericError, ShapeError, tensor } from '@sparse-attn/core';
import type { GpuBackend } from './gpu-backend.js';
import { completeWindowCount, createGpuWindowDecoder, GpuWindowStore } from './gpu-window-decoder.js';

interface FakeBuffer {
  readonly size: number;
  readonly data: Uint8Array;
  destroyed: boolean;
  destroy(): void;
}

/** A device that keeps buffer contents and runs GPU-side copies and writes (enough for the store and the cache's bookkeeping). */
function fakeBackend(maxBinding = 1 << 30) {
  const created: FakeBuffer[] = [];
  const copies: { from: FakeBuffer; to: FakeBuffer; bytes: number }[] = [];
  const writes: number[] = [];
  let submits = 0;
  let dispatches = 0;
  const device = {
    createBuffer({ size }: { size: number }): FakeBuffer {
      const buffer: FakeBuffer = { size, data: new Uint8Array(size), destroyed: false, destroy: () => void (buffer.destroyed = true) };
      created.push(buffer);
      return buffer;
    },
    createShaderModule: () => ({}),
    createComputePipeline: () => ({ getBindGroupLayout: () => ({}) }),
    createBindGroup: () => ({}),
    createCommandEncoder: () => ({
      // The cache's append kernel: recorded, not run (these tests follow the window store's contents only).
      beginComputePass: () => ({ setPipeline() {}, setBindGroup() {}, dispatchWorkgroups: () => void dispatches++, end() {} }),
      copyBufferToBuffer: (from: FakeBuffer, at: number, to: FakeBuffer, toAt: number, bytes: number) => {
        if (from.destroyed || to.destroyed) throw new Error('copy with a destroyed buffer');
        to.data.set(from.data.subarray(at, at + bytes), toAt);
        copies.push({ from, to, bytes });
      },
      finish: () => ({}),
    }),
    queue: {
      submit: () => void submits++,
      writeBuffer: (buffer: FakeBuffer, offset: number, data: ArrayBufferView) => {
        buffer.data.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
        writes.push(data.byteLength);
      },
    },
  };
  const backend = { context: { device, maxBinding, maxWorkgroupBytes: 32768 } } as unknown as GpuBackend;
  return { backend, created, copies, writes, submits: () => submits, dispatches: () => dispatches };
}

/** A pooling kernel's writes: window w of slot s (local to its chunk) holds `floats` copies of 1000·(slot0 + s) + w, at `[slot][windows][floats]`. */
function poolWindows(buffers: readonly GPUBuffer[], groups: readonly { slot0: number; slots: number }[], floats: number, first: number, windows: number): void {
  for (const [c, g] of groups.entries()) {
    const data = new Float32Array((buffers[c] as unknown as FakeBuffer).data.buffer);
    for (let s = 0; s < g.slots; s++) for (let w = first; w < windows; w++) data.fill(1000 * (g.slot0 + s) + w, (s * windows + w) * floats, (s * windows + w + 1) * floats);
  }
}

/** Throws unless the buffers hold every slot's windows `0 … windows` laid out `[slot][windows][floats]`. */
function expectLayout(buffers: readonly GPUBuffer[], groups: readonly { slot0: number; slots: number }[], floats: number, windows: number): void {
  for (const [c, g] of groups.entries()) {
    const data = new Float32Array((buffers[c] as unknown as FakeBuffer).data.buffer);
    for (let s = 0; s < g.slots; s++) for (let w = 0; w < windows; w++) expect(data[(s * windows + w) * floats + floats - 1]).toBe(1000 * (g.slot0 + s) + w);
  }
}

describe('the GPU window decoder (no GPU needed)', () => {
  it('the window store keeps each chunk\'s windows laid out [slot][windows][floats] for the coming step, moving only the stored windows on the GPU', () => {
    const { backend, created, copies } = fakeBackend();
    const one = [{ slot0: 0, slots: 3 }];
    const store = new GpuWindowStore(backend, { means: 8, bounds: 16, values: 0 }, 2, one);
    // means and bounds for one chunk of 3 slots (values are not kept).
    expect(created.map((b) => b.size)).toEqual([3 * 2 * 8 * 4, 3 * 2 * 16 * 4]);
    let kept = store.prepare(2, one);
    expect(kept.first).toBe(0);
    expect(kept.buffers.values).toEqual([]);
    // Nothing stored yet: the buffers take the layout as they are.
    expect(created.length).toBe(2);
    poolWindows(kept.buffers.means, one, 8, 0, 2);
    poolWindows(kept.buffers.bounds, one, 16, 0, 2);
    store.commit(2);
    // 2 → 7 windows: a second set of buffers (doubled to 8 windows), the 2 stored windows of every slot copied.
    kept = store.prepare(7, one);
    expect(store.windowCapacity).toBe(8);
    expect(kept.first).toBe(2);
    expect(copies.map((c) => c.bytes)).toEqual([64, 64, 64, 128, 128, 128]);
    poolWindows(kept.buffers.means, one, 8, 2, 7);
    store.commit(7);
    // Steps that complete no window keep the layout and copy nothing.
    expect(store.prepare(7, one).first).toBe(7);
    expect(copies.length).toBe(6);
    kept = store.prepare(8, one);
    expect(kept.first).toBe(7);
    poolWindows(kept.buffers.means, one, 8, 7, 8);
    store.commit(8);
    expectLayout(store.prepare(8, one).buffers.means, one, 8, 8);
    // Growing 8 → 8000 windows: the two sets grow by doubling, ~2 · log2(1000) allocations.
    const before = created.length;
    for (let w = 9; w <= 8000; w++) {
      kept = store.prepare(w, one);
      poolWindows(kept.buffers.means, one, 8, kept.first, w);
      store.commit(w);
    }
    expect(created.length - before).toBeLessThanOrEqual(2 * 2 * 11);
    expectLayout(kept.buffers.means, one, 8, 8000);
    // A regrouped cache (two chunks of 2 and 1 slots) gets its windows in the new chunks.
    const two = [{ slot0: 0, slots: 2 }, { slot0: 2, slots: 1 }];
    kept = store.prepare(8001, two);
    expect(kept.buffers.means.length).toBe(2);
    poolWindows(kept.buffers.means, two, 8, 8000, 8001);
    expectLayout(kept.buffers.means, two, 8, 8001);
    store.reset();
    expect(store.prepare(4, two).first).toBe(0);
    store.destroy();
    expect(created.every((b) => b.destroyed)).toBe(true);
  });

  it('leaves out the arrays a method does not keep, and throws ConfigError above a binding before allocating', () => {
    const { backend, created } = fakeBackend(4096);
    const one = [{ slot0: 0, slots: 1 }];
    const store = new GpuWindowStore(backend, { means: 16, bounds: 0, values: 0 }, 4, one);
    expect(store.prepare(0, one).buffers.bounds).toEqual([]);
    expect(created.length).toBe(1);
    // 64 windows of 16 floats = 4096 bytes fit; 65 need a capacity of 128 windows (8 KiB).
    store.prepare(64, one);
    expect(() => store.check(64, 2)).toThrow(ConfigError);
    expect(() => store.check(65, 1)).toThrow(ConfigError);
    const before = created.length;
    expect(() => store.prepare(65, one)).toThrow(ConfigError);
    expect(created.length).toBe(before);
  });

  it('bad steps and plans throw their typed errors before any GPU work', async () => {
    const { backend, created, submits } = fakeBackend();
    const shape = { batch: 1, queryHeads: 2, kvHeads: 1, headDim: 8 };
    const decoder = createGpuWindowDecoder(backend, shape, { length: 8, stride: 8, floats: { means: 8 } }, () => {
      throw new ConfigError('plan rejects the step');
    });
    const allocated = created.length;
    await expect(decoder.step({ q: tensor([1, 2, 1, 8]), k: tensor([1, 1, 2, 8]), v: tensor([1, 1, 2, 8]) })).rejects.toThrow(ShapeError);
    await expect(decoder.step({ q: tensor([1, 2, 1, 8], new Float32Array(16).fill(Number.NaN)), k: tensor([1, 1, 1, 8]), v: tensor([1, 1, 1, 8]) })).rejects.toThrow(NumericError);
    await expect(decoder.step({ q: tensor([1, 2, 1, 8]), k: tensor([1, 1, 1, 8]), v: tensor([1, 1, 1, 8]) })).rejects.toThrow(ConfigError);
    expect(created.length).toBe(allocated);
    expect(submits()).toBe(0);
    expect(decoder.length).toBe(0);
  });

  it('appendContext checks its tensors before caching them, and uploads only their rows', () => {
    const { backend, created, writes, dispatches } = fakeBackend();
    const shape = { batch: 1, queryHeads: 2, kvHeads: 1, headDim: 8 };
    const plan = () => {
      throw new ConfigError('not stepped here');
    };
    const decoder = createGpuWindowDecoder(backend, shape, { length: 4, stride: 4, floats: { means: 8 } }, plan, { initialCapacity: 4 });
    expect(() => decoder.appendContext(tensor([1, 1, 3, 8], new Float32Array(24).fill(Number.POSITIVE_INFINITY)), tensor([1, 1, 3, 8]))).toThrow(NumericError);
    expect(() => decoder.appendContext(tensor([1, 2, 3, 8]), tensor([1, 2, 3, 8]))).toThrow(ShapeError);
    expect(decoder.length).toBe(0);
    const allocated = created.length;
    decoder.appendContext(tensor([1, 1, 3, 8]), tensor([1, 1, 3, 8]));
    expect(decoder.length).toBe(3);
    // The first short append makes its staging buffers (k, v) and the two dispatches' uniforms, nothing of the cache's size.
    expect(created.slice(allocated).map((b) => b.size)).toEqual([96, 96, 32, 32]);
    // The 3 new rows of k and of v (3 · 8 floats each) and each append dispatch's 8 parameters, nothing else.
    expect(writes).toEqual([96, 32, 96, 32]);
    expect(dispatches()).toBe(2);
    // A later one reuses them.
    decoder.appendContext(tensor([1, 1, 1, 8]), tensor([1, 1, 1, 8]));
    expect(created.length).toBe(allocated + 4);
    expect(decoder.length).toBe(4);
    // A family's own checks replace the default ones.
    const checked: number[] = [];
    const custom = createGpuWindowDecoder(backend, shape, { length: 4, stride: 4, floats: { means: 8 } }, plan, { validateContext: (k) => void checked.push(k.shape[2]!) });
    custom.appendContext(tensor([1, 1, 5, 8]), tensor([1, 1, 5, 8]));
    expect(checked).toEqual([5]);
    expect(custom.length).toBe(5);
  });

  it('counts complete windows as the CPU decoders do', () => {
    expect(completeWindowCount(0, 4, 4)).toBe(0);
    expect(completeWindowCount(3, 4, 4)).toBe(0);
    expect(completeWindowCount(4, 4, 4)).toBe(1);
    expect(completeWindowCount(11, 4, 4)).toBe(2);
    // Overlapping windows (NSA's compression: length 32, stride 16).
    expect(completeWindowCount(47, 32, 16)).toBe(1);
    expect(completeWindowCount(48, 32, 16)).toBe(2);
  });
});
