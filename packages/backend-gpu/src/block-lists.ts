/**
 * The per-key-block lists of a window of block-selection rows (`kernels/gather-lists-wgsl.ts`:
 * count → scan → tile map → scatter → sort), recorded through a small recorder so that the
 * backend's key-block executor and a family's own block-major kernels (the hierarchical indexer's
 * stage-2 scoring) build them the same way. A list is one (selection slot of the window, key
 * block); its items are `(row − rowStart) · stride + entry` of the rows that selected the block;
 * `listMeta` holds each list's first tile, each list's first item, then the list of every tile
 * (see the `gather` mode's prologue in `flash-attention-wgsl.ts`).
 */
import { GATHER_LIST_PARAMS, GATHER_THREADS, gatherListsWgsl, gatherScanWgsl, gatherSortWgsl, gatherTileMapWgsl } from './kernels/gather-lists-wgsl.js';
import { dispatchGrid } from './kernels/score-tile-wgsl.js';

/** A window of rows of a block selection (CSR, fixed `stride`) and how its items become tiles. */
export interface BlockListWindow {
  /** First row of the window (chunk-relative, rows ordered (slot, row of the slot)). */
  readonly rowStart: number;
  readonly rows: number;
  /** Entries per row of the CSR buffers. */
  readonly stride: number;
  /** Selection rows per slot. */
  readonly selRows: number;
  /** Key blocks per slot. */
  readonly blocks: number;
  /** Items per tile of a list. */
  readonly itemsPerTile: number;
  /** Query vectors per item (the attention kernel's; 1 for a family's per-row items). */
  readonly vectors: number;
  readonly queryBlockSize: number;
  readonly querySeq: number;
  readonly groupSize: number;
  readonly scopeKv: boolean;
}

/** Records one pass: `run(name, pipeline, bindings, [x, y])`; buffers and uniforms freed after the work. */
export interface BlockListRecorder {
  scratch(bytes: number): GPUBuffer;
  uniform(fields: readonly string[], values: Readonly<Record<string, number>>): GPUBuffer;
  run(name: string, pipeline: GPUComputePipeline, bindings: readonly (GPUBuffer | undefined)[], grid: readonly [number, number]): void;
}

/** The compiled list passes. */
export interface BlockListPipelines {
  readonly count: GPUComputePipeline;
  readonly scan: GPUComputePipeline;
  readonly tileMap: GPUComputePipeline;
  readonly scatter: GPUComputePipeline;
  readonly sort: GPUComputePipeline;
}

/** What {@link recordBlockLists} built. */
export interface BlockLists {
  readonly listMeta: GPUBuffer;
  readonly lists: number;
  /** Upper bound of the tiles over all lists (dispatch this many workgroups; the rest idle). */
  readonly maxTiles: number;
  readonly slotFirst: number;
  /** The window's uniform block (`GATHER_LIST_PARAMS`, or `fields` with `extra` values) for a dispatch of `grid`. */
  params(grid: readonly [number, number], fields?: readonly string[], extra?: Readonly<Record<string, number>>): GPUBuffer;
}

/** Compiles the list passes through `pipeline` (cached per source by the caller). */
export async function blockListPipelines(pipeline: (code: string) => Promise<GPUComputePipeline>): Promise<BlockListPipelines> {
  const [count, scan, tileMap, scatter, sort] = await Promise.all([
    pipeline(gatherListsWgsl({ scatter: false })),
    pipeline(gatherScanWgsl()),
    pipeline(gatherTileMapWgsl()),
    pipeline(gatherListsWgsl({ scatter: true })),
    pipeline(gatherSortWgsl()),
  ]);
  return { count, scan, tileMap, scatter, sort };
}

/**
 * Strides of the count/scatter passes' row permutation (primes, so one of them is coprime with
 * any window's row count); rows · stride stays below 2³² for the ≤ 2²² rows of a window.
 */
const SPREAD_PRIMES = [1009, 1013, 1019, 1021] as const;

/**
 * Records the lists of one window into `items` (at least `rows · stride` u32). `sort` (default
 * true) orders each list of at most 2048 items ascending, so a tile holds consecutive queries.
 */
export function recordBlockLists(rec: BlockListRecorder, pipelines: BlockListPipelines, selection: { readonly bounds: GPUBuffer; readonly indices: GPUBuffer }, items: GPUBuffer, w: BlockListWindow, o: { readonly sort?: boolean } = {}): BlockLists {
  const slotFirst = Math.floor(w.rowStart / w.selRows);
  const lists = (Math.floor((w.rowStart + w.rows - 1) / w.selRows) - slotFirst + 1) * w.blocks;
  const counts = rec.scratch(lists * 4);
  const cursors = rec.scratch(lists * 4);
  // Upper bound of the tiles: Σ ⌈n / itemsPerTile⌉ ≤ items / itemsPerTile + lists.
  const maxTiles = Math.ceil((w.rows * w.stride) / w.itemsPerTile) + lists;
  const listMeta = rec.scratch((2 * lists + 2 + maxTiles) * 4);
  const spread = SPREAD_PRIMES.find((p) => w.rows % p !== 0)!;
  const common = {
    rowStart: w.rowStart,
    rows: w.rows,
    stride: w.stride,
    selRows: w.selRows,
    slotFirst,
    blocks: w.blocks,
    lists,
    itemsPerTile: w.itemsPerTile,
    vectors: w.vectors,
    queryBlockSize: w.queryBlockSize,
    querySeq: w.querySeq,
    groupSize: w.groupSize,
    scopeKv: w.scopeKv ? 1 : 0,
    spread,
  };
  const params = (grid: readonly [number, number], fields: readonly string[] = GATHER_LIST_PARAMS, extra: Readonly<Record<string, number>> = {}) =>
    rec.uniform(fields, { ...extra, ...common, tilesX: grid[0] });
  const perItem = dispatchGrid(Math.ceil((w.rows * w.stride) / GATHER_THREADS));
  const listParams = params(perItem);
  rec.run('count', pipelines.count, [listParams, selection.bounds, selection.indices, counts], perItem);
  rec.run('scan', pipelines.scan, [listParams, counts, listMeta], [1, 1]);
  const perList = dispatchGrid(Math.ceil(lists / GATHER_THREADS));
  rec.run('tile map', pipelines.tileMap, [params(perList), listMeta], perList);
  rec.run('scatter', pipelines.scatter, [listParams, selection.bounds, selection.indices, cursors, listMeta, items], perItem);
  if (o.sort !== false) {
    const listGrid = dispatchGrid(lists);
    rec.run('sort', pipelines.sort, [params(listGrid), listMeta, items], listGrid);
  }
  return { listMeta, lists, maxTiles, slotFirst, params };
}
