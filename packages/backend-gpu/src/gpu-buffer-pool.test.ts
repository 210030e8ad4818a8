import { describe, expect, it } from 'vitest';
import { GpuBackend } from './gpu-backend.js';
import { GpuBufferPool } from './gpu-buffer-pool.js';

describe('GpuBufferPool (no GPU needed)', () => {
  it('hands back the buffer taken under a name while it is large enough, replaces it when not, frees all', () => {
    const created: { size: number; destroyed: boolean }[] = [];
    const device = {
      createBuffer: ({ size }: { size: number }) => {
        const buffer = { size, destroyed: false, destroy() { this.destroyed = true; } };
        created.push(buffer);
        return buffer;
      },
    } as unknown as ConstructorParameters<typeof GpuBufferPool>[0];
    const pool = new GpuBufferPool(device);
    const a = pool.take('q', 100);
    expect(pool.take('q', 64)).toBe(a);
    expect(pool.take('q', 100)).toBe(a);
    const b = pool.take('k', 100);
    expect(b).not.toBe(a);
    const bigger = pool.take('q', 200);
    expect(bigger).not.toBe(a);
    expect(created[0]!.destroyed).toBe(true);
    expect(bigger.size).toBe(200);
    expect(pool.bytes).toBe(300);
    pool.destroy();
    expect(created.every((c) => c.destroyed)).toBe(true);
  });
});

describe('GpuBackend kept pools (no GPU needed)', () => {
  it('withPool gives the kept pool back when its callback throws, and a concurrent call gets a fresh one', async () => {
    const device = { createBuffer: ({ size }: { size: number }) => ({ size, destroy() {} }) };
    const backend = new GpuBackend({ device, maxBinding: 1 << 20, maxWorkgroupBytes: 16384, description: 'fake' } as unknown as ConstructorParameters<typeof GpuBackend>[0]);
    let first: GpuBufferPool | undefined;
    await expect(backend.withPool('m', async (pool) => {
      first = pool;
      // Borrowed while in use: a fresh pool, not the kept one.
      await backend.withPool('m', async (other) => expect(other).not.toBe(pool));
      throw new Error('boom');
    })).rejects.toThrow('boom');
    // Returned despite the throw: the next call borrows the same kept pool.
    await backend.withPool('m', async (pool) => expect(pool).toBe(first));
  });
});
