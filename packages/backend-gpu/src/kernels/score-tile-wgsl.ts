/**
 * Shared WGSL pieces of every tiled kernel in this package: the 4×4-per-thread register
 * micro-tile that computes a `rows × 64` tile of dot products
 *
 *   S[r][c] = Σ_e A(r, e) · B(c, e)        (e over the operand width E, in chunks of 16)
 *
 * from workgroup memory. Flash attention uses it with A = q, B = k (E = headDim); block scoring
 * uses it with A = [q⁺ | q⁻], B = [max | min] (Quest's bound, E = 2·headDim) or A = q, B = mean.
 *
 * Layout (BR tile rows, BC = 64 tile columns, TR = BR / 4 thread rows, TC = 16 thread columns):
 * thread (ty, tx) owns rows 4ty..4ty+3 and the strided columns tx, tx+16, tx+32, tx+48, so its
 * four score vectors `s0..s3` hold one row each, columns in the vector lanes. Operand chunks are
 * stored transposed with one vec4 of padding per row of 16 so that the cooperative stores and the
 * vec4 reads avoid shared-memory bank conflicts.
 */

/** Tile geometry shared by the kernels. */
export interface TileShape {
  /** Rows of the tile: 64 (256 threads) or 16 (64 threads). */
  readonly rows: 64 | 16;
  /** Operand width handled per chunk (16). */
  readonly chunk: number;
}

/** Columns of every tile (keys or key blocks). */
export const TILE_COLUMNS = 64;
/** Threads per tile row group. */
export const THREAD_COLUMNS = 16;

/** Threads of a workgroup for a tile shape. */
export function tileThreads(shape: TileShape): number {
  return (shape.rows / 4) * THREAD_COLUMNS;
}

/** vec4 slots the transposed A and B chunks take in the scratch array. */
export function operandScratchVec4(shape: TileShape): number {
  return shape.chunk * (shape.rows / 4 + 1) + shape.chunk * (TILE_COLUMNS / 4 + 1);
}

/** WGSL constants every tiled kernel declares. */
export function tileConstants(shape: TileShape): string {
  const tr = shape.rows / 4;
  return /* wgsl */ `
const BR: u32 = ${shape.rows}u;
const BC: u32 = ${TILE_COLUMNS}u;
const TR: u32 = ${tr}u;
const TC: u32 = ${THREAD_COLUMNS}u;
const NT: u32 = ${tileThreads(shape)}u;
const DK: u32 = ${shape.chunk}u;
const A_STRIDE: u32 = ${tr + 1}u;
const B_STRIDE: u32 = ${TILE_COLUMNS / 4 + 1}u;
const B_OFF: u32 = ${shape.chunk * (tr + 1)}u;
const INVALID: u32 = 0xffffffffu;
const NEG: f32 = -3.0e38;
`;
}

/**
 * WGSL statements that accumulate `s0..s3` (declared by the caller) over the operand width
 * `width` (a WGSL expression, multiple of nothing in particular: the tail is zero-padded).
 * `loadA(r, e)` / `loadB(c, e)` are WGSL expressions for operand elements with `r`/`c` the tile
 * row / column and `e` the operand index; they must return 0 outside the operand.
 * Uses `scratch` (vec4 workgroup array) and must be reached by the whole workgroup (barriers).
 *
 * Software-pipelined: each thread holds its share of the next chunk in registers, loading it
 * from global memory while the current chunk is multiplied out of workgroup memory, so the load
 * latency of all chunks but the first overlaps arithmetic instead of stalling at a barrier.
 */
export function scoreTileWgsl(
  shape: TileShape,
  width: string,
  loadA: (r: string, e: string) => string,
  loadB: (c: string, e: string) => string,
  vectorized = false,
): string {
  const threads = tileThreads(shape);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  if (vectorized) return vectorScoreTile(shape, width, loadA, loadB, threads, range);
  const perThreadA = (shape.rows * shape.chunk) / threads;
  const perThreadB = (TILE_COLUMNS * shape.chunk) / threads;
  const fetch = (e0: string) =>
    [
      ...range(perThreadA).map((i) => `      ra${i} = ${loadA(`((lid + ${i * threads}u) / DK)`, `${e0} + (lid + ${i * threads}u) % DK`)};`),
      ...range(perThreadB).map((i) => `      rb${i} = ${loadB(`((lid + ${i * threads}u) / DK)`, `${e0} + (lid + ${i * threads}u) % DK`)};`),
    ].join('\n');
  const declarations = [...range(perThreadA).map((i) => `      var ra${i}: f32;`), ...range(perThreadB).map((i) => `      var rb${i}: f32;`)];
  const stores = [
    ...range(perThreadA).map((i) => `      { let x = lid + ${i * threads}u; let rr = x / DK; scratch[(x % DK) * A_STRIDE + rr / 4u][rr % 4u] = ra${i}; }`),
    ...range(perThreadB).map((i) => `      { let x = lid + ${i * threads}u; let cc = x / DK; scratch[B_OFF + (x % DK) * B_STRIDE + cc % 16u][cc / 16u] = rb${i}; }`),
  ];
  return pipelinedTile(width, declarations, fetch, stores);
}

/**
 * The software pipeline both operand layouts share: registers ← chunk 0; per chunk: registers →
 * workgroup memory, barrier, registers ← next chunk (in flight during the multiply), multiply
 * the chunk out of workgroup memory into `s0..s3`, barrier.
 */
