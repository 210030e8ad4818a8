/**
 * HiP's hierarchical key search in WGSL, one workgroup per (query head, query block) selection
 * row, exactly the CPU `selectHip` / `searchKeys` (`hip-attention.ts`, `center` representative):
 *
 *   end = queryOffset + i1 (keys visible to the block's last query),  lo = min(sinks, end),
 *   hi = max(lo, queryOffset + i0 − window),  row = [0, lo) ∪ search(lo, hi) ∪ [hi, end)
 *   search(lo, hi) = [lo, hi) when hi − lo ≤ topK, else, over key chunks c = ⌊t / cs⌋ ∈ [⌊lo/cs⌋, ⌈hi/cs⌉):
 *     frontier ← {root of level L = ⌈log2 max(2, ⌈hi/cs⌉)⌉};  per level: children of the frontier
 *     that overlap the chunk range; if more than keep = ⌈topK / cs⌉, score each child by its
 *     middle chunk, s = max_{t ∈ middle chunk ∩ [lo, hi), query i ∈ block, every queryStride-th from the last} q_i · k_t,
 *     and keep the `keep` best (ties toward the earlier child, order kept);  tokens of the final chunks ∩ [lo, hi)
 *
 * With the `bound` representative a child scores by its range-bound tree node instead (the CPU
 * `RangeBoundTree.bound`, max over the scoring queries of Σ_c max(q_c·lo_c, q_c·hi_c); tree built by
 * {@link hipBoundTreeWgsl}).
 *
 * The frontier (≤ keep), the children (≤ 2·keep) and their scores live in workgroup memory:
 * 20·keep bytes. Children are scored one per thread (`center`: the middle chunk's key rows are
 * read once per 8 scoring queries, whose dot products accumulate in registers, as vec4 when
 * D % 4 = 0); the keep best are
 * found by rank (|{y : s_y > s_x or (s_y = s_x and y < x)}| < keep), which is the CPU
 * `topKIndices` order. Building the children, compacting the kept ones into the next frontier and
 * writing the final chunks' tokens are parallel: each thread takes a contiguous run and writes at
 * its offset from a workgroup prefix sum (`exclusiveScan`), so no level has a one-thread loop.
 * Scores are float32 dot products (the CPU sums in float64), so a near-tie may order differently.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

import { paramsStructWgsl } from './wgsl-snippets.js';

/** Uniform parameter block of the HiP search kernel (`keyStride`: rows between KV slots in k, key t of slot s at row `s · keyStride + t`). */
export const HIP_SEARCH_PARAMS = [
  'querySeq', 'queryOffset', 'keySeq', 'tilesX',
  'rows', 'queryBlockSize', 'queryStride', 'groupSize',
  'topK', 'chunkSize', 'keep', 'sinkTokens',
  'windowTokens', 'stride', 'slots', 'chunks',
  'treeNodes', 'pad0', 'pad1', 'keyStride',
] as const;

/** Threads per workgroup of the HiP search kernel. */
export const HIP_SEARCH_THREADS = 256;

/** What the search kernel is specialised on. */
export interface HipSearchKernelOptions {
  readonly headDim: number;
  /** ⌈topK / chunkSize⌉: chunks kept per level. */
  readonly keep: number;
  /** ⌈queryBlockSize / queryStride⌉: the most queries that score a block (staged in workgroup memory). */
  readonly scoringQueries: number;
  /**
   * `center` (HiP): a range scores by the middle chunk's keys; `bound`: by the range-bound tree's
   * node (binding 5, {@link hipBoundTreeWgsl}), Σ_c q_c ≥ 0 ? q_c·hi_c : q_c·lo_c (default `center`).
   */
  readonly representative?: 'center' | 'bound';
}

/** Workgroup memory of the search kernel: frontier, children and scores, plus the scoring queries. */
export function hipSearchWorkgroupBytes(o: Pick<HipSearchKernelOptions, 'keep' | 'scoringQueries' | 'headDim'>): number {
  return 4 * (5 * o.keep + paddedQueries(o.scoringQueries) * o.headDim + HIP_SEARCH_THREADS + 4);
}

/** Scoring queries a key row is read for at once (their dot products accumulate in registers). */
const QUERY_GROUP = 8;

