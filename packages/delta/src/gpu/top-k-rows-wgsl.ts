/**
 * Kernel: the exact top-k of each selection row, with a forced recency window, written as one CSR
 * row of the GPU selection (DELTA's `selectPages`, TidalDecode's token top-k; `top-k.ts`):
 *
 *   n = ⌈visible / unit⌉ units (pages, or tokens with unit 1);  keep = min(n, budget)
 *   recent = min(recentUnits, keep);  older = n − recent
 *   θ = the (keep − recent)-th largest score among units [0, older)
 *   picks = {u < older : score_u > θ} ∪ (the lowest-index {u : score_u = θ} until keep − recent),
 *           then the recent units older .. n − 1;  ascending
 *
 * Ties go to the lower index and NaN ranks as −∞, as core's `selectTopK` with `'lower'`. θ is
 * found by a radix select on the scores' order-preserving u32 keys (four 8-bit digits, a 256-bin
 * workgroup histogram per digit), so a row costs five passes over its scores whatever the budget
 * (DELTA's 64 of 4096 pages, TidalDecode's 4096 of 65536 tokens). The picks are then compacted in
 * index order with two workgroup prefix sums per 256-unit tile (tie ranks, output positions), so
 * the row comes out sorted without a sort. One workgroup of 256 threads per row.
 */

/** Uniform parameter block of the top-k kernel (16 × 4 bytes). */
export const TOP_K_ROWS_PARAMS = [
  'slots', 'rows', 'rowStart', 'querySeq',
  'queryOffset', 'valueSlotBase', 'valueSlotDiv', 'valueStride',
  'unit', 'budget', 'recent', 'stride',
  'tilesX', 'pad0', 'pad1', 'pad2',
] as const;

/** Threads per workgroup of the top-k kernel. */
export const TOP_K_ROWS_THREADS = 256;

/**
 * Generates the WGSL of the top-k kernel. Row r of output slot s reads the scores of row r of
 * value slot ⌊(valueSlotBase + s) / valueSlotDiv⌋ (`valueStride` apart) and writes selection row
 * `s · querySeq + rowStart + r` at `stride` entries per row.
 */
export function topKRowsWgsl(): string {
  return /* wgsl */ `
const NT: u32 = ${TOP_K_ROWS_THREADS}u;

struct Params {
  slots: u32, rows: u32, rowStart: u32, querySeq: u32,
  queryOffset: u32, valueSlotBase: u32, valueSlotDiv: u32, valueStride: u32,
  unit: u32, budget: u32, recent: u32, stride: u32,
  tilesX: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> scan: array<u32, ${TOP_K_ROWS_THREADS}>;
var<workgroup> chosenDigit: u32;
var<workgroup> chosenRank: u32;

// Order-preserving key of a float: larger float, larger key; NaN as −∞; −0 as +0.
fn sortable(x: f32) -> u32 {
  if (x != x) { return 0x007fffffu; }
  if (x == 0.0) { return 0x80000000u; }
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// Inclusive prefix sum of scan[0..NT) (Hillis–Steele); every thread must call it.
fn prefixSum(lid: u32) {
  for (var off = 1u; off < NT; off = off * 2u) {
    let x = select(0u, scan[lid - select(0u, off, lid >= off)], lid >= off);
    workgroupBarrier();
    scan[lid] = scan[lid] + x;
    workgroupBarrier();
  }
}

@compute @workgroup_size(${TOP_K_ROWS_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.rows) { return; }
  let s = linear / P.rows;
  let r = linear % P.rows;
  let visible = P.queryOffset + P.rowStart + r + 1u;
  let n = (visible + P.unit - 1u) / P.unit;
  let keep = min(n, P.budget);
  let recent = min(P.recent, keep);
  let older = n - recent;
  let kTop = keep - recent;
  let vBase = (((P.valueSlotBase + s) / P.valueSlotDiv) * P.rows + r) * P.valueStride;
  let outRow = s * P.querySeq + P.rowStart + r;
  let outStart = outRow * P.stride;

  // θ and how many units equal to θ to take: everything when the budget covers the older units,
  // nothing when it is all recency window.
  var theta = 0u;
  var ties = 0u;
  if (kTop == 0u) { theta = 0xffffffffu; }
  if (kTop > 0u && kTop < older) {
    var prefix = 0u;
    var mask = 0u;
    var rank = kTop;
    for (var digitPass = 0u; digitPass < 4u; digitPass++) {
      let shift = 24u - 8u * digitPass;
      atomicStore(&hist[lid], 0u);
      workgroupBarrier();
      for (var t = lid; t < older; t += NT) {
        let key = sortable(values[vBase + t]);
        if ((key & mask) == prefix) { atomicAdd(&hist[(key >> shift) & 255u], 1u); }
      }
      workgroupBarrier();
      if (lid == 0u) {
        var above = 0u;
        var digit = 0u;
        var left = rank;
        for (var j = 0u; j < 256u; j++) {
          let bin = 255u - j;
          let h = atomicLoad(&hist[bin]);
          if (above + h >= rank) {
            digit = bin;
            left = rank - above;
            break;
          }
          above += h;
        }
        chosenDigit = digit;
        chosenRank = left;
      }
      workgroupBarrier();
      prefix = prefix | (chosenDigit << shift);
      mask = mask | (255u << shift);
      rank = chosenRank;
      workgroupBarrier();
    }
    theta = prefix;
    ties = rank;
  }

  var written = 0u;
  var tieBase = 0u;
  for (var t0 = 0u; t0 < older; t0 += NT) {
    let t = t0 + lid;
    var above = false;
    var tie = false;
    if (t < older) {
      let key = sortable(values[vBase + t]);
      above = key > theta;
      tie = key == theta;
    }
    scan[lid] = select(0u, 1u, tie);
    workgroupBarrier();
    prefixSum(lid);
    let tieRank = tieBase + scan[lid] - select(0u, 1u, tie);
    let tieTotal = scan[NT - 1u];
    let picked = above || (tie && tieRank < ties);
    workgroupBarrier();
    scan[lid] = select(0u, 1u, picked);
    workgroupBarrier();
    prefixSum(lid);
    if (picked) { indices[outStart + written + scan[lid] - 1u] = t; }
    let pickedTotal = scan[NT - 1u];
    workgroupBarrier();
    written += pickedTotal;
    tieBase += tieTotal;
  }
  for (var j = lid; j < recent; j += NT) { indices[outStart + kTop + j] = older + j; }
  if (lid == 0u) {
    bounds[2u * outRow] = outStart;
    bounds[2u * outRow + 1u] = outStart + keep;
  }
}
`;
}
