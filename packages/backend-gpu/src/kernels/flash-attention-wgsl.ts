/**
 * Flash-style attention in WGSL: the dense path and the exact sparse executor in one kernel.
 *
 * Implements, for every query row i of a tile and the keys K(i) of the tile's key list,
 *
 *   s_ij = scale · q_i·k_j            (masked to −∞ when j > pos(i) under causal)
 *   m_i ← max(m_i, max_j s_ij);  α = e^{m_old − m_i}
 *   l_i ← α·l_i + Σ_j e^{s_ij − m_i};  o_i ← α·o_i + Σ_j e^{s_ij − m_i} v_j
 *   out_i = o_i / l_i;  lse_i = m_i + ln l_i     (out 0, lse −∞ where no key is visible)
 *
 * i.e. the online softmax of FlashAttention (arXiv:2205.14135 Alg. 1), tiled 64 keys at a time
 * through workgroup memory, never materialising more than a tile of S.
 *
 * - `dense`: a workgroup owns 64 consecutive queries of one query head; keys run 0..last
 *   visible (causal tiles past the diagonal are skipped).
 * - `csr`: a workgroup owns one row of a core `Selection` (the queries of a query block, times
 *   the query heads of the GQA group when the selection is per KV head); keys are the row's
 *   token indices, or its blocks expanded to tokens, gathered per tile. Rows come from a
 *   `bounds` buffer (start, end per row) into `indices`, the CSR layout of core's `Selection`.
 * - `gather`: key-block-major execution of a block selection (`gather-lists-wgsl.ts`): a
 *   workgroup owns one key block of one selection slot and up to 64 query vectors of rows that
 *   selected it, gathered from a per-block list; it writes each (row, entry) pair's partial
 *   (out, lse) over that block, which a merge pass combines per query. Each block is then read
 *   once per 64 queries that chose it, instead of once per query.
 * - `lists`: a family's own tiling ({@link FlashAttentionListHooks}): its prologue picks the
 *   tile's query rows and where their partial (out, lse) goes, its key list gives the keys
 *   (ascending), and an extra mask may drop (row, key) pairs; the loop, softmax and value
 *   staging are this kernel's. Routing's cluster-major executor is one (`@sparse-attn/routing`).
 *
 * Per-row partial sums `l` stay per thread (the rescale factor is shared by the row), so only
 * the running maximum needs a cross-thread reduction per tile.
 */
import { listTileWgsl } from './gather-lists-wgsl.js';
import { forRows, linearWorkgroup, operandScratchVec4, scoreTileWgsl, tileConstants, type TileShape, zeroScores } from './score-tile-wgsl.js';

/** Options of {@link flashAttentionWgsl}. */
export interface FlashAttentionKernelOptions {
  readonly mode: 'dense' | 'csr' | 'gather' | 'lists';
  readonly headDim: number;
  readonly valueDim: number;
  readonly tile: TileShape;
  /** Keys per value chunk staged in workgroup memory for o += p·v. */
  readonly valueChunk: number;
  /** The `lists` mode's hooks (required there, ignored otherwise). */
  readonly hooks?: FlashAttentionListHooks;
  /**
   * `gather` mode only: each selection entry also has a key mask (binding 8, `maskWords` u32 per
   * entry, bit j of the entry's words = key j of its block), and a (row, key) pair is attended only
   * where the bit is set. A token selection whose tokens fall in few blocks per row (the
   * hierarchical indexer's) runs key-block-major this way, each block read once per 64 queries.
   */
  readonly masked?: boolean;
}

/**
 * What a family supplies for the `lists` mode. Bindings 0–5 are the kernel's (`P`, q, k, v, and
 * `out` / `lse`, which receive each row's result at `rowOut[r]`: a partial to merge, or the final
 * row); the hooks add everything else. Names the kernel defines and the hooks may use: `BR` (tile
 * rows), `INVALID`, `NEG`, `linear` (the workgroup's index), `lid`, `tx`, `ty`, and the workgroup
 * arrays `rowQ` (q row of tile row r, `INVALID` when idle), `rowPos` (its key position),
 * `rowOut`.
 */
