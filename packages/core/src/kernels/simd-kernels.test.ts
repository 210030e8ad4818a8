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
