/**
 * Kernel: MoBA's gating and top-k routing fused in one pass (arXiv:2502.13189; the WGSL twin of
 * `moba.ts`'s routing), with no gate-score buffer:
 *
 *   gate      s_t^h[j] = q_t^h · mean(K[j·B, (j+1)·B))     for past blocks j < IC = floor(t / B)
 *   forced    s_t^h[IC] = +∞  (the current block, causally masked by the executor)
 *   routing   I_t^h = top-k_{j ≤ IC} s_t^h[j],  k' = min(k, IC + 1), ties toward the later block
 *
 * A workgroup owns 64 consecutive queries of one query head and walks the pooled means 64 blocks
 * at a time through backend-gpu's 4×4-per-thread micro-tile (`scoreTileWgsl`, each mean read once
 * per 64 queries). Column tiles past the last query's own block are skipped: no query of the tile
 * can route to them.
 *
 * Routing without a score tile: after each column tile, thread (tx, ty) holds the gates of rows
 * 4ty + r (r < 4) for the blocks j = j0 + tx + 16c (c < 4) in its registers `s{r}[c]`. Per row it
 * keeps its own best K = MP − 1 past blocks (MP = min(k, blocks of the call), the CSR stride) as
 * K sorted (score, block) register pairs, empty slots marked by the block 0xffffffff. A block is
 * a candidate of row r only when j < IC of that row (and the row exists). Within one thread the
 * candidates arrive in ascending j, so a new one ranks above a kept one iff its score is ≥ — the
 * CPU's `TopKSelector` order (score descending, the later block first). The insertion is written
 * out slot by slot (constant indices, one compare-and-select per slot) for K ≤ 15, so the pairs
 * stay in registers; for K > 15 it is a loop over private arrays (correct, slower). The per-tile
 * work beyond the micro-tile is 16 such insertions per thread, most rejected by one comparison
 * with the thread's K-th kept score: no workgroup store, no barrier, no serial scan.
 *
 * After the last tile the rows are merged: thread lid < 64 owns query i0 + lid, keeps the forced
 * current block first and the best n − 1 past blocks (n = min(k, IC + 1, MP)). In 16 rounds, the
 * threads tx = t write their 4 rows' K candidates to workgroup memory (64 rows × min(K, 15)
 * pairs; K > 15 in several passes), and each owner inserts its row's with the full order (score
 * descending, then the larger block first: candidates of different threads interleave in j). It
 * then writes its picks ascending as one CSR row (`bounds` = start, end; `indices`) at a fixed
 * stride, the layout the backend's sparse executor reads.
 *
 * A thread's K best hold every pick of its row: a block among the row's best n − 1 ≤ K has fewer
 * than K blocks ranked above it overall, so fewer than K in its own thread.
 */