export interface FlashAttentionListHooks {
  /** Fields of the uniform struct `Params`; must include `tilesX: u32`, `causal: u32`, `scale: f32` and `pad0: u32` (kept 0). */
  readonly params: string;
  /** Module-scope WGSL: bindings 6 and up, workgroup arrays, functions. */
  readonly declarations: string;
  /**
   * Statements run by every thread before the key loop: set `rowQ`, `rowPos` and `rowOut` for
   * `lid < BR`, and define `kvBase` (first key row of the KV slot: slot · the chunk's `keyStride`), `slotCount` (length of the key
   * list) and `lastPos` (the tile's last query position, for the causal cut of the ascending key
   * list); may `return` (workgroup-uniformly) for an idle workgroup. Must end with a barrier
   * (e.g. a `workgroupUniformLoad`) after its workgroup writes.
   */
  readonly prologue: string;
  /** WGSL expression (u32) of the key at list slot `s` (< `slotCount`); keys ascend with s. */
  readonly keyAt: (s: string) => string;
  /** WGSL expression (vec4<bool>): which of the thread's keys `keys` (vec4<u32>) tile row `4u * ty + i` may attend, beyond causality. */
  readonly allow?: (i: number) => string;
  /** With it, the kernel counts the pairs it attends; this statement (run by thread 0 at the end) receives the workgroup's count as `pairs` (u32). */
  readonly onPairs?: string;
  /** Workgroup memory bytes the declarations add. */
  readonly workgroupBytes: number;
}

/** Uniform parameter block of the attention kernel (16 × 4 bytes, order matters). */
export const ATTENTION_PARAMS = [
  'querySeq', 'keySeq', 'queryOffset', 'causal',
  'groupSize', 'slots', 'tilesX', 'scale',
  'selRows', 'queryBlockSize', 'blockSize', 'scopeKv',
  'kindBlock', 'subTiles', 'pad0', 'keyStride',
] as const;
// pad0 must stay 0: the kernel builds −∞ for empty rows as bitcast(pad0 | 0xff800000) at run time,
// because WGSL rejects an infinite value in a constant expression.

/**
 * Uniform parameter block of the `gather` mode (20 × 4 bytes, order matters): the selection's
 * geometry, the window of selection rows (`rowStart`, from selection slot `slotFirst`) whose
 * lists were built, and the lists' shape (`lists` = slots of the window × `blocks`).
 */
export const GATHER_ATTENTION_PARAMS = [
  'querySeq', 'keySeq', 'queryOffset', 'causal',
  'groupSize', 'selRows', 'blockSize', 'scopeKv',
  'queryBlockSize', 'stride', 'lists', 'blocks',
  'rowStart', 'slotFirst', 'itemsPerTile', 'vectors',
  'tilesX', 'scale', 'pad0', 'maskWords',
  'keyStride', 'pad1', 'pad2', 'pad3',
] as const;

/** Bytes of workgroup memory the kernel declares, to check against the device limit. */
export function flashAttentionWorkgroupBytes(o: FlashAttentionKernelOptions): number {
  const dvp = Math.ceil(o.valueDim / 64) * 64;
  const tr = o.tile.rows / 4;
  const scratch = Math.max(operandScratchVec4(o.tile), (o.valueChunk * dvp) / 4);
  const gatherRows = o.mode === 'gather' || o.mode === 'lists' ? o.tile.rows * 4 + 8 : 0;
 const hooks = o.mode === 'lists' ? listHooks(o).workgroupBytes + 4 : 0;
  const masks = o.mode === 'gather' && o.masked ? o.tile.rows * 2 * 4 : 0;
  return hooks + masks + scratch * 16 + 64 * (tr + 1) * 16 + o.tile.rows * 17 * 4 + 64 * 4 + o.tile.rows * 8 + 16 + gatherRows;
}

