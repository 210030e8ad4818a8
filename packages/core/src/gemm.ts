/**
 * Kernel: single-precision matrix multiply (GEMM) on row-major Float32Arrays.
 *
 *   C[m×n] = A[m×k] · B[k×n]          (default)
 *   C[m×n] = A[m×k] · Bᵀ, B is [n×k]   (`transposeB`, the layout of a PyTorch `Linear` weight)
 *   C += …                             (`accumulate`)
 *
 * The model runtime's projections (q/k/v/o, MLP) run through this function. The loops are
 * cache-blocked so a panel of B stays in L1/L2 while it is reused by every row of A.
 */
import { ShapeError } from './errors.js';
import { resolveKernel, type KernelPreference, type SimdArena } from './kernels/simd-runtime.js';
import { defaultThreads, workerPool } from './kernels/worker-pool.js';

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /**
   * B is stored `[n×k]` and used transposed (`C = A·Bᵀ`): the layout of a PyTorch `Linear`
   * weight, so weights loaded from safetensors need no transpose copy.
   */
  readonly transposeB?: boolean;
  /** Add the product into `out` instead of overwriting it (residual connections, bias pre-fill). */
  readonly accumulate?: boolean;
  /**
   * Kernel: `auto` (default: WebAssembly SIMD where the runtime supports it), `wasm-simd`
   * (the same) or `js` (the pure-JS blocked loops, for runtimes without SIMD and for tests).
   */
  readonly kernel?: KernelPreference;
  /**
   * Threads for the WebAssembly path (the caller plus worker threads over a shared memory,
   * Node only; the call stays synchronous). Default: the machine's cores, at most 4.
   */
  readonly threads?: number;
}

/** Below this many multiply-adds a job is not worth waking worker threads for. */
const MIN_PARALLEL_WORK = 1 << 22;

/** Below this many multiply-adds the copies into WebAssembly memory cost more than they save. */
const MIN_SIMD_WORK = 4096;

/** Rows of A per block: one block of C rows reuses a B panel while it is hot in cache. */
const ROW_BLOCK = 32;
/** Depth (k) per block: a `K_BLOCK × N_BLOCK` panel of B is 64 KiB. */
const K_BLOCK = 128;
/** Columns of C per block. */
const N_BLOCK = 128;

/**
 * Row-major float32 matrix product `C[m×n] = A[m×k]·B[k×n]` (or `A·Bᵀ` with `transposeB`,
 * B then `[n×k]`). Writes into `out` when given (it must hold at least `m·n` elements) and
 * returns it; otherwise allocates C. Sums are accumulated in float32 within a block.
 *
 * Throws `ShapeError` when a dimension is not a non-negative integer or an array is too short.
 */
export function matmul(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  out?: Float32Array,
  options: MatmulOptions = {},
): Float32Array {
  checkMatmulArgs(a, b, m, k, n, out);
  const c = out ?? new Float32Array(m * n);
  if (!options.accumulate) c.fill(0, 0, m * n);
  if (m === 0 || n === 0 || k === 0) return c;
  const arena = m * k * n >= MIN_SIMD_WORK ? resolveKernel(options.kernel).arena : undefined;
  if (arena) {
    const threads = m >= 128 && m * k * n >= MIN_PARALLEL_WORK ? (options.threads ?? defaultThreads()) : 1;
    matmulSimd(arena, a, b, m, k, n, c, options.transposeB ?? false, threads);
  }
  else if (options.transposeB) matmulTransposedJs(a, b, m, k, n, c);
  else matmulJs(a, b, m, k, n, c);
  return c;
}

/** Validates sizes for {@link matmul}; exported for kernels that share the contract. */
export function checkMatmulArgs(a: Float32Array, b: Float32Array, m: number, k: number, n: number, out?: Float32Array): void {
  for (const [name, value] of [['m', m], ['k', k], ['n', n]] as const) {
    if (!Number.isInteger(value) || value < 0) throw new ShapeError(`matmul: ${name} must be a non-negative integer, got ${value}`);
  }
  if (a.length < m * k) throw new ShapeError(`matmul: a must hold m·k = ${m}·${k} = ${m * k} elements, has ${a.length}`);
  if (b.length < k * n) throw new ShapeError(`matmul: b must hold k·n = ${k}·${n} = ${k * n} elements, has ${b.length}`);
  if (out !== undefined && out.length < m * n) throw new ShapeError(`matmul: out must hold m·n = ${m}·${n} = ${m * n} elements, has ${out.length}`);
}

/**
 * Pure-JS `C += A·B`: blocked over (k, n) panels of B; inside, an i-p-j loop with four rows
 * of A at once so each loaded B element feeds four multiply-adds.
 */
