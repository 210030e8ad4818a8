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
 * workgroup histogram per digit, the digit holding the rank found by a prefix sum over the bins
 * in descending order), so a row costs six passes over its scores whatever the budget (DELTA's 64
 * of 4096 pages, TidalDecode's 4096 of 65536 tokens). The picks are then compacted in index
 * order: each thread owns a contiguous run of units, counts its ties and picks, and two workgroup
 * prefix sums over the threads (tie ranks, output positions) place every pick, so the row comes
 * out sorted without a sort and with a fixed number of barriers (a row is latency-bound: DELTA's
 * Δ-layer has one row per sequence). One workgroup of 256 threads per row.
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
      // Bins in descending order, thread j owning bin 255 − j: the digit is the bin where the
      // running count first reaches the rank (exactly one thread).
      let h = atomicLoad(&hist[255u - lid]);
      scan[lid] = h;
      workgroupBarrier();
      prefixSum(lid);
      if (scan[lid] >= rank && scan[lid] - h < rank) {
        chosenDigit = 255u - lid;
        chosenRank = rank - (scan[lid] - h);
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

  // Thread lid owns units [lo, hi): count its units above θ and equal to θ.
  let span = (older + NT - 1u) / NT;
  let lo = min(lid * span, older);
  let hi = min(lo + span, older);
  var myAbove = 0u;
  var myTies = 0u;
  for (var t = lo; t < hi; t++) {
    let key = sortable(values[vBase + t]);
    myAbove += select(0u, 1u, key > theta);
    myTies += select(0u, 1u, key == theta);
  }
  workgroupBarrier();
  scan[lid] = myTies;
  workgroupBarrier();
  prefixSum(lid);
  // Ties are taken in index order until \`ties\`: this thread's first tie has rank tieBase.
  let tieBase = scan[lid] - myTies;
  let myTaken = select(0u, min(myTies, ties - tieBase), ties > tieBase);
  workgroupBarrier();
  scan[lid] = myAbove + myTaken;
  workgroupBarrier();
  prefixSum(lid);
  var at = outStart + scan[lid] - myAbove - myTaken;
  var tieRank = tieBase;
  for (var t = lo; t < hi; t++) {
    let key = sortable(values[vBase + t]);
    if (key > theta || (key == theta && tieRank < ties)) {
      indices[at] = t;
      at++;
    }
    tieRank += select(0u, 1u, key == theta);
  }
  for (var j = lid; j < recent; j += NT) { indices[outStart + kTop + j] = older + j; }
  if (lid == 0u) {
    bounds[2u * outRow] = outStart;
    bounds[2u * outRow + 1u] = outStart + keep;
  }
}
`;
}