/** Generates the WGSL source of the dense or CSR attention kernel. */
export function flashAttentionWgsl(o: FlashAttentionKernelOptions): string {
  const dvp = Math.ceil(o.valueDim / 64) * 64;
  const vc4 = dvp / 64;
  const scratchVec4 = Math.max(operandScratchVec4(o.tile), (o.valueChunk * dvp) / 4);
  const csr = o.mode === 'csr';
  const gather = o.mode === 'gather';
  const lists = o.mode === 'lists';
  const hooks = lists ? listHooks(o) : undefined;
  const masked = gather && o.masked === true;
  const oVars = (i: number) => Array.from({ length: vc4 }, (_, c) => `o${i}_${c}`);
  const vectorized = usesVectorLoads(o);
  const { prefetchFirst, storeValues, prefetchNext } = valueStaging(o, dvp, vectorized);
  const element = vectorized ? 'vec4<f32>' : 'f32';
  return /* wgsl */ `
${tileConstants(o.tile)}
const D: u32 = ${o.headDim}u;
const DV: u32 = ${o.valueDim}u;
const DVP: u32 = ${dvp}u;
const VJ: u32 = ${o.valueChunk}u;

${
  hooks
    ? `struct Params {
${hooks.params}
}`
    : gather
    ? `struct Params {
  querySeq: u32, keySeq: u32, queryOffset: u32, causal: u32,
  groupSize: u32, selRows: u32, blockSize: u32, scopeKv: u32,
  queryBlockSize: u32, stride: u32, lists: u32, blocks: u32,
  rowStart: u32, slotFirst: u32, itemsPerTile: u32, vectors: u32,
  tilesX: u32, scale: f32, pad0: u32, maskWords: u32,
  keyStride: u32, pad1: u32, pad2: u32, pad3: u32,
}`
    : `struct Params {
  querySeq: u32, keySeq: u32, queryOffset: u32, causal: u32,
  groupSize: u32, slots: u32, tilesX: u32, scale: f32,
  selRows: u32, queryBlockSize: u32, blockSize: u32, scopeKv: u32,
  kindBlock: u32, subTiles: u32, pad0: u32, keyStride: u32,
}`
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<${element}>;
@group(0) @binding(2) var<storage, read> k: array<${element}>;
@group(0) @binding(3) var<storage, read> v: array<${element}>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
${csr ? `@group(0) @binding(6) var<storage, read> bounds: array<u32>;
@group(0) @binding(7) var<storage, read> indices: array<u32>;` : ''}${gather ? `@group(0) @binding(6) var<storage, read> listMeta: array<u32>;
@group(0) @binding(7) var<storage, read> items: array<u32>;` : ''}${masked ? `
@group(0) @binding(8) var<storage, read> masks: array<u32>;
// The key-tile's two mask words (keys 0–31, 32–63 of the tile) of each tile row's entry.
var<workgroup> maskTile: array<u32, ${2 * o.tile.rows}>;` : ''}${hooks ? hooks.declarations : ''}

var<workgroup> scratch: array<vec4<f32>, ${scratchVec4}>;
var<workgroup> ps: array<vec4<f32>, ${64 * (o.tile.rows / 4 + 1)}>;
// Per-thread row maxima / sums, one vec4 (the thread's four rows) per thread, 17 per row group
// (padding against bank conflicts): a row group's 16 partials are 16 vec4 reads, not 64 scalars.
var<workgroup> red: array<vec4<f32>, ${(o.tile.rows / 4) * 17}>;
var<workgroup> keyIdx: array<u32, 64>;
var<workgroup> rowQ: array<u32, ${o.tile.rows}>;
var<workgroup> rowPos: array<u32, ${o.tile.rows}>;
var<workgroup> wgStart: u32;
var<workgroup> wgEnd: u32;
var<workgroup> wgFirst: u32;
${gather || lists ? `var<workgroup> rowOut: array<u32, ${o.tile.rows}>;
var<workgroup> wgList: u32;
var<workgroup> wgLast: u32;` : ''}${hooks?.onPairs ? '\nvar<workgroup> wgPairs: atomic<u32>;' : ''}

${
  vectorized
    ? `// Four consecutive channels e..e+3 (e a multiple of 4; D is one too, so a vec4 is all in or all out).
fn qAt(r: u32, e: u32) -> vec4<f32> {
  let row = rowQ[r];
  if (row == INVALID || e >= D) { return vec4<f32>(0.0); }
  return q[row * (D / 4u) + e / 4u];
}

fn kAt(c: u32, e: u32, kvBase: u32) -> vec4<f32> {
  let key = keyIdx[c];
  if (key == INVALID || e >= D) { return vec4<f32>(0.0); }
  return k[(kvBase + key) * (D / 4u) + e / 4u];
}`
    : `fn qAt(r: u32, e: u32) -> f32 {
  let row = rowQ[r];
  if (row == INVALID || e >= D) { return 0.0; }
  return q[row * D + e];
}

fn kAt(c: u32, e: u32, kvBase: u32) -> f32 {
  let key = keyIdx[c];
  if (key == INVALID || e >= D) { return 0.0; }
  return k[(kvBase + key) * D + e];
}`
}

${csr ? `
// Key of slot s of the current row: a token index, or a block expanded to its tokens.
fn keyOfSlot(s: u32, start: u32) -> u32 {
  if (P.kindBlock == 0u) { return indices[start + s]; }
  let key = indices[start + s / P.blockSize] * P.blockSize + s % P.blockSize;
  return select(INVALID, key, key < P.keySeq);
}` : ''}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let tx = lid % TC;
  let ty = lid / TC;
${hooks ? hooks.prologue : csr ? csrPrologue() : gather ? gatherPrologue() : densePrologue()}
  var m = vec4<f32>(NEG);
  var l = vec4<f32>(0.0);
${forRows((i) => oVars(i).map((name) => `  var ${name} = vec4<f32>(0.0);`).join('\n'))}
  let pos = vec4<u32>(rowPos[4u * ty], rowPos[4u * ty + 1u], rowPos[4u * ty + 2u], rowPos[4u * ty + 3u]);
  let live = vec4<bool>(rowQ[4u * ty] != INVALID, rowQ[4u * ty + 1u] != INVALID, rowQ[4u * ty + 2u] != INVALID, rowQ[4u * ty + 3u] != INVALID);
${hooks?.onPairs ? '  var pairs = 0u;\n' : ''}
  for (var k0 = 0u; k0 < slotCount; k0 += BC) {
${csr ? `    if (lid < BC) {
      let s = k0 + lid;
      keyIdx[lid] = select(INVALID, keyOfSlot(s, start), s < slotCount);
    }
    if (lid == 0u) { wgFirst = keyOfSlot(k0, start); }
    let first = workgroupUniformLoad(&wgFirst);
    if (P.causal == 1u && first != INVALID && first > lastPos) { break; }` : hooks ? `    if (lid < BC) {
      let s = k0 + lid;
      var key = INVALID;
      if (s < slotCount) { key = ${hooks.keyAt('s')}; }
      keyIdx[lid] = key;
    }
    if (lid == 0u) { wgFirst = ${hooks.keyAt('k0')}; }
    let first = workgroupUniformLoad(&wgFirst);
    if (P.causal == 1u && first > lastPos) { break; }` : `${gather ? '    if (P.causal == 1u && keyBase + k0 > lastPos) { break; }\n' : ''}    if (lid < BC) {
      let s = k0 + lid;
      keyIdx[lid] = select(INVALID, keyBase + s, s < slotCount);
    }${masked ? `
    if (lid < 2u * BR) {
      // Entry (P.rowStart · stride + item)'s words for keys k0 .. k0 + 63 of its block.
      let r = lid / 2u;
      let word = k0 / 32u + lid % 2u;
      var bits = 0u;
      if (rowOut[r] != INVALID && word < P.maskWords) { bits = masks[(P.rowStart * P.stride + rowOut[r] / P.vectors) * P.maskWords + word]; }
      maskTile[lid] = bits;
    }` : ''}
    workgroupBarrier();`}
${zeroScores('    ')}
${scoreTileWgsl(o.tile, 'D', (r, e) => `qAt(${r}, ${e})`, (c, e) => `kAt(${c}, ${e}, kvBase)`, vectorized)}
${prefetchFirst}
    let keys = vec4<u32>(keyIdx[tx], keyIdx[tx + 16u], keyIdx[tx + 32u], keyIdx[tx + 48u]);
    let keyLive = keys != vec4<u32>(INVALID);
${forRows((i) => `    let ok${i} = keyLive & vec4<bool>(live[${i}]) & ((keys <= vec4<u32>(pos[${i}])) | vec4<bool>(P.causal == 0u))${hooks?.allow ? ` & (${hooks.allow(i)})` : ''}${masked ? ` & ${maskBits(i)}` : ''};
    s${i} = select(vec4<f32>(NEG), s${i} * P.scale, ok${i});${hooks?.onPairs ? `
    pairs += dot(select(vec4<u32>(0u), vec4<u32>(1u), ok${i}), vec4<u32>(1u));` : ''}`)}
    red[ty * 17u + tx] = vec4<f32>(max(max(s0.x, s0.y), max(s0.z, s0.w)), max(max(s1.x, s1.y), max(s1.z, s1.w)), max(max(s2.x, s2.y), max(s2.z, s2.w)), max(max(s3.x, s3.y), max(s3.z, s3.w)));
    workgroupBarrier();
    var tileMax = vec4<f32>(NEG);
    for (var j = 0u; j < TC; j++) {
      tileMax = max(tileMax, red[ty * 17u + j]);
    }
    let mNew = max(m, tileMax);
    let alpha = exp(m - mNew);
    m = mNew;
${forRows((i) => `    let p${i} = select(vec4<f32>(0.0), exp(s${i} - vec4<f32>(mNew[${i}])), ok${i});
    l[${i}] = l[${i}] * alpha[${i}] + dot(p${i}, vec4<f32>(1.0));
${oVars(i).map((name) => `    ${name} = ${name} * alpha[${i}];`).join('\n')}`)}
${[0, 1, 2, 3].map((c) => `    ps[(tx + ${16 * c}u) * (TR + 1u) + ty] = vec4<f32>(p0[${c}], p1[${c}], p2[${c}], p3[${c}]);`).join('\n')}
    for (var j0 = 0u; j0 < BC; j0 += VJ) {
      workgroupBarrier();
${storeValues}
      workgroupBarrier();
${prefetchNext}
      for (var jj = 0u; jj < VJ; jj++) {
        let pv = ps[(j0 + jj) * (TR + 1u) + ty];
${Array.from({ length: vc4 }, (_, c) => `        let v${c} = scratch[jj * (DVP / 4u) + ${c * 16}u + tx];
${forRows((i) => `        o${i}_${c} = fma(vec4<f32>(pv[${i}]), v${c}, o${i}_${c});`)}`).join('\n')}
      }
    }
  }

  workgroupBarrier();
  red[ty * 17u + tx] = l;
${hooks?.onPairs ? '  atomicAdd(&wgPairs, pairs);\n' : ''}  workgroupBarrier();
  var total = vec4<f32>(0.0);
  for (var j = 0u; j < TC; j++) {
    total += red[ty * 17u + j];
  }
${forRows((i) => `  if (live[${i}]) {
    let row = ${gather || lists ? 'rowOut' : 'rowQ'}[4u * ty + ${i}u];
    let inv = select(0.0, 1.0 / total[${i}], total[${i}] > 0.0);
${oVars(i).map((name, c) => `    for (var e = 0u; e < 4u; e++) {
      let col = ${c * 64}u + 4u * tx + e;
      if (col < DV) { out[row * DV + col] = ${name}[e] * inv; }
    }`).join('\n')}
    if (tx == 0u) { lse[row] = select(bitcast<f32>(P.pad0 | 0xff800000u), m[${i}] + log(total[${i}]), total[${i}] > 0.0); }
  }`)}${hooks?.onPairs ? `
  if (lid == 0u) {
    let pairs = atomicLoad(&wgPairs);
    ${hooks.onPairs}
  }` : ''}
}
`;
}