/** The scoring queries rounded up to whole groups of {@link QUERY_GROUP} (qs rows past them stay zero). */
function paddedQueries(scoringQueries: number): number {
  return Math.ceil(scoringQueries / QUERY_GROUP) * QUERY_GROUP;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Generates the WGSL of the HiP search kernel. */
export const hipSearchWgsl = memoKernel((o: HipSearchKernelOptions): string => {
  const NT = HIP_SEARCH_THREADS;
  const bound = o.representative === 'bound';
  // 'center' with D a multiple of 4 reads q and k as vec4 (the sums stay channel by channel, in order).
  const vec4 = !bound && o.headDim % 4 === 0;
  const scoreChild = bound
    ? `          var nodeAt = 0u;
          var levelNodes = P.chunks;
          for (var l = 0u; l < child; l++) {
            nodeAt += levelNodes;
            levelNodes = (levelNodes + 1u) / 2u;
          }
          nodeAt = (kvSlot * P.treeNodes + nodeAt + j) * 2u * D;
          var best = -3.4e38;
          for (var u = 0u; u < queries; u++) {
            var s = 0.0;
            for (var c = 0u; c < D; c++) {
              let x = qs[u * D + c];
              s += select(x * tree[nodeAt + c], x * tree[nodeAt + D + c], x >= 0.0);
            }
            best = max(best, s);
          }`
    : `          let a = max(cLo, j * width);
          let b = min(cHi, (j + 1u) * width);
          let middle = (a + b - 1u) >> 1u;
          let kFrom = max(lo, middle * cs);
          let kTo = min(hi, (middle + 1u) * cs);
          var best = -3.4e38;
          for (var t = kFrom; t < kTo; t++) {
            let kRow = (kBase + t) * D;
            // Up to ${QUERY_GROUP} scoring queries per read of the key row, each dot product summed over c in order.
            for (var u0 = 0u; u0 < queries; u0 += ${QUERY_GROUP}u) {
${range(QUERY_GROUP).map((u) => `              var s${u} = 0.0;`).join('\n')}
${vec4 ? `              for (var c4 = 0u; c4 < D / 4u; c4++) {
                let kc = k[kRow / 4u + c4];
${range(QUERY_GROUP).map((u) => `                { let qc = qs[(u0 + ${u}u) * (D / 4u) + c4]; s${u} += qc.x * kc.x; s${u} += qc.y * kc.y; s${u} += qc.z * kc.z; s${u} += qc.w * kc.w; }`).join('\n')}
              }` : `              for (var c = 0u; c < D; c++) {
                let kc = k[kRow + c];
${range(QUERY_GROUP).map((u) => `                s${u} += qs[(u0 + ${u}u) * D + c] * kc;`).join('\n')}
              }`}
${range(QUERY_GROUP).map((u) => `              if (u0 + ${u}u < queries) { best = max(best, s${u}); }`).join('\n')}
            }
          }`;
  return /* wgsl */ `
${paramsStructWgsl(HIP_SEARCH_PARAMS)}

const NT: u32 = ${NT}u;
const D: u32 = ${o.headDim}u;
const KEEP: u32 = ${o.keep}u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<${vec4 ? 'vec4<f32>' : 'f32'}>;
@group(0) @binding(3) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(4) var<storage, read_write> indices: array<u32>;
${bound ? '@group(0) @binding(5) var<storage, read> tree: array<f32>;' : ''}

var<workgroup> qs: array<${vec4 ? `vec4<f32>, ${(paddedQueries(o.scoringQueries) * o.headDim) / 4}` : `f32, ${paddedQueries(o.scoringQueries) * o.headDim}`}>;
var<workgroup> scan: array<u32, ${NT}>;
var<workgroup> frontier: array<u32, KEEP>;
var<workgroup> children: array<u32, ${2 * o.keep}>;
var<workgroup> score: array<f32, ${2 * o.keep}>;
var<workgroup> frontierSize: u32;
var<workgroup> childCount: u32;
var<workgroup> searched: u32;

// Exclusive prefix sum of the threads' counts in thread order; the total is left in scan[NT − 1].
fn exclusiveScan(lid: u32, count: u32) -> u32 {
  workgroupBarrier();
  scan[lid] = count;
  workgroupBarrier();
  for (var offset = 1u; offset < NT; offset = offset << 1u) {
    var add = 0u;
    if (lid >= offset) { add = scan[lid - offset]; }
    workgroupBarrier();
    scan[lid] += add;
    workgroupBarrier();
  }
  return scan[lid] - count;
}

@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * P.tilesX;
  if (row >= P.slots * P.groupSize * P.rows) { return; }
  let querySlot = row / P.rows;
  let kvSlot = querySlot / P.groupSize;
  let r = row % P.rows;
  let i0 = r * P.queryBlockSize;
  let i1 = min(P.querySeq, i0 + P.queryBlockSize);
  let end = P.queryOffset + i1;
  let lo = min(P.sinkTokens, end);
  let hi = max(lo, select(0u, P.queryOffset + i0 - P.windowTokens, P.queryOffset + i0 >= P.windowTokens));
  let start = row * P.stride;
  let kBase = kvSlot * P.keyStride;
  let qBase = querySlot * P.querySeq;
  let queries = (i1 - 1u - i0) / P.queryStride + 1u;
  let cs = P.chunkSize;
  let cLo = lo / cs;
  let cHi = (hi + cs - 1u) / cs;
  if (hi - lo > P.topK) {
    // The scoring queries (every queryStride-th from the block's last), staged once.
${vec4 ? `    for (var e4 = lid; e4 < queries * D / 4u; e4 += NT) {
      let at = (qBase + i1 - 1u - (e4 / (D / 4u)) * P.queryStride) * D + 4u * (e4 % (D / 4u));
      qs[e4] = vec4<f32>(q[at], q[at + 1u], q[at + 2u], q[at + 3u]);
    }` : `    for (var e = lid; e < queries * D; e += NT) {
      qs[e] = q[(qBase + i1 - 1u - (e / D) * P.queryStride) * D + e % D];
    }`}
    var level = 1u;
    while ((1u << level) < max(2u, cHi)) { level++; }
    if (lid == 0u) {
      frontier[0] = 0u;
      frontierSize = 1u;
    }
    while (level > 0u) {
      let child = level - 1u;
      let width = 1u << child;
      // Children of the frontier that overlap the chunk range, in order: each thread takes a
      // contiguous run of the frontier and writes its children at its prefix-sum offset.
      let frontierCount = workgroupUniformLoad(&frontierSize);
      let perNode = (frontierCount + NT - 1u) / NT;
      let f0 = min(frontierCount, lid * perNode);
      let f1 = min(frontierCount, f0 + perNode);
      var mine = 0u;
      for (var f = f0; f < f1; f++) {
        let node = frontier[f];
        for (var side = 0u; side < 2u; side++) {
          let j = 2u * node + side;
          if (j * width < cHi && (j + 1u) * width > cLo) { mine++; }
        }
      }
      var at = exclusiveScan(lid, mine);
      for (var f = f0; f < f1; f++) {
        let node = frontier[f];
        for (var side = 0u; side < 2u; side++) {
          let j = 2u * node + side;
          if (j * width < cHi && (j + 1u) * width > cLo) {
            children[at] = j;
            at++;
          }
        }
      }
      if (lid == NT - 1u) { childCount = scan[NT - 1u]; }
      let n = workgroupUniformLoad(&childCount);
      if (n > P.keep) {
        for (var x = lid; x < n; x += NT) {
          let j = children[x];
${scoreChild}
          score[x] = best;
        }
        workgroupBarrier();
        // Rank of each child (|{y : s_y > s_x or (s_y = s_x and y < x)}|, the CPU tie order); the
        // kept ones are compacted into the frontier in child order, each thread a contiguous run.
        let perChild = (n + NT - 1u) / NT;
        let x0 = min(n, lid * perChild);
        let x1 = min(n, x0 + perChild);
        // Two children per scan of the scores (the second repeats the first at the run's odd end).
        var keptFlags = 0u;
        var kept = 0u;
        for (var x = x0; x < x1; x += 2u) {
          let xb = min(x + 1u, x1 - 1u);
          let sa = score[x];
          let sb = score[xb];
          var rankA = 0u;
          var rankB = 0u;
          for (var y = 0u; y < n; y++) {
            let sy = score[y];
            if (sy > sa || (sy == sa && y < x)) { rankA++; }
            if (sy > sb || (sy == sb && y < xb)) { rankB++; }
          }
          if (rankA < P.keep) {
            keptFlags |= 1u << (x - x0);
            kept++;
          }
          if (xb != x && rankB < P.keep) {
            keptFlags |= 1u << (xb - x0);
            kept++;
          }
        }
        var out = exclusiveScan(lid, kept);
        for (var x = x0; x < x1; x++) {
          if ((keptFlags & (1u << (x - x0))) != 0u) {
            frontier[out] = children[x];
            out++;
          }
        }
        if (lid == NT - 1u) { frontierSize = scan[NT - 1u]; }
      } else {
        for (var x = lid; x < n; x += NT) { frontier[x] = children[x]; }
        if (lid == 0u) { frontierSize = n; }
      }
      level = child;
    }
    // Tokens of the final chunks ∩ [lo, hi), in order: each thread a contiguous run of chunks.
    let chunkCount = workgroupUniformLoad(&frontierSize);
    let perChunk = (chunkCount + NT - 1u) / NT;
    let c0 = min(chunkCount, lid * perChunk);
    let c1 = min(chunkCount, c0 + perChunk);
    var tokens = 0u;
    for (var f = c0; f < c1; f++) {
      let c = frontier[f];
      tokens += min(hi, (c + 1u) * cs) - max(lo, c * cs);
    }
    var m = start + lo + exclusiveScan(lid, tokens);
    for (var f = c0; f < c1; f++) {
      let c = frontier[f];
      for (var t = max(lo, c * cs); t < min(hi, (c + 1u) * cs); t++) {
        indices[m] = t;
        m++;
      }
    }
    if (lid == NT - 1u) { searched = scan[NT - 1u]; }
  } else {
    for (var t = lo + lid; t < hi; t += NT) { indices[start + t] = t; }
    if (lid == 0u) { searched = hi - lo; }
  }
  let found = workgroupUniformLoad(&searched);
  for (var t = lid; t < lo; t += NT) { indices[start + t] = t; }
  for (var t = hi + lid; t < end; t += NT) { indices[start + lo + found + t - hi] = t; }
  if (lid == 0u) {
    bounds[2u * row] = start;
    bounds[2u * row + 1u] = start + lo + found + end - hi;
  }
}
`;
});
