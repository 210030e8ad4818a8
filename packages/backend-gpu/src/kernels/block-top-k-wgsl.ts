/**
 * Top-k block selection in WGSL, per selection row:
 *
 *   forced(j) = j < sinkBlocks  or  j ≥ ⌊firstPos / bs⌋      (sinks and the row's own blocks)
 *   keep the n = min(visible, |forced| + topK) largest of  key(j) = forced(j) ? +BIG : score_j
 *
 * ordered by (key descending, block index ascending), so ties resolve exactly as the CPU
 * reference does. Each of the n passes is a workgroup arg-max over the candidates that come
 * after the previous pick in that order (no "taken" marks needed). The picks are sorted ascending
 * and written as one CSR row (`bounds` = start, end; `indices`), the layout the sparse executor
 * kernel reads, so selection and attention never leave the GPU.
 */
import { memoKernel } from './memo-kernel.js';
import { SELECTION_ROW_WGSL } from './selection-row-wgsl.js';
import { csrRowWgsl } from './csr-row-wgsl.js';

/** Uniform parameter block of the top-k kernel. */
export const TOP_K_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'selRows', 'queryBlockSize', 'blockSize', 'blocks',
  'topK', 'sinkBlocks', 'stride', 'pad0',
] as const;

/** Threads per workgroup of the top-k kernel. */
export const TOP_K_THREADS = 256;

/** Generates the WGSL of the top-k kernel; `maxPicks` bounds the picks per row (the CSR stride). */
export const blockTopKWgsl = memoKernel(function blockTopKWgsl(maxPicks: number): string {
  return /* wgsl */ `
struct Params {
  querySeq: u32, queryOffset: u32, slots: u32, tilesX: u32,
  selRows: u32, queryBlockSize: u32, blockSize: u32, blocks: u32,
  topK: u32, sinkBlocks: u32, stride: u32, pad0: u32,
}

const NT: u32 = ${TOP_K_THREADS}u;
const BIG: f32 = 3.0e38;
const NONE: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

var<workgroup> bestKey: array<f32, ${TOP_K_THREADS}>;
var<workgroup> bestIndex: array<u32, ${TOP_K_THREADS}>;
var<workgroup> picks: array<u32, ${maxPicks}>;

@compute @workgroup_size(${TOP_K_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.selRows * P.slots) { return; }${SELECTION_ROW_WGSL}
  let localStart = firstPos / P.blockSize;
  let forced = min(P.sinkBlocks, visible) + visible - max(localStart, min(P.sinkBlocks, visible));
  let n = min(min(visible, forced + P.topK), ${maxPicks}u);
  let scoreBase = (slot * P.selRows + r) * P.blocks;
  var prevKey = 3.4e38;
  var prevIndex = 0u;
  for (var p = 0u; p < n; p++) {
    var key = NONE;
    var index = 0xffffffffu;
    for (var j = lid; j < visible; j += NT) {
      let kj = select(scores[scoreBase + j], BIG, j < P.sinkBlocks || j >= localStart);
      let after = kj < prevKey || (kj == prevKey && j > prevIndex);
      if (after && kj > key) { key = kj; index = j; }
    }
    bestKey[lid] = key;
    bestIndex[lid] = index;
    workgroupBarrier();
    for (var width = NT / 2u; width > 0u; width = width / 2u) {
      if (lid < width) {
        let ok = bestKey[lid + width];
        let oi = bestIndex[lid + width];
        if (ok > bestKey[lid] || (ok == bestKey[lid] && oi < bestIndex[lid])) {
          bestKey[lid] = ok;
          bestIndex[lid] = oi;
        }
      }
      workgroupBarrier();
    }
    prevKey = bestKey[0];
    prevIndex = bestIndex[0];
    if (lid == 0u) { picks[p] = prevIndex; }
    workgroupBarrier();
  }
  if (lid == 0u) {
${csrRowWgsl({ picks: 'picks', count: 'n', row: 'slot * P.selRows + r', indent: '    ' })}
  }
}
`;
});