function pipelinedTile(width: string, declarations: readonly string[], fetch: (e0: string) => string, stores: readonly string[]): string {
  return /* wgsl */ `
    {
${declarations.join('\n')}
${fetch('0u')}
    for (var e0 = 0u; e0 < ${width}; e0 += DK) {
${stores.join('\n')}
      workgroupBarrier();
      if (e0 + DK < ${width}) {
  ${fetch('e0 + DK')}
      }
      for (var ee = 0u; ee < DK; ee++) {
        let a = scratch[ee * A_STRIDE + ty];
        let b = scratch[B_OFF + ee * B_STRIDE + tx];
        s0 = fma(vec4<f32>(a.x), b, s0);
        s1 = fma(vec4<f32>(a.y), b, s1);
        s2 = fma(vec4<f32>(a.z), b, s2);
        s3 = fma(vec4<f32>(a.w), b, s3);
      }
      workgroupBarrier();
    }
    }
`;
}

/**
 * {@link scoreTileWgsl} with `vec4` operand loads: `loadA(r, e)` / `loadB(c, e)` return channels
 * e..e+3 (e a multiple of 4), each thread fetching whole vec4s and scattering them transposed
 * into the same workgroup layout, so the multiply loop is unchanged.
 */
function vectorScoreTile(
  shape: TileShape,
  width: string,
  loadA: (r: string, e: string) => string,
  loadB: (c: string, e: string) => string,
  threads: number,
  range: (n: number) => number[],
): string {
  const perThreadA = (shape.rows * shape.chunk) / 4 / threads;
  const perThreadB = (TILE_COLUMNS * shape.chunk) / 4 / threads;
  const at = (i: number) => `(lid + ${i * threads}u)`;
  const fetch = (e0: string) =>
    [
      ...range(perThreadA).map((i) => `      ra${i} = ${loadA(`${at(i)} / (DK / 4u)`, `${e0} + 4u * (${at(i)} % (DK / 4u))`)};`),
      ...range(perThreadB).map((i) => `      rb${i} = ${loadB(`${at(i)} / (DK / 4u)`, `${e0} + 4u * (${at(i)} % (DK / 4u))`)};`),
    ].join('\n');
  const scatter = (name: string, i: number, target: (e: string, index: string) => string) =>
    `      { let row = ${at(i)} / (DK / 4u); let e = 4u * (${at(i)} % (DK / 4u));${[0, 1, 2, 3].map((c) => ` ${target(`e + ${c}u`, 'row')} = ${name}${i}[${c}];`).join('')} }`;
  const declarations = [...range(perThreadA).map((i) => `      var ra${i}: vec4<f32>;`), ...range(perThreadB).map((i) => `      var rb${i}: vec4<f32>;`)];
  const stores = [
    ...range(perThreadA).map((i) => scatter('ra', i, (e, row) => `scratch[(${e}) * A_STRIDE + ${row} / 4u][${row} % 4u]`)),
    ...range(perThreadB).map((i) => scatter('rb', i, (e, col) => `scratch[B_OFF + (${e}) * B_STRIDE + ${col} % 16u][${col} / 16u]`)),
  ];
  return pipelinedTile(width, declarations, fetch, stores);
}

/**
 * Whether {@link scoreTileWgsl} can load both operands as `vec4`s (its `vectorized` mode): operand
 * widths that are multiples of 4 (`widths`, e.g. the head dim) and whole vec4 shares per thread.
 */
export function vectorTileFits(shape: TileShape, ...widths: readonly number[]): boolean {
  const threads = tileThreads(shape);
  const whole = (n: number) => Number.isInteger(n) && n >= 1;
  return widths.every((w) => w % 4 === 0) && shape.chunk % 4 === 0 && whole((shape.rows * shape.chunk) / 4 / threads) && whole((TILE_COLUMNS * shape.chunk) / 4 / threads);
}

/** How a tiled kernel declares and indexes its operand arrays (see {@link tileOperands}). */
export interface TileOperands {
  /** vec4 loads ({@link scoreTileWgsl}'s `vectorized` mode). */
  readonly vectorized: boolean;
  /** Element type of the operand arrays: `vec4<f32>` or `f32`. */
  readonly element: string;
  /** A zero of that type. */
  readonly zero: string;
  /** WGSL index of channel `e` (a multiple of 4 when vectorized) of row `row` in an array of `width` channels a row. */
  at(row: string, e: string, width: string): string;
}

/** The operand layout of a tiled kernel: vec4 where {@link vectorTileFits} (same products), scalars otherwise. */
export function tileOperands(shape: TileShape, ...widths: readonly number[]): TileOperands {
  const vectorized = vectorTileFits(shape, ...widths);
  return {
    vectorized,
    element: vectorized ? 'vec4<f32>' : 'f32',
    zero: vectorized ? 'vec4<f32>(0.0)' : '0.0',
    at: (row, e, width) => (vectorized ? `(${row}) * (${width} / 4u) + (${e}) / 4u` : `(${row}) * ${width} + ${e}`),
  };
}

/** Declares the four zeroed score vectors `s0..s3` that {@link scoreTileWgsl} accumulates into. */
export function zeroScores(indent: string): string {
  return [0, 1, 2, 3].map((i) => `${indent}var s${i} = vec4<f32>(0.0);`).join('\n');
}

/** Emits `body(i)` for the four rows a thread owns (WGSL has no compile-time loops). */
export function forRows(body: (i: number) => string): string {
  return [0, 1, 2, 3].map(body).join('\n');
}

/** WGSL for the linearised workgroup id: dispatches wider than 65535 fold into `y`. */
export const linearWorkgroup = 'let linear = wid.x + wid.y * P.tilesX;';

/** Splits `count` workgroups into an `x × y` grid that stays under the per-dimension limit. */
export function dispatchGrid(count: number, maxPerDimension = 65535): [number, number] {
  if (count <= maxPerDimension) return [Math.max(1, count), 1];
  const y = Math.ceil(count / maxPerDimension);
  return [Math.ceil(count / y), y];
}
