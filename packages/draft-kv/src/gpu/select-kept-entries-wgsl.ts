/**
 * The kept entries of one KV head in WGSL, `select-kept-entries.ts` on the GPU:
 *
 *   keep = TopK_{j < n}(s_j, need) ∪ [n, n + w)          n = scored keys, w = window, ascending
 *
 * with ties going to the larger index, exactly as the CPU's `topIndices`. One workgroup per KV
 * slot finds the need-th largest score by a 4 × 8-bit radix select over order-preserving u32
 * keys of the f32 scores (histograms in workgroup atomics, no sort, O(n) per pass), then writes
 * the picks in index order with a workgroup prefix sum: every j whose key beats the threshold T,
 * and of the entries equal to T the last `need − count(> T)` (the larger indices). The window
 * follows, and the row is one CSR row (`bounds` = start, end) at `slot · stride` — the layout the
 * sparse executor reads, so the selection never leaves the GPU. With `all` set every entry is
 * kept and the scores are not read (budget ≥ length: the CPU scores nothing either).
 */

/** Uniform parameter block of the selection kernel. */
export const SELECT_PARAMS = ['slots', 'scored', 'need', 'window', 'stride', 'all', 'tilesX', 'pad0'] as const;

/** Threads per workgroup of the selection kernel. */
export const SELECT_THREADS = 256;

/** Generates the WGSL of the selection kernel. */
export function selectKeptEntriesWgsl(): string {
  return /* wgsl */ `
const NT: u32 = ${SELECT_THREADS}u;
struct Params {
  slots: u32, scored: u32, need: u32, window: u32,
  stride: u32, all: u32, tilesX: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

var<workgroup> bins: array<atomic<u32>, 256>;
var<workgroup> scan: array<u32, ${SELECT_THREADS}>;
var<workgroup> chosen: array<u32, 3>;

// Order-preserving map of an f32 to a u32 (larger float, larger key); −0 counts as +0, as in JS.
fn keyOf(x: f32) -> u32 {
  let b = bitcast<u32>(select(x, 0.0, x == 0.0));
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

@compute @workgroup_size(${SELECT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let slot = wid.x + wid.y * P.tilesX;
  if (slot >= P.slots) { return; }
  let base = slot * P.scored;
  let rowStart = slot * P.stride;
  let keepAll = P.all == 1u || P.need >= P.scored;
  let need = select(P.need, P.scored, keepAll);
  // Radix select: after four 8-bit passes, prefix = T (the need-th largest key), needLeft = how
  // many entries equal to T are kept, ties = how many there are.
  var prefix = 0u;
  var mask = 0u;
  var needLeft = 0u;
  var ties = 0u;
  if (!keepAll && need > 0u) {
    needLeft = need;
    for (var round = 0u; round < 4u; round++) {
      let shift = 24u - 8u * round;
      atomicStore(&bins[lid], 0u);
      workgroupBarrier();
      for (var j = lid; j < P.scored; j += NT) {
        let key = keyOf(scores[base + j]);
        if ((key & mask) == prefix) { atomicAdd(&bins[(key >> shift) & 255u], 1u); }
      }
      workgroupBarrier();
      if (lid == 0u) {
        var above = 0u;
        var digit = 255u;
        loop {
          let count = atomicLoad(&bins[digit]);
          if (above + count >= needLeft || digit == 0u) {
            chosen[0] = digit;
            chosen[1] = needLeft - above;
            chosen[2] = count;
            break;
          }
          above += count;
          digit -= 1u;
        }
      }
      workgroupBarrier();
      prefix |= chosen[0] << shift;
      mask |= 255u << shift;
      needLeft = chosen[1];
      ties = chosen[2];
      workgroupBarrier();
    }
  }
  // Ties at T skipped (the smallest indices) so that the larger indices win, as on the CPU.
  let skip = ties - needLeft;
  var gtRun = 0u;
  var tieRun = 0u;
  for (var j0 = 0u; j0 < P.scored; j0 += NT) {
    let j = j0 + lid;
    // Packed flags: 0x10000 = above the threshold (or kept outright), 1 = a tie at T.
    var flag = 0u;
    if (j < P.scored && need > 0u) {
      if (keepAll) {
        flag = 0x10000u;
      } else {
        let key = keyOf(scores[base + j]);
        if (key > prefix) { flag = 0x10000u; } else if (key == prefix) { flag = 1u; }
      }
    }
    scan[lid] = flag;
    workgroupBarrier();
    for (var offset = 1u; offset < NT; offset *= 2u) {
      var add = 0u;
      if (lid >= offset) { add = scan[lid - offset]; }
      workgroupBarrier();
      scan[lid] += add;
      workgroupBarrier();
    }
    let before = scan[lid] - flag;
    let gtBefore = gtRun + (before >> 16u);
    let tieBefore = tieRun + (before & 0xffffu);
    if (flag == 0x10000u) {
      indices[rowStart + gtBefore + select(0u, tieBefore - skip, tieBefore > skip)] = j;
    } else if (flag == 1u && tieBefore >= skip) {
      indices[rowStart + gtBefore + tieBefore - skip] = j;
    }
    let total = scan[NT - 1u];
    gtRun += total >> 16u;
    tieRun += total & 0xffffu;
    workgroupBarrier();
  }
  for (var t = lid; t < P.window; t += NT) { indices[rowStart + need + t] = P.scored + t; }
  if (lid == 0u) {
    bounds[2u * slot] = rowStart;
    bounds[2u * slot + 1u] = rowStart + need + P.window;
  }
}
`;
}
