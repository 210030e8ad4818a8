/**
 * Kernel: MoBA's gating and top-k routing for a decode step (a few queries per query head), the
 * same selection as the fused tiled kernel (`moba-route-wgsl.ts`, which documents the formulas),
 * split over the blocks instead of over the queries: one workgroup per (query slot, query row).
 *
 *   gate     s[j] = q_t · mean_j for the past blocks j < IC = floor(t / B), four threads per block
 *            (strided), kept in workgroup memory
 *   top-k    the best n − 1 past blocks in the CPU's order (score descending, then the later
 *            block first): the package's workgroup radix top-k (`radix-top-k-wgsl.ts`, as NSA's
 *            decode-step top-n and the indexer) over the gates as order-preserving u32 keys
 *   row      the forced current block IC plus the past blocks of rank < n − 1, n = min(k, IC + 1,
 *            MP), ascending, as one CSR row at the fixed stride MP (the tiled kernel's layout)
 *
 * The tiled kernel gives a decode step's query one 64-row tile per query head (63 rows idle) and
 * walks the pooled means 64 blocks at a time through it, with the operand pipeline's barriers per
 * 16 channels: ~0.04 ms of a MoBA step's ~0.07 ms of kernels at 64k on the H100. Here every block
 * of a row is gated at once. Rounding differs from the tiled kernel's (another dot-product order),
 * as the tiled kernel's differs from the CPU's: selections agree up to gate ties within float32
 * rounding; exact ties (equal means) resolve the same way, toward the later block.
 * Params and bindings: the tiled kernel's ({@link mobaRouteBindingsWgsl}).
 */
import { csrRowWgsl, memoKernel } from '@sparse-attn/backend-gpu';
import { mobaRouteBindingsWgsl } from './moba-route-wgsl.js';
import { RADIX_TOP_K_WORKGROUP, radixTopKWgsl, SORTABLE_WGSL } from './radix-top-k-wgsl.js';

/** Threads per workgroup (a workgroup per query row). */
export const MOBA_ROUTE_DECODE_THREADS = 256;

/** Threads that share one block's gate (each every fourth element of the mean). */
export const MOBA_ROUTE_DECODE_SPLIT = 4;

/** Most past blocks a row may gate in workgroup memory (8 KiB); calls with more pooled blocks take the tiled kernel. */
export const MOBA_ROUTE_DECODE_BLOCKS = 2048;

/** Queries per query head up to which MoBA routes with this kernel (decode steps; the backend's split-K bound). */
export const MOBA_ROUTE_DECODE_MAX_QUERIES = 16;

/** Whether a call routes with {@link mobaRouteDecodeWgsl}: a decode step's few queries, and its pooled blocks fit workgroup memory. */
export function usesDecodeRouting(querySeq: number, pooled: number): boolean {
  return querySeq <= MOBA_ROUTE_DECODE_MAX_QUERIES && pooled <= MOBA_ROUTE_DECODE_BLOCKS;
}

/** Generates the decode-shaped routing kernel for one head dim and pick bound (MP = min(topK, blocks of the call)). */
export const mobaRouteDecodeWgsl = memoKernel(function mobaRouteDecodeWgsl(o: { readonly headDim: number; readonly maxPicks: number }): string {
  const picks = Math.max(1, o.maxPicks);
  const vectorized = o.headDim % 4 === 0;
  const element = vectorized ? 'vec4<f32>' : 'f32';
  const width = vectorized ? o.headDim / 4 : o.headDim;
  const gate = vectorized ? 'acc.x + acc.y + acc.z + acc.w' : 'acc';
  const split = MOBA_ROUTE_DECODE_SPLIT;
  const unroll = [8, 4, 2].find((u) => width % (split * u) === 0) ?? 1;
  return /* wgsl */ `
const D: u32 = ${o.headDim}u;
const W: u32 = ${width}u;
const MP: u32 = ${picks}u;
const NT: u32 = ${MOBA_ROUTE_DECODE_THREADS}u;
const SPLIT: u32 = ${MOBA_ROUTE_DECODE_SPLIT}u;

${mobaRouteBindingsWgsl(element)}

var<workgroup> gateKeys: array<u32, ${MOBA_ROUTE_DECODE_BLOCKS}>;
var<workgroup> runs: array<u32, NT>;
var<workgroup> gatePart: array<f32, NT>;
${RADIX_TOP_K_WORKGROUP}
var<workgroup> chosen: array<u32, MP>;
${SORTABLE_WGSL}

@compute @workgroup_size(${MOBA_ROUTE_DECODE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.groupSize * P.querySeq) { return; }
  // Query slot = (KV slot, query head of its group): rows as core's Selection with headScope 'query'.
  let querySlot = linear / P.querySeq;
  let i = linear % P.querySeq;
  let row = querySlot * P.querySeq + i;
  let meanBase = (querySlot / P.groupSize) * P.pooled;
  let current = (P.queryOffset + i) / P.blockSize;
  let n = min(min(P.topK, current + 1u), MP);
  // Past blocks are complete, so pooled (current ≤ pooled: the query is a key of the call);
  // room ≤ current = past, as the radix top-k needs.
  let past = min(current, P.pooled);
  let room = n - 1u;
  if (room > 0u) {
    // SPLIT threads per block, each over every SPLIT-th element of the mean (neighbours read
    // contiguous memory), their partial gates added in workgroup memory.
    let mine = lid / SPLIT;
    let slice = lid % SPLIT;
    for (var j0 = 0u; j0 < past; j0 += NT / SPLIT) {
      let j = j0 + mine;
      var acc = ${vectorized ? 'vec4<f32>(0.0)' : '0.0'};
      if (j < past) {
        let at = (meanBase + j) * W;
        for (var e = slice; e < W; e += ${split * unroll}u) {
${Array.from({ length: unroll }, (_, u) => `          let m${u} = means[at + e + ${split * u}u];`).join('\n')}
${Array.from({ length: unroll }, (_, u) => `          acc = fma(q[row * W + e + ${split * u}u], m${u}, acc);`).join('\n')}
        }
      }
      gatePart[lid] = ${gate};
      workgroupBarrier();
      if (slice == 0u && j < past) { gateKeys[j] = sortable(${Array.from({ length: split }, (_, u) => `gatePart[lid + ${u}u]`).join(' + ')}); }
      workgroupBarrier();
    }
${radixTopKWgsl('pick', 'gateKeys', 'past', 'room', (u, rank) => `chosen[${rank}] = ${u};`)}
  }
  if (lid != 0u) { return; }
  var picked: array<u32, MP>;
  picked[0] = current;
  for (var a = 0u; a < room; a++) { picked[1u + a] = chosen[a]; }
${csrRowWgsl({ picks: 'picked', count: 'n', row: 'row', indent: '  ' })}
}
`;
});