/** WGSL (vec4<bool>): the mask bits of tile row 4ty + i for the thread's keys tx, tx + 16 (word 0) and tx + 32, tx + 48 (word 1). */
function maskBits(i: number): string {
  const w = (word: number) => `maskTile[2u * (4u * ty + ${i}u) + ${word}u]`;
  return `((vec4<u32>((${w(0)} >> tx), (${w(0)} >> (tx + 16u)), (${w(1)} >> tx), (${w(1)} >> (tx + 16u))) & vec4<u32>(1u)) != vec4<u32>(0u))`;
}

function listHooks(o: FlashAttentionKernelOptions): FlashAttentionListHooks {
  if (!o.hooks) throw new Error("flashAttentionWgsl: the 'lists' mode needs hooks");
  return o.hooks;
}

/**
 * Staging of value chunks (VJ keys × DVP columns) into workgroup memory. When a thread's share is
 * small (≤ 16 values) it is software-pipelined like the q·k operands: the first chunk is loaded
 * into registers while the softmax of the tile runs, each next chunk while the current one is
 * multiplied; otherwise each chunk is loaded right before use.
 */
function valueStaging(o: FlashAttentionKernelOptions, dvp: number, vectorized: boolean): { prefetchFirst: string; storeValues: string; prefetchNext: string } {
  const threads = (o.tile.rows / 4) * 16;
  if (vectorized) {
    // One vec4 of four consecutive value columns per load and per workgroup store.
    const perThread4 = (o.valueChunk * dvp) / 4 / threads;
    const range4 = Array.from({ length: perThread4 }, (_, i) => i);
    const load4 = (x: string, j0: string) =>
      `let jj = ${x} / (DVP / 4u); let c4 = ${x} % (DVP / 4u); let key = keyIdx[${j0} + jj]; var value = vec4<f32>(0.0); if (key != INVALID && 4u * c4 < DV) { value = v[(kvBase + key) * (DV / 4u) + c4]; }`;
    const fetch4 = (j0: string, indent: string) => range4.map((i) => `${indent}{ ${load4(`(lid + ${i * threads}u)`, j0)} rv${i} = value; }`).join('\n');
    return {
      prefetchFirst: [...range4.map((i) => `    var rv${i}: vec4<f32>;`), fetch4('0u', '    ')].join('\n'),
      storeValues: range4.map((i) => `      scratch[lid + ${i * threads}u] = rv${i};`).join('\n'),
      prefetchNext: `      if (j0 + VJ < BC) {\n${fetch4('j0 + VJ', '        ')}\n      }`,
    };
  }
  const perThread = (o.valueChunk * dvp) / threads;
  const load = (x: string, j0: string) =>
    `let jj = ${x} / DVP; let cc = ${x} % DVP; let key = keyIdx[${j0} + jj]; var value = 0.0; if (key != INVALID && cc < DV) { value = v[(kvBase + key) * DV + cc]; }`;
  if (!Number.isInteger(perThread) || perThread > 16) {
    return {
      prefetchFirst: '',
      storeValues: `      for (var x = lid; x < VJ * DVP; x += NT) { ${load('x', 'j0')} scratch[jj * (DVP / 4u) + cc / 4u][cc % 4u] = value; }`,
      prefetchNext: '',
    };
  }
  const range = Array.from({ length: perThread }, (_, i) => i);
  const fetch = (j0: string, indent: string) => range.map((i) => `${indent}{ ${load(`(lid + ${i * threads}u)`, j0)} rv${i} = value; }`).join('\n');
  return {
    prefetchFirst: [...range.map((i) => `    var rv${i}: f32;`), fetch('0u', '    ')].join('\n'),
    storeValues: range.map((i) => `      { let x = lid + ${i * threads}u; scratch[(x / DVP) * (DVP / 4u) + (x % DVP) / 4u][(x % DVP) % 4u] = rv${i}; }`).join('\n'),
    prefetchNext: `      if (j0 + VJ < BC) {\n${fetch('j0 + VJ', '        ')}\n      }`,
  };
}