export function matmulJs(a: Float32Array, b: Float32Array, m: number, k: number, n: number, c: Float32Array): void {
  for (let p0 = 0; p0 < k; p0 += K_BLOCK) {
    const p1 = Math.min(k, p0 + K_BLOCK);
    for (let j0 = 0; j0 < n; j0 += N_BLOCK) {
      const j1 = Math.min(n, j0 + N_BLOCK);
      for (let i0 = 0; i0 < m; i0 += ROW_BLOCK) {
        const i1 = Math.min(m, i0 + ROW_BLOCK);
        let i = i0;
        for (; i + 4 <= i1; i += 4) {
          const c0 = i * n, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n;
          const a0 = i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
          for (let p = p0; p < p1; p++) {
            const x0 = a[a0 + p]!, x1 = a[a1 + p]!, x2 = a[a2 + p]!, x3 = a[a3 + p]!;
            const bo = p * n;
            for (let j = j0; j < j1; j++) {
              const y = b[bo + j]!;
              c[c0 + j]! += x0 * y;
              c[c1 + j]! += x1 * y;
              c[c2 + j]! += x2 * y;
              c[c3 + j]! += x3 * y;
            }
          }
        }
        for (; i < i1; i++) {
          const c0 = i * n;
          const a0 = i * k;
          for (let p = p0; p < p1; p++) {
            const x0 = a[a0 + p]!;
            const bo = p * n;
            for (let j = j0; j < j1; j++) c[c0 + j]! += x0 * b[bo + j]!;
          }
        }
      }
    }
  }
}

/**
 * Pure-JS `C += A·Bᵀ` (B `[n×k]`): dot products of A rows with B rows, four partial sums
 * each, blocked over rows of B so a B block stays in cache while every A row reads it.
 */
export function matmulTransposedJs(a: Float32Array, b: Float32Array, m: number, k: number, n: number, c: Float32Array): void {
  const k4 = k - (k % 4);
  for (let j0 = 0; j0 < n; j0 += ROW_BLOCK) {
    const j1 = Math.min(n, j0 + ROW_BLOCK);
    for (let i = 0; i < m; i++) {
      const ao = i * k;
      const co = i * n;
      for (let j = j0; j < j1; j++) {
        const bo = j * k;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        let p = 0;
        for (; p < k4; p += 4) {
          s0 += a[ao + p]! * b[bo + p]!;
          s1 += a[ao + p + 1]! * b[bo + p + 1]!;
          s2 += a[ao + p + 2]! * b[bo + p + 2]!;
          s3 += a[ao + p + 3]! * b[bo + p + 3]!;
        }
        for (; p < k; p++) s0 += a[ao + p]! * b[bo + p]!;
        c[co + j]! += s0 + s1 + s2 + s3;
      }
    }
  }
}

/**
 * `C += A·B` (or `A·Bᵀ`) through the WebAssembly SIMD kernel: A is copied in (rows padded to a
 * multiple of 4), B packed into 8-column panels (the transpose, if any, happens while packing),
 * C copied in and out with its rows padded to a multiple of 8 columns. With a worker pool,
 * the threads share 64-row chunks of C.
 */
function matmulSimd(arena: SimdArena, a: Float32Array, b: Float32Array, m: number, k: number, n: number, c: Float32Array, transposeB: boolean, threads: number): void {
  const pool = workerPool(arena, threads);
  const rows = (m + 3) & ~3;
  const np = (n + 7) & ~7;
  arena.reset();
  const aPtr = arena.alloc(rows * k);
  const bPtr = arena.alloc(k * np);
  const cPtr = arena.alloc(rows * np);
  const jobPtr = arena.alloc(8);
  const f32 = arena.f32;
  f32.set(a.subarray(0, m * k), aPtr >> 2);
  const bAt = bPtr >> 2;
  for (let jp = 0; jp < np; jp += 8) {
    const panel = bAt + jp * k;
    const width = Math.min(8, n - jp);
    if (transposeB) {
      for (let jj = 0; jj < width; jj++) {
        const src = (jp + jj) * k;
        for (let p = 0; p < k; p++) f32[panel + p * 8 + jj] = b[src + p]!;
      }
    } else {
      for (let p = 0; p < k; p++) {
        const src = p * n + jp;
        const dst = panel + p * 8;
        for (let jj = 0; jj < width; jj++) f32[dst + jj] = b[src + jj]!;
      }
    }
  }
  const cAt = cPtr >> 2;
  if (np === n) f32.set(c.subarray(0, m * n), cAt);
  else for (let i = 0; i < m; i++) f32.set(c.subarray(i * n, (i + 1) * n), cAt + i * np);
  if (pool) {
    arena.i32.set([0, aPtr, bPtr, cPtr, rows, k, np], jobPtr >> 2);
    pool.run(arena, 'gemmRows', jobPtr, 0, []);
  } else {
    arena.kernels.gemmPacked(aPtr, bPtr, cPtr, rows, k, np);
  }
  if (np === n) c.set(f32.subarray(cAt, cAt + m * n));
  else for (let i = 0; i < m; i++) c.set(f32.subarray(cAt + i * np, cAt + i * np + n), i * n);
}
