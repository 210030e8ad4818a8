import { describe, expect, it } from 'vitest';
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
