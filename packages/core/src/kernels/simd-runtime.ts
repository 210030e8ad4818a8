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
  transposeTiles(src: number, dst: number, keyCount: number, dim: number): void;
  gemmRows(job: number, unused: number): void;
  flashGathered(job: number, s: number): void;
  attendChunks(job: number, s: number): void;
}

/** Kernel selection accepted by the fast kernels: `auto` uses WebAssembly SIMD when it loads. */
export type KernelPreference = 'auto' | 'wasm-simd' | 'js';

/** Keys per flash tile; must equal `TILE_KEYS` in the AssemblyScript source. */
export const TILE_KEYS = 64;

const PAGE_BYTES = 65536;

/**
 * The module's memory: a bump allocator for per-call scratch above a small heap of persistent
 * blocks (KV-cache storage that kernels read in place, see {@link SimdArena.allocPersistent}).
 *
 *   [0, persistentTop)      persistent blocks (and free holes between them)
 *   [persistentTop, top)    this call's scratch; {@link reset} frees it all
 *
 * Offsets returned by {@link alloc} stay valid until {@link reset}; the typed-array views are
 * refreshed whenever the memory grows.
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
  /**
   * Incremented by every {@link reset} and whenever the persistent heap grows into the scratch
   * region: resident scratch data of an older generation is gone.
   */
  generation = 0;
  private top = 0;
  private persistentTop = 0;
  /** Free holes of the persistent heap, sorted by offset, adjacent holes merged. */
  private readonly holes: { offset: number; bytes: number }[] = [];
  /** Every buffer object the memory has handed out (a shared memory gives a new one per growth). */
  private readonly buffers = new WeakSet<object>();

  constructor(kernels: SimdExports, memory: WasmMemory, sharedModule?: object) {
    this.kernels = kernels;
    this.memory = memory;
    this.sharedModule = sharedModule;
    this.f32 = new Float32Array(memory.buffer);
    this.i32 = new Int32Array(memory.buffer);
    this.buffers.add(this.f32.buffer);
  }

  /** Frees every scratch allocation (offsets handed out by {@link alloc} become invalid). */
  reset(): void {
    this.top = this.persistentTop;
    this.generation++;
  }

  /**
   * Allocates `floats` 4-byte slots, 64-byte aligned; returns the byte offset. Zero-filled
   * unless `zero` is false: callers that overwrite every slot they read (K/V residency, score
   * buffers) skip the fill, so an allocation sized by the sequence costs nothing per call.
   */
  alloc(floats: number, zero = true): number {
    const offset = Math.max(this.top, this.persistentTop);
    const needed = offset + roundUp64(floats * 4);
    this.ensure(needed);
    this.top = needed;
    if (zero) this.f32.fill(0, offset >> 2, (offset >> 2) + floats);
    return offset;
  }

  /**
   * A zero-filled block of `floats` floats that survives {@link reset}, as a `Float32Array`
   * view of the module's memory, so kernels can read it in place ({@link pointerOf}). Only
   * with a shared memory (whose views stay valid when it grows); `undefined` otherwise or when
   * the memory cannot grow. Release it with {@link freePersistent}; call neither while a
   * kernel call is allocating scratch.
   */
  allocPersistent(floats: number): Float32Array | undefined {
    if (!this.sharedModule || floats <= 0) return undefined;
    const bytes = roundUp64(floats * 4);
    let offset = -1;
    const hole = this.holes.findIndex((h) => h.bytes >= bytes);
    if (hole >= 0) {
      const h = this.holes[hole]!;
      offset = h.offset;
      if (h.bytes === bytes) this.holes.splice(hole, 1);
      else this.holes[hole] = { offset: h.offset + bytes, bytes: h.bytes - bytes };
    } else {
      try {
        this.ensure(this.persistentTop + bytes);
      } catch {
        return undefined; // the memory is at its maximum (4 GiB) or the system refused
      }
      offset = this.persistentTop;
      this.persistentTop += bytes;
      // The scratch region now starts higher: scratch that lived there is gone.
      this.top = Math.max(this.top, this.persistentTop);
      this.generation++;
    }
    this.f32.fill(0, offset >> 2, (offset >> 2) + floats);
    const view = new Float32Array(this.memory.buffer, offset, floats);
    this.buffers.add(view.buffer);
    return view;
  }

  /** Returns a block from {@link allocPersistent} to the heap (its views must no longer be used). */
  freePersistent(block: { byteOffset: number; length: number }): void {
    let offset = block.byteOffset;
    let bytes = roundUp64(block.length * 4);
    let at = this.holes.findIndex((h) => h.offset > offset);
    if (at < 0) at = this.holes.length;
    const before = this.holes[at - 1];
    const after = this.holes[at];
    if (after && offset + bytes === after.offset) {
      bytes += after.bytes;
      this.holes.splice(at, 1);
    }
    if (before && before.offset + before.bytes === offset) {
      offset = before.offset;
      bytes += before.bytes;
      this.holes.splice(at - 1, 1);
      at--;
    }
    if (offset + bytes === this.persistentTop) this.persistentTop = offset;
    else this.holes.splice(at, 0, { offset, bytes });
  }

  /**
   * The byte offset of `data` in the module's memory when it is a view of it (a persistent
   * block), else `undefined`: kernels then read it in place instead of copying it in.
   */
  pointerOf(data: Float32Array): number | undefined {
    return this.buffers.has(data.buffer) ? data.byteOffset : undefined;
  }

  /** Bytes held by persistent blocks and holes (for tests and diagnostics). */
  get persistentBytes(): number {
    return this.persistentTop;
  }

  private ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    this.memory.grow(Math.ceil((bytes - have) / PAGE_BYTES));
    this.f32 = new Float32Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
    this.buffers.add(this.f32.buffer);
  }
}

function roundUp64(bytes: number): number {
  return Math.ceil(bytes / 64) * 64;
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