/**
 * Whether the kernel reads q, k, v as `vec4<f32>` (four channels per load): when both head dims
 * are multiples of 4 and every thread's share of an operand or value chunk is whole vec4s.
 */
export function usesVectorLoads(o: FlashAttentionKernelOptions): boolean {
  const threads = (o.tile.rows / 4) * 16;
  const dvp = Math.ceil(o.valueDim / 64) * 64;
  const whole = (n: number) => Number.isInteger(n) && n >= 1;
  return (
    o.headDim % 4 === 0 &&
    o.valueDim % 4 === 0 &&
    o.tile.chunk % 4 === 0 &&
    whole((o.tile.rows * o.tile.chunk) / 4 / threads) &&
    whole((64 * o.tile.chunk) / 4 / threads) &&
    whole((o.valueChunk * dvp) / 4 / threads)
  );
}

function densePrologue(): string {
  return /* wgsl */ `
  let queryTiles = (P.querySeq + BR - 1u) / BR;
  if (linear >= queryTiles * P.slots) { return; }
  let slot = linear / queryTiles;
  // Heaviest (latest) query tiles first, so the causal triangle's long rows start early.
  let qt = queryTiles - 1u - linear % queryTiles;
  let kvBase = (slot / P.groupSize) * P.keyStride;
  if (lid < BR) {
    let i = qt * BR + lid;
    rowQ[lid] = select(INVALID, slot * P.querySeq + i, i < P.querySeq);
    rowPos[lid] = P.queryOffset + i;
  }
  let lastQuery = min(qt * BR + BR, P.querySeq);
  let slotCount = select(P.keySeq, min(P.keySeq, P.queryOffset + lastQuery), P.causal == 1u);
  let keyBase = 0u;
  workgroupBarrier();`;
}

