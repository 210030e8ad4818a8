/**
 * Split-K ("flash-decoding") attention, second pass: merges the partitions' partial softmax
 * statistics (`decode-split-k-wgsl.ts`) of one query row.
 *
 *   M = max_p m_p;  L = Σ_p l_p · e^{m_p − M}
 *   out = (Σ_p o_p · e^{m_p − M}) / L;  lse = M + ln L      (out 0, lse −∞ when L = 0)
 *
 * A workgroup owns one (query slot, row); each thread merges its own output columns over every
 * partition (there are at most a few hundred), so no cross-thread reduction is needed beyond L.
 * With `copyLse`, each row's lse is also written at `lseAll[P.lseBase + row]` (binding 4, a
 * call-wide buffer: DELTA's Δ-layers keep every query head's lse beside their dumped logits).
 */
import { memoKernel } from './memo-kernel.js';
import { DECODE_THREADS, decodePartialRecord } from './decode-split-k-wgsl.js';

/** Uniform parameter block of the merge kernel (4 × 4 bytes). */
export const DECODE_MERGE_PARAMS = ['rows', 'partitions', 'tilesX', 'pad0'] as const;
// pad0 must stay 0: the kernel builds −∞ for an empty row as bitcast(pad0 | 0xff800000) at run
// time, because WGSL rejects an infinite value in a constant expression.

/** Uniform parameter block of the merge kernel with `copyLse` (8 × 4 bytes). */
export const DECODE_MERGE_COPY_PARAMS = ['rows', 'partitions', 'tilesX', 'pad0', 'lseBase', 'pad1', 'pad2', 'pad3'] as const;

/** Generates the WGSL of the merge kernel for a value dim (`copyLse`: see the file comment). */
export const decodeMergeWgsl = memoKernel((valueDim: number, options: { readonly copyLse?: boolean } = {}): string => generateMerge(valueDim, options.copyLse === true));

function generateMerge(valueDim: number, copy: boolean): string {
  return /* wgsl */ `
const DV: u32 = ${valueDim}u;
const NT: u32 = ${DECODE_THREADS}u;
const REC: u32 = ${decodePartialRecord(valueDim)}u;

struct Params { rows: u32, partitions: u32, tilesX: u32, pad0: u32${copy ? ', lseBase: u32, pad1: u32, pad2: u32, pad3: u32' : ''} }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
${copy ? '@group(0) @binding(4) var<storage, read_write> lseAll: array<f32>;\n' : ''}
@compute @workgroup_size(${DECODE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * P.tilesX;
  if (row >= P.rows) { return; }
  let base = row * P.partitions;
  var big = -3.0e38;
  for (var p = 0u; p < P.partitions; p++) { big = max(big, partial[(base + p) * REC]); }
  var total = 0.0;
  for (var p = 0u; p < P.partitions; p++) {
    let at = (base + p) * REC;
    total += partial[at + 1u] * exp(partial[at] - big);
  }
  let inv = select(0.0, 1.0 / total, total > 0.0);
  for (var c = lid; c < DV; c += NT) {
    var acc = 0.0;
    for (var p = 0u; p < P.partitions; p++) {
      let at = (base + p) * REC;
      acc = fma(partial[at + 2u + c], exp(partial[at] - big), acc);
    }
    out[row * DV + c] = acc * inv;
  }
  if (lid == 0u) {${copy ? `
    let value = select(bitcast<f32>(P.pad0 | 0xff800000u), big + log(total), total > 0.0);
    lse[row] = value;
    lseAll[P.lseBase + row] = value;
  }` : ` lse[row] = select(bitcast<f32>(P.pad0 | 0xff800000u), big + log(total), total > 0.0); }`}
}
`;
}
