/**
 * Loader and memory arena of the WebAssembly SIMD kernels (scripts/wasm/simd-kernels.ts).
 *
 * The module is compiled synchronously (`new WebAssembly.Module(bytes)`) on first use, so the
 * public API stays synchronous in Node and in browsers. When WebAssembly or its SIMD proposal
 * is missing, {@link simdKernels} returns `undefined` and {@link simdUnavailableReason} says
 * why; callers then run their pure-JS kernel and record `fallbackReason`.
 *
 * The kernels only see their own linear memory, so callers copy operands into it through a
 * bump allocator ({@link SimdArena.alloc}); {@link SimdArena.generation} changes on every reset
 * so a caller that keeps data resident across calls can tell when another caller reused it.
 */
import { SIMD_KERNELS_SHARED_WASM_BASE64, SIMD_KERNELS_WASM_BASE64 } from './simd-kernels.generated.js';

/** A WebAssembly memory (only what the runtime uses). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/** Exports of the compiled module (byte offsets into its memory; see the AssemblyScript source). */
export interface SimdExports {
  flashRows(
    q: number, groups: number, rows: number, dim: number,
    kt: number, keyCount: number, v: number, dvp: number,
    s: number, o: number, m: number, l: number,
    firstPos: number, lastPos: number, causal: number,
  ): void;
  attendRows(q: number, dimp: number, k: number, v: number, dvp: number, ranges: number, count: number, s: number, out: number, stats: number): void;
  gemmPacked(a: number, b: number, c: number, m: number, k: number, np: number): void;
  flashBlocks(job: number, s: number): void;
  gemmRows(job: number, unused: number): void;
}

/** Kernel selection accepted by the fast kernels: `auto` uses WebAssembly SIMD when it loads. */
export type KernelPreference = 'auto' | 'wasm-simd' | 'js';

/** Keys per flash tile; must equal `TILE_KEYS` in the AssemblyScript source. */
export const TILE_KEYS = 64;

const PAGE_BYTES = 65536;

/**
 * The module's memory with a bump allocator. Offsets returned by {@link alloc} stay valid
 * until {@link reset}; the typed-array views are refreshed whenever the memory grows.
 */
export class SimdArena {
  readonly kernels: SimdExports;
  readonly memory: WasmMemory;
  /** The compiled module when the memory is shared (worker threads instantiate it too). */
  readonly sharedModule: object | undefined;
  /** Float32 view of the whole memory (replaced when the memory grows). */
  f32: Float32Array;
  /** Int32 view of the whole memory (replaced when the memory grows). */
  i32: Int32Array;
  /** Incremented by every {@link reset}: resident data of an older generation is gone. */
  generation = 0;
  private top = 0;

  constructor(kernels: SimdExports, memory: WasmMemory, sharedModule?: object) {
    this.kernels = kernels;
    this.memory = memory;
    this.sharedModule = sharedModule;
    this.f32 = new Float32Array(memory.buffer);
    this.i32 = new Int32Array(memory.buffer);
  }

  /** Frees every allocation (offsets handed out before become invalid). */
  reset(): void {
    this.top = 0;
    this.generation++;
  }

  /** Allocates `floats` zero-filled 4-byte slots, 64-byte aligned; returns the byte offset. */
  alloc(floats: number): number {
    const offset = this.top;
    const bytes = Math.ceil((floats * 4) / 64) * 64;
    const needed = offset + bytes;
    const have = this.memory.buffer.byteLength;
    if (needed > have) {
      this.memory.grow(Math.ceil((needed - have) / PAGE_BYTES));
      this.f32 = new Float32Array(this.memory.buffer);
      this.i32 = new Int32Array(this.memory.buffer);
    }
    this.top = needed;
    this.f32.fill(0, offset >> 2, (offset >> 2) + floats);
    return offset;
  }
}

interface WasmNamespace {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Instance: new (module: object, imports: object) => { exports: unknown };
  validate(bytes: Uint8Array): boolean;
}

let arena: SimdArena | undefined;
let failure: string | undefined;
let loaded = false;

/** The shared SIMD arena, loading the module on first call; `undefined` when SIMD is unavailable. */
export function simdKernels(): SimdArena | undefined {
  if (!loaded) {
    loaded = true;
    try {
      const wasm = (globalThis as unknown as { WebAssembly?: WasmNamespace }).WebAssembly;
      if (!wasm) throw new Error('WebAssembly is not available in this runtime');
      const bytes = decodeBase64(SIMD_KERNELS_WASM_BASE64);
      if (!wasm.validate(bytes)) throw new Error('this runtime rejects the module (no WebAssembly SIMD support)');
      arena = loadShared(wasm);
      if (!arena) {
        const instance = new wasm.Instance(new wasm.Module(bytes), {});
        const kernels = instance.exports as SimdExports & { memory: WasmMemory };
        arena = new SimdArena(kernels, kernels.memory);
      }
    } catch (error) {
      failure = `wasm-simd unavailable: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  return arena;
}

/** Maximum pages of the shared memory (4 GiB, the wasm32 limit); reserved, not committed. */
const SHARED_MAX_PAGES = 65536;

/**
 * The shared-memory build, where SharedArrayBuffer exists (Node; cross-origin-isolated pages);
 * `undefined` elsewhere, and the caller loads the own-memory build.
 */
function loadShared(wasm: WasmNamespace): SimdArena | undefined {
  if (typeof SharedArrayBuffer !== 'function') return undefined;
  try {
    const bytes = decodeBase64(SIMD_KERNELS_SHARED_WASM_BASE64);
    const memory = new wasm.Memory({ initial: 1, maximum: SHARED_MAX_PAGES, shared: true });
    const module = new wasm.Module(bytes);
    const instance = new wasm.Instance(module, { env: { memory } });
    return new SimdArena(instance.exports as SimdExports, memory, module);
  } catch {
    return undefined;
  }
}

/** Why {@link simdKernels} returned `undefined` (after it was called), else `undefined`. */
export function simdUnavailableReason(): string | undefined {
  return failure;
}

/**
 * Resolves a kernel preference: the arena when SIMD should run, or the reason it does not
 * (`js` requested, or the module failed to load).
 */
export function resolveKernel(preference: KernelPreference = 'auto'): { arena?: SimdArena; fallbackReason?: string } {
  if (preference === 'js') return {};
  const found = simdKernels();
  if (found) return { arena: found };
  return { fallbackReason: simdUnavailableReason() ?? 'wasm-simd unavailable' };
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Decodes standard base64 without `atob`/`Buffer`, so it runs in every JS runtime. */
export function decodeBase64(text: string): Uint8Array {
  const lookup = new Uint8Array(128);
  for (let i = 0; i < BASE64_ALPHABET.length; i++) lookup[BASE64_ALPHABET.charCodeAt(i)] = i;
  let length = text.length;
  while (length > 0 && text[length - 1] === '=') length--;
  const out = new Uint8Array(Math.floor((length * 3) / 4));
  let bits = 0;
  let value = 0;
  let at = 0;
  for (let i = 0; i < length; i++) {
    value = (value << 6) | lookup[text.charCodeAt(i)]!;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  return out;
}