/**
 * The `gather` mode's workgroup → (list, tile) map: `listMeta` holds each list's first tile
 * (exclusive prefix, `lists + 1` entries, the last one the total), each list's first item
 * (`lists + 1` entries), then the list of every tile. A list is one (selection slot of the window, key block) and its items
 * are `(row − rowStart) · stride + entry` of the rows that selected the block; a tile is up to
 * `itemsPerTile` of them, each expanded to its `vectors` query vectors (GQA heads × query-block
 * queries), which write their partials at `item · vectors + vector`.
 */
function gatherPrologue(): string {
  return /* wgsl */ `${listTileWgsl('listId')}
  let selSlot = P.slotFirst + listId / P.blocks;
  let keyBlock = listId % P.blocks;
  let kvSlot = select(selSlot / P.groupSize, selSlot, P.scopeKv == 1u);
  let kvBase = kvSlot * P.keyStride;
  let keyBase = keyBlock * P.blockSize;
  let slotCount = min(P.blockSize, P.keySeq - keyBase);
  if (lid < BR) {
    let j = lid / P.vectors;
    let t = lid % P.vectors;
    rowQ[lid] = INVALID;
    rowOut[lid] = INVALID;
    rowPos[lid] = 0u;
    if (j < count) {
      let item = items[first + j];
      let r = (P.rowStart + item / P.stride) % P.selRows;
      let i = r * P.queryBlockSize + t % P.queryBlockSize;
      let querySlot = select(selSlot, selSlot * P.groupSize + t / P.queryBlockSize, P.scopeKv == 1u);
      if (i < P.querySeq) {
        rowQ[lid] = querySlot * P.querySeq + i;
        rowOut[lid] = item * P.vectors + t;
        rowPos[lid] = P.queryOffset + i;
      }
    }
  }
  workgroupBarrier();
  // The tile's last query position: key tiles past it are masked for every row (sorted lists
  // make tiles of consecutive queries, so the diagonal block stops early).
  if (lid == 0u) {
    var last = 0u;
    for (var r = 0u; r < BR; r++) {
      if (rowQ[r] != INVALID) { last = max(last, rowPos[r]); }
    }
    wgLast = last;
  }
  let lastPos = workgroupUniformLoad(&wgLast);`;
}