import { csrRowWgsl, forRows, linearWorkgroup, operandScratchVec4, scoreTileWgsl, tileConstants, type TileShape, zeroScores, memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the routing kernel (u32 fields). */
export const MOBA_ROUTE_PARAMS = ['querySeq', 'queryOffset', 'groupSize', 'slots', 'tilesX', 'blockSize', 'pooled', 'topK', 'stride', 'pad0', 'pad1', 'pad2'] as const;

/**
 * The routing kernels' uniform block ({@link MOBA_ROUTE_PARAMS}) and bindings, shared by the tiled
 * kernel and the decode-shaped one (`moba-route-decode-wgsl.ts`): q and the pooled means as
 * `element` (`vec4<f32>` or `f32`), the CSR rows' bounds and indices.
 */
export function mobaRouteBindingsWgsl(element: string): string {
  return /* wgsl */ `struct Params {
  querySeq: u32, queryOffset: u32, groupSize: u32, slots: u32,
  tilesX: u32, blockSize: u32, pooled: u32, topK: u32,
  stride: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<${element}>;
@group(0) @binding(2) var<storage, read> means: array<${element}>;
@group(0) @binding(3) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(4) var<storage, read_write> indices: array<u32>;`;
}

const TILE: TileShape = { rows: 64, chunk: 16 };

/** Query rows per workgroup of the routing kernel (one query head's consecutive queries). */
export const MOBA_ROUTE_ROWS = TILE.rows;

/**
 * Largest K = maxPicks − 1 whose per-thread candidates are written out slot by slot (registers),
 * and the candidate pairs per row of one merge pass in workgroup memory. Chosen so that the kernel
 * fits WebGPU's minimum 16 KiB of workgroup memory whatever the top-k.
 */
export const MOBA_ROUTE_UNROLLED_CANDIDATES = 15;

/** Candidate pairs per row that one merge pass moves through workgroup memory. */
function mergeWidth(maxPicks: number): number {
  return Math.min(Math.max(0, maxPicks - 1), MOBA_ROUTE_UNROLLED_CANDIDATES);
}

/**
 * Workgroup memory of the routing kernel for a pick bound: the micro-tile's operand chunks
 * (8 704 B) and the merge buffer, 64 rows × min(maxPicks − 1, 15) (score, block) pairs of 8 B
 * (1 024 B for top-k 3: 9 728 B in all; none for top-k 1).
 */
export function mobaRouteWorkgroupBytes(maxPicks: number): number {
  return 16 * operandScratchVec4(TILE) + 8 * TILE.rows * mergeWidth(maxPicks);
}

/**
 * The most workgroup memory the routing kernel takes for any top-k (16 384 B: the merge buffer
 * is capped at 15 pairs per row), so one check against the device covers every call.
 */
export const MOBA_ROUTE_WORKGROUP_BYTES = mobaRouteWorkgroupBytes(MOBA_ROUTE_UNROLLED_CANDIDATES + 1);

/** Options of {@link mobaRouteWgsl}. */
export interface MobaRouteKernelOptions {
  /** Channels of q and of the pooled means (vec4 loads when a multiple of 4). */
  readonly headDim: number;
  /** Bound on the picks per row: min(topK, blocks of the call), the CSR stride. */
  readonly maxPicks: number;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** WGSL that keeps candidate (s, j) in row r's K sorted register pairs `ck{r}_{p}` / `cb{r}_{p}` (j above every kept block). */
function unrolledInsert(r: number, K: number): string {
  const beats = (p: number) => `(cb${r}_${p} == INVALID || s >= ck${r}_${p})`;
  const flags = range(K - 1).map((p) => `        let w${p} = ${beats(p)};`);
  // Slot p takes slot p − 1's pair when the candidate beats both, the candidate when it beats p alone.
  const moves = range(K)
    .reverse()
    .flatMap((p) => {
      const shifted = (key: 'ck' | 'cb', own: string) => (p === 0 ? own : `select(${own}, ${key}${r}_${p - 1}, w${p - 1})`);
      if (p === K - 1) return [`        ck${r}_${p} = ${shifted('ck', 's')};`, `        cb${r}_${p} = ${shifted('cb', 'j')};`];
      return [`        ck${r}_${p} = select(ck${r}_${p}, ${shifted('ck', 's')}, w${p});`, `        cb${r}_${p} = select(cb${r}_${p}, ${shifted('cb', 'j')}, w${p});`];
    });
  return [`      if (j < cur${r} && ${beats(K - 1)}) {`, ...flags, ...moves, '      }'].join('\n');
}

/** The same insertion as a loop over private arrays `ck{r}` / `cb{r}` (K > 15). */
function loopInsert(r: number): string {
  return `      if (j < cur${r} && (cb${r}[K - 1u] == INVALID || s >= ck${r}[K - 1u])) {
        var p = K - 1u;
        while (p > 0u && (cb${r}[p - 1u] == INVALID || s >= ck${r}[p - 1u])) {
          ck${r}[p] = ck${r}[p - 1u];
          cb${r}[p] = cb${r}[p - 1u];
          p--;
        }
        ck${r}[p] = s;
        cb${r}[p] = j;
      }`;
}

/**
 * Generates the fused gate + routing kernel for one head dim and pick bound (kept per options: the
 * unrolled source takes ~0.1 ms to build, more than a decode step's routing on the GPU).
 */
export const mobaRouteWgsl = memoKernel((o: MobaRouteKernelOptions): string => generateRoute(o));

function generateRoute(o: MobaRouteKernelOptions): string {
  const picks = Math.max(1, o.maxPicks);
  const K = picks - 1;
  const KW = mergeWidth(picks);
  const unrolled = K <= MOBA_ROUTE_UNROLLED_CANDIDATES;
  const vectorized = o.headDim % 4 === 0;
  const element = vectorized ? 'vec4<f32>' : 'f32';
  const zero = vectorized ? 'vec4<f32>(0.0)' : '0.0';
  const at = (base: string) => (vectorized ? `${base} * (D / 4u) + e / 4u` : `${base} * D + e`);

  // Per-thread candidate state, its update after each column tile, and the merge's writes.
  let state = '';
  let update = '';
  let merge = '';
  if (K > 0) {
    state = [
      forRows((r) => `  let cur${r} = select(0u, (P.queryOffset + i0 + 4u * ty + ${r}u) / P.blockSize, i0 + 4u * ty + ${r}u < P.querySeq);`),
      unrolled
        ? forRows((r) => range(K).map((p) => `  var ck${r}_${p} = 0.0;\n  var cb${r}_${p} = INVALID;`).join('\n'))
        : forRows((r) => `  var ck${r}: array<f32, ${K}>;\n  var cb${r}: array<u32, ${K}>;\n  for (var p = 0u; p < K; p++) { cb${r}[p] = INVALID; }`),
    ].join('\n');
    update = forRows((r) =>
      range(4)
        .map((c) => `    {\n      let j = j0 + tx + ${16 * c}u;\n      let s = s${r}[${c}];\n${unrolled ? unrolledInsert(r, K) : loopInsert(r)}\n    }`)
        .join('\n'),
    );
    const write = unrolled
      ? forRows((r) => range(K).map((p) => `      candKey[(4u * ty + ${r}u) * KW + ${p}u] = ck${r}_${p};\n      candBlock[(4u * ty + ${r}u) * KW + ${p}u] = cb${r}_${p};`).join('\n'))
      : forRows(
          (r) => `      for (var p = 0u; p < KW; p++) {
        let x = (4u * ty + ${r}u) * KW + p;
        if (k0 + p < K) { candKey[x] = ck${r}[k0 + p]; candBlock[x] = cb${r}[k0 + p]; } else { candBlock[x] = INVALID; }
      }`,
        );
    const round = /* wgsl */ `
    if (tx == t) {
${write}
    }
    workgroupBarrier();
    if (owner) {
      // A thread's candidates come best first: the first one that misses ends its list.
      for (var p = 0u; p < KW; p++) {
        let j = candBlock[lid * KW + p];
        if (j == INVALID) { break; }
        let s = candKey[lid * KW + p];
        var a = kept;
        if (kept == n) {
          if (n == 1u || !ranksAbove(s, j, keys[n - 1u], picked[n - 1u])) { break; }
          a = n - 1u;
        } else {
          kept++;
        }
        while (a > 0u && ranksAbove(s, j, keys[a - 1u], picked[a - 1u])) {
          keys[a] = keys[a - 1u];
          picked[a] = picked[a - 1u];
          a--;
        }
        keys[a] = s;
        picked[a] = j;
      }
    }
    workgroupBarrier();`;
    // K > 15: each round moves a thread's list KW pairs at a time.
    merge = /* wgsl */ `
  // Merge: in round t the threads tx = t hand their rows' candidates to the rows' owners.
  for (var t = 0u; t < TC; t++) {${unrolled ? round : `\n    for (var k0 = 0u; k0 < K; k0 += KW) {${round.replaceAll('\n', '\n  ')}\n    }`}
  }`;
  }

  return /* wgsl */ `
${tileConstants(TILE)}
const D: u32 = ${o.headDim}u;
const MP: u32 = ${picks}u;
const K: u32 = ${K}u;
const KW: u32 = ${KW}u;
const BIG: f32 = 3.0e38;

${mobaRouteBindingsWgsl(element)}

var<workgroup> scratch: array<vec4<f32>, ${operandScratchVec4(TILE)}>;
${KW > 0 ? `var<workgroup> candKey: array<f32, ${TILE.rows * KW}>;\nvar<workgroup> candBlock: array<u32, ${TILE.rows * KW}>;` : ''}

fn qAt(row: u32, e: u32) -> ${element} {
  if (row == INVALID || e >= D) { return ${zero}; }
  return q[${at('row')}];
}

fn meanAt(block: u32, e: u32, meanBase: u32) -> ${element} {
  if (block >= P.pooled || e >= D) { return ${zero}; }
  return means[${at('(meanBase + block)')}];
}

/** The CPU's order: score descending, then the later block first. */
fn ranksAbove(s: f32, j: u32, keptScore: f32, keptBlock: u32) -> bool {
  return s > keptScore || (s == keptScore && j > keptBlock);
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let tx = lid % TC;
  let ty = lid / TC;
  let tiles = (P.querySeq + BR - 1u) / BR;
  if (linear >= tiles * P.slots * P.groupSize) { return; }
  // Query slot = (KV slot, query head of its group): rows as core's Selection with headScope 'query'.
  let querySlot = linear / tiles;
  let i0 = (linear % tiles) * BR;
  let meanBase = (querySlot / P.groupSize) * P.pooled;
  let lastRow = min(i0 + BR, P.querySeq) - 1u;
  // Blocks before the last query's own block: the only ones any query of the tile scores.
  let reach = min(P.pooled, (P.queryOffset + lastRow) / P.blockSize);

  // Routing state of thread lid < BR, which owns query i0 + lid.
  let i = i0 + lid;
  let owner = lid < BR && i < P.querySeq;
  let current = (P.queryOffset + i) / P.blockSize;
  let n = min(min(P.topK, current + 1u), MP);
  var keys: array<f32, ${picks}>;
  var picked: array<u32, ${picks}>;
  keys[0] = BIG;
  picked[0] = current;
  var kept = 1u;
${state}

  for (var j0 = 0u; j0 < reach; j0 += BC) {
${zeroScores('    ')}
${scoreTileWgsl(TILE, 'D', (r, e) => `qAt(select(INVALID, querySlot * P.querySeq + i0 + (${r}), i0 + (${r}) < P.querySeq), ${e})`, (c, e) => `meanAt(j0 + ${c}, ${e}, meanBase)`, vectorized)}
${update}
  }
${merge}
  if (!owner) { return; }
  // Ascending block order for the CSR row.
${csrRowWgsl({ picks: 'picked', count: 'n', row: 'querySlot * P.querySeq + i', indent: '  ' })}
}
`;
}
