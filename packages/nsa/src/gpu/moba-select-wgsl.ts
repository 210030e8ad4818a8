/**
 * Kernel: MoBA's top-k routing on the GPU (arXiv:2502.13189; the WGSL twin of `moba.ts`), from
 * the gate scores `moba-scores-wgsl.ts` wrote:
 *
 *   gate      s_t^h[j] = q_t^h · mean(K[j·B, (j+1)·B))     for past blocks j < IC = floor(t / B)
 *   forced    s_t^h[IC] = +∞  (the current block, causally masked by the executor)
 *   routing   I_t^h = top-k_{j ≤ IC} s_t^h[j],  k' = min(k, IC + 1), ties toward the later block
 *
 * One thread per selection row (query head h of a KV slot, query t): it walks the row's past
 * blocks in order keeping the best k' in registers, ordered (score descending, index descending)
 * like the CPU's `TopKSelector` — a later block with an equal score ranks above the kept one —
 * then writes the picks ascending as one CSR row (`bounds` = start, end; `indices`) at a fixed
 * stride, the layout the backend's sparse executor reads.
 */

/** Uniform parameter block of the MoBA routing kernel (u32 fields). */
export const MOBA_SELECT_PARAMS = ['querySeq', 'queryOffset', 'groupSize', 'slots', 'tilesX', 'blockSize', 'pooled', 'topK', 'stride', 'pad0', 'pad1', 'pad2'] as const;

/** Threads per workgroup of the MoBA routing kernel (one row each). */
export const MOBA_SELECT_THREADS = 64;

/** Generates the routing kernel; `maxPicks` bounds the picks per row (min(topK, blocks), the CSR stride). */
export function mobaSelectWgsl(o: { maxPicks: number }): string {
  const picks = Math.max(1, o.maxPicks);
  return /* wgsl */ `
const MP: u32 = ${picks}u;
const BIG: f32 = 3.0e38;

struct Params {
  querySeq: u32, queryOffset: u32, groupSize: u32, slots: u32,
  tilesX: u32, blockSize: u32, pooled: u32, topK: u32,
  stride: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

@compute @workgroup_size(${MOBA_SELECT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * P.tilesX) * ${MOBA_SELECT_THREADS}u + lid;
  if (row >= P.slots * P.groupSize * P.querySeq) { return; }
  // Rows are (query slot, query) like core's Selection with headScope 'query'.
  let current = (P.queryOffset + row % P.querySeq) / P.blockSize;
  let n = min(min(P.topK, current + 1u), MP);
  var keys: array<f32, ${picks}>;
  var picked: array<u32, ${picks}>;
  keys[0] = BIG;
  picked[0] = current;
  var kept = 1u;
  let base = row * P.pooled;
  for (var j = 0u; j < current; j++) {
    let s = scores[base + j];
    var p = kept;
    if (kept == n) {
      if (n == 1u || s < keys[n - 1u]) { continue; }
      p = n - 1u;
    } else {
      kept++;
    }
    while (p > 0u && s >= keys[p - 1u]) {
      keys[p] = keys[p - 1u];
      picked[p] = picked[p - 1u];
      p--;
    }
    keys[p] = s;
    picked[p] = j;
  }
  // Ascending block order for the CSR row.
  for (var a = 1u; a < n; a++) {
    let x = picked[a];
    var b = a;
    while (b > 0u && picked[b - 1u] > x) { picked[b] = picked[b - 1u]; b--; }
    picked[b] = x;
  }
  let start = row * P.stride;
  for (var a = 0u; a < n; a++) { indices[start + a] = picked[a]; }
  bounds[2u * row] = start;
  bounds[2u * row + 1u] = start + n;
}
`;
}
