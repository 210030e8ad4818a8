import { describe, expect, it } from 'vitest';
import { ConfigError, NumericError, ShapeError, tensor } from '@sparse-attn/core';
import type { GpuBackend } from './gpu-backend.js';
import { completeWindowCount, createGpuWindowDecoder, GpuWindowStore } from './gpu-window-decoder.js';

interface FakeBuffer {
  readonly size: number;
  destroyed: boolean;
  destroy(): void;
}

/** A device that records buffer creation and GPU-side copies (enough for the store and the cache's bookkeeping). */
function fakeBackend(maxBinding = 1 << 30) {
  const created: FakeBuffer[] = [];
  const copies: { from: FakeBuffer; to: FakeBuffer; bytes: number }[] = [];
  const writes: number[] = [];
  let submits = 0;
  const device = {
    createBuffer({ size }: { size: number }): FakeBuffer {
      const buffer: FakeBuffer = { size, destroyed: false, destroy: () => void (buffer.destroyed = true) };
      created.push(buffer);
      return buffer;
    },
    createCommandEncoder: () => ({
      copyBufferToBuffer: (from: FakeBuffer, _at: number, to: FakeBuffer, _to: number, bytes: number) => void copies.push({ from, to, bytes }),
      finish: () => ({}),
    }),
    queue: {
      submit: () => void submits++,
      writeBuffer: (_buffer: FakeBuffer, _offset: number, data: ArrayBufferView) => void writes.push(data.byteLength),
    },
  };
  const backend = { context: { device, maxBinding, maxWorkgroupBytes: 32768 } } as unknown as GpuBackend;
  return { backend, created, copies, writes, submits: () => submits };
}

describe('the GPU window decoder (no GPU needed)', () => {
  it('the window store doubles (copying only the stored windows on the GPU) and keeps its buffers across reset', () => {
    const { backend, created, copies } = fakeBackend();
    const store = new GpuWindowStore(backend, 2, { means: 8, bounds: 16, values: 12 }, 2);
    // means, bounds and values for 2 slots.
    expect(created.length).toBe(6);
    expect(created.map((b) => b.size)).toEqual([64, 64, 128, 128, 96, 96]);
    store.reserve(2);
    expect(created.length).toBe(6);
    store.commit(2);
    // 2 → 8 windows in one reservation: one new set of buffers, not one per doubling.
    store.reserve(7);
    expect(store.windowCapacity).toBe(8);
    expect(created.length).toBe(12);
    expect(created.slice(0, 6).every((b) => b.destroyed)).toBe(true);
    // The 2 stored windows of every slot and tensor: 2 · 8, 2 · 16, 2 · 12 floats.
    expect(copies.map((c) => c.bytes)).toEqual([64, 64, 128, 128, 96, 96]);
    const view = store.view();
    expect(view.first).toBe(2);
    expect(view.buffers.means.length).toBe(2);
    expect(view.buffers.bounds.length).toBe(2);
    expect(view.buffers.values.length).toBe(2);
    store.reset();
    expect(store.view().first).toBe(0);
    store.reserve(8);
    expect(created.length).toBe(12);
    // Growing 1000-fold costs ~log2(1000) reallocations.
    let reallocations = 0;
    for (let w = 9; w <= 8000; w++) {
      const before = created.length;
      store.reserve(w);
      store.commit(w);
      if (created.length > before) reallocations++;
    }
    expect(reallocations).toBe(10);
    store.destroy();
    expect(created.every((b) => b.destroyed)).toBe(true);
  });

  it('leaves out the arrays a method does not keep, and throws ConfigError above a binding before allocating', () => {
    const { backend, created } = fakeBackend(4096);
    const store = new GpuWindowStore(backend, 1, { means: 16, bounds: 0, values: 0 }, 4);
    expect(store.view().buffers.bounds).toEqual([]);
    expect(store.view().buffers.values).toEqual([]);
    expect(created.length).toBe(1);
    // 64 windows of 16 floats = 4096 bytes fit; 65 need a capacity of 128 windows (8 KiB).
    store.reserve(64);
    expect(() => store.check(65)).toThrow(ConfigError);
    const before = created.length;
    expect(() => store.reserve(65)).toThrow(ConfigError);
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
    const { backend, created, writes } = fakeBackend();
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
    expect(created.length).toBe(allocated);
    // The 3 new rows of k and of v (3 · 8 floats each), nothing else.
    expect(writes).toEqual([96, 96]);
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
