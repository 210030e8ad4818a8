/**
 * The geometry of one selection row of the block top-k kernels (scoring, decode-shaped scoring,
 * top-k): from `linear` (the row's index over KV slots × rows) and a uniform block `P` with
 * `selRows`, `queryBlockSize`, `querySeq`, `queryOffset`, `blockSize` and `blocks`, the WGSL lets
 * `slot`, `r`, `rowQueries` (queries in the row), `firstPos` / `lastPos` (their positions) and
 * `visible` (blocks the row's last query sees) — the CPU's `rowGeometry`.
 */
export const SELECTION_ROW_WGSL = `
  let slot = linear / P.selRows;
  let r = linear % P.selRows;
  let rowQueries = min(P.queryBlockSize, P.querySeq - r * P.queryBlockSize);
  let firstPos = P.queryOffset + r * P.queryBlockSize;
  let lastPos = firstPos + rowQueries - 1u;
  let visible = min(P.blocks, lastPos / P.blockSize + 1u);`;
