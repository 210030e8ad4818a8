import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SIMD_KERNELS_SOURCE_SHA256, SIMD_KERNELS_WASM_BASE64 } from './simd-kernels.generated.js';
import { decodeBase64, resolveKernel, simdKernels } from './simd-runtime.js';

describe('simd kernels module', () => {
  it('was generated from the committed AssemblyScript source (run `node scripts/build-wasm.mjs` after editing it)', () => {
    const source = readFileSync(new URL('../../scripts/wasm/simd-kernels.ts', import.meta.url), 'utf8');
    expect(createHash('sha256').update(source).digest('hex')).toBe(SIMD_KERNELS_SOURCE_SHA256);
  });

  it('decodes base64 exactly like Buffer', () => {
    expect(Buffer.from(decodeBase64(SIMD_KERNELS_WASM_BASE64)).equals(Buffer.from(SIMD_KERNELS_WASM_BASE64, 'base64'))).toBe(true);
    for (const text of ['', 'QQ==', 'QUI=', 'QUJD', 'AP8Q/w==']) {
      expect(Array.from(decodeBase64(text))).toEqual(Array.from(Buffer.from(text, 'base64')));
    }
  });

  it('loads synchronously in Node 20 and exposes every kernel', () => {
    const arena = simdKernels();
    expect(arena).toBeDefined();
    expect(typeof arena!.kernels.flashRows).toBe('function');
    expect(typeof arena!.kernels.attendRows).toBe('function');
    expect(typeof arena!.kernels.gemmPacked).toBe('function');
    expect(resolveKernel('auto').arena).toBe(arena);
    expect(resolveKernel('js')).toEqual({});
  });

  it('grows its memory and keeps earlier allocations intact', () => {
    const arena = simdKernels()!;
    arena.reset();
    const first = arena.alloc(16);
    arena.f32[first >> 2] = 42;
    const big = arena.alloc(5_000_000);
    expect(big % 64).toBe(0);
    expect(arena.f32[first >> 2]).toBe(42);
    expect(arena.f32.length).toBeGreaterThanOrEqual((big >> 2) + 5_000_000);
    arena.reset();
  });
});

describe('persistent kernel-memory blocks', () => {
  it('survive scratch resets and large kernel calls, are reused after free, and merge holes', () => {
    const arena = simdKernels()!;
    const a = arena.allocPersistent(1000)!;
    const b = arena.allocPersistent(3000)!;
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(arena.pointerOf(a)).toBe(a.byteOffset);
    expect(arena.pointerOf(new Float32Array(4))).toBeUndefined();
    a.fill(1.5);
    b.fill(-2);
    // A scratch allocation far larger than the blocks, after a reset: it must land above them.
    arena.reset();
    const scratch = arena.alloc(1 << 20);
    expect(scratch).toBeGreaterThanOrEqual(b.byteOffset + b.length * 4);
    arena.f32.fill(7, scratch >> 2, (scratch >> 2) + (1 << 20));
    expect(a.every((x) => x === 1.5)).toBe(true);
    expect(b.every((x) => x === -2)).toBe(true);
    // Freed blocks are reused (first fit), zero-filled again.
    arena.freePersistent(a);
    const c = arena.allocPersistent(500)!;
    expect(c.byteOffset).toBe(a.byteOffset);
    expect(c.every((x) => x === 0)).toBe(true);
    // Freeing everything returns the heap to where it started.
    const before = a.byteOffset;
    arena.freePersistent(c);
    arena.freePersistent(b);
    expect(arena.persistentBytes).toBe(before);
  });
});