function csrPrologue(): string {
  return /* wgsl */ `
  let perSlot = P.selRows * P.subTiles;
  if (linear >= perSlot * P.slots) { return; }
  let slot = linear / perSlot;
  let r = (linear % perSlot) / P.subTiles;
  let sub = linear % P.subTiles;
  let rowQueries = min(P.queryBlockSize, P.querySeq - r * P.queryBlockSize);
  let heads = select(1u, P.groupSize, P.scopeKv == 1u);
  let tileRows = heads * rowQueries;
  if (sub * BR >= tileRows) { return; }
  let kvSlot = select(slot / P.groupSize, slot, P.scopeKv == 1u);
  let kvBase = kvSlot * P.keyStride;
  if (lid < BR) {
    let t = sub * BR + lid;
    let g = t / rowQueries;
    let i = r * P.queryBlockSize + t % rowQueries;
    let querySlot = select(slot, slot * P.groupSize + g, P.scopeKv == 1u);
    rowQ[lid] = select(INVALID, querySlot * P.querySeq + i, t < tileRows);
    rowPos[lid] = P.queryOffset + i;
  }
  let lastPos = P.queryOffset + r * P.queryBlockSize + rowQueries - 1u;
  if (lid == 0u) {
    let row = slot * P.selRows + r;
    wgStart = bounds[2u * row];
    wgEnd = bounds[2u * row + 1u];
  }
  let start = workgroupUniformLoad(&wgStart);
  let end = workgroupUniformLoad(&wgEnd);
  let slotCount = (end - start) * select(1u, P.blockSize, P.kindBlock == 1u);`;
}
