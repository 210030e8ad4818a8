/**
 * Split-K ("flash-decoding") attention, second pass: merges the partitions' partial softmax
 * statistics (`decode-split-k-wgsl.ts`) of one query row.
 *
 *   M = max_p m_p;  L = Σ_p l_p · e^{m_p − M}
 *   out = (Σ_p o_p · e^{m_p − M}) / L;  lse = M + ln L      (out 0, lse −∞ when L = 0)
 *
 * A workgroup of {@link DECODE_MERGE_THREADS} threads owns one (query slot, row) and
 * {@link DECODE_MERGE_COLUMNS} of its output columns ({@link decodeMergeGrid}: the row's columns
 * spread over several workgroups). Its threads first reduce M and L over the partitions (a
 * partition per thread, each workgroup of the row redundantly: a few hundred records' m and l),
 * then each column is summed by {@link DECODE_MERGE_LANES} threads, each over every
 * LANES-th partition with its loads issued four at a time, and the lanes are added in workgroup
 * memory. One thread per row and column walking every partition (the kernel until the
 * nineteenth session) waited on memory once per partition: 0.054 ms of a 64k dense decode step
 * on the H100 (256 partitions a row), 0.015 ms of MoBA's (24).
 *
 * With `copyLse`, each row's lse is also written at `lseAll[P.lseBase + row]` (binding 4, a
 * call-wide buffer: DELTA's Δ-layers keep every query head's lse beside their dumped logits).
 */
import { memoKernel } from './memo-kernel.js';
import { decodePartialRecord } from './decode-split-k-wgsl.js';
import { dispatchGrid } from './score-tile-wgsl.js';

/** Uniform parameter block of the merge kernel (4 × 4 bytes); `tilesX` is {@link decodeMergeGrid}'s x. */
export const DECODE_MERGE_PARAMS = ['rows', 'partitions', 'tilesX', 'pad0'] as const;
// pad0 must stay 0: the kernel builds −∞ for an empty row as bitcast(pad0 | 0xff800000) at run
// time, because WGSL rejects an infinite value in a constant expression.

/** Uniform parameter block of the merge kernel with `copyLse` (8 × 4 bytes). */
export const DECODE_MERGE_COPY_PARAMS = ['rows', 'partitions', 'tilesX', 'pad0', 'lseBase', 'pad1', 'pad2', 'pad3'] as const;

/** Threads per workgroup of the merge kernel. */
export const DECODE_MERGE_THREADS = 256;
/** Output columns per workgroup. */
export const DECODE_MERGE_COLUMNS = 32;
/** Threads that share one column's sum over the partitions. */
export const DECODE_MERGE_LANES = DECODE_MERGE_THREADS / DECODE_MERGE_COLUMNS;

/** The merge dispatch of `rows` rows of `valueDim` columns: one workgroup per (row, {@link DECODE_MERGE_COLUMNS} columns). */
export function decodeMergeGrid(rows: number, valueDim: number): [number, number] {
  return dispatchGrid(rows * Math.ceil(valueDim / DECODE_MERGE_COLUMNS));
}

/** Generates the WGSL of the merge kernel for a value dim (`copyLse`: see the file comment). */
export const decodeMergeWgsl = memoKernel((valueDim: number, options: { readonly copyLse?: boolean } = {}): string => generateMerge(valueDim, options.copyLse === true));

function generateMerge(valueDim: number, copy: boolean): string {
  const lse = 'select(bitcast<f32>(P.pad0 | 0xff800000u), big + log(total), total > 0.0)';
  return /* wgsl */ `
const DV: u32 = ${valueDim}u;
const NT: u32 = ${DECODE_MERGE_THREADS}u;
const CW: u32 = ${DECODE_MERGE_COLUMNS}u;
const LANES: u32 = ${DECODE_MERGE_LANES}u;
const CHUNKS: u32 = ${Math.ceil(valueDim / DECODE_MERGE_COLUMNS)}u;
const REC: u32 = ${decodePartialRecord(valueDim)}u;

struct Params { rows: u32, partitions: u32, tilesX: u32, pad0: u32${copy ? ', lseBase: u32, pad1: u32, pad2: u32, pad3: u32' : ''} }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
${copy ? '@group(0) @binding(4) var<storage, read_write> lseAll: array<f32>;\n' : ''}
var<workgroup> red: array<f32, NT>;

@compute @workgroup_size(${DECODE_MERGE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.rows * CHUNKS) { return; }
  let row = linear / CHUNKS;
  let chunk = linear % CHUNKS;
  let base = row * P.partitions;
  var big = -3.0e38;
  for (var p = lid; p < P.partitions; p += NT) { big = max(big, partial[(base + p) * REC]); }
  red[lid] = big;
  workgroupBarrier();
  for (var w = NT / 2u; w > 0u; w = w / 2u) {
    if (lid < w) { red[lid] = max(red[lid], red[lid + w]); }
    workgroupBarrier();
  }
  big = red[0];
  workgroupBarrier();
  var total = 0.0;
  for (var p = lid; p < P.partitions; p += NT) {
    let at = (base + p) * REC;
    total += partial[at + 1u] * exp(partial[at] - big);
  }
  red[lid] = total;
  workgroupBarrier();
  for (var w = NT / 2u; w > 0u; w = w / 2u) {
    if (lid < w) { red[lid] = red[lid] + red[lid + w]; }
    workgroupBarrier();
  }
  total = red[0];
  workgroupBarrier();
  let lane = lid / CW;
  let c = chunk * CW + lid % CW;
  var acc = 0.0;
  if (c < DV) {
    var p = lane;
    for (; p + 3u * LANES < P.partitions; p += 4u * LANES) {
      let a0 = (base + p) * REC;
      let a1 = a0 + LANES * REC;
      let a2 = a1 + LANES * REC;
      let a3 = a2 + LANES * REC;
      let m0 = partial[a0];
      let m1 = partial[a1];
      let m2 = partial[a2];
      let m3 = partial[a3];
      let o0 = partial[a0 + 2u + c];
      let o1 = partial[a1 + 2u + c];
      let o2 = partial[a2 + 2u + c];
      let o3 = partial[a3 + 2u + c];
      acc = fma(o0, exp(m0 - big), acc);
      acc = fma(o1, exp(m1 - big), acc);
      acc = fma(o2, exp(m2 - big), acc);
      acc = fma(o3, exp(m3 - big), acc);
    }
    for (; p < P.partitions; p += LANES) {
      let at = (base + p) * REC;
      acc = fma(partial[at + 2u + c], exp(partial[at] - big), acc);
    }
  }
  red[lid] = acc;
  workgroupBarrier();
  if (lid < CW && c < DV) {
    var sum = 0.0;
    for (var l = 0u; l < LANES; l++) { sum += red[l * CW + lid]; }
    out[row * DV + c] = sum * select(0.0, 1.0 / total, total > 0.0);
  }
  if (chunk == 0u && lid == 0u) {${copy ? `
    let value = ${lse};
    lse[row] = value;
    lseAll[P.lseBase + row] = value;
  }` : ` lse[row] = ${lse}; }`}
}
`;
}
