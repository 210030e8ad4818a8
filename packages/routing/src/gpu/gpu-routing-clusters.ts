/**
 * `routing`'s cluster-major executor (`cluster-attention-wgsl.ts`): from the membership bits of
 * a KV-slot group, the clusters' key and query lists, then the window parts, the cluster parts
 * and the merge, writing the group's rows of `out` and `lse`. No selection is materialised: the
 * selected pairs are counted by the attention kernels.
 */
import { chunkKeyStride, dispatchGrid, TILE_COLUMNS, type ChunkEncoder, type GpuBackend, type ResidentAttention } from '@sparse-attn/backend-gpu';
import {
  CLUSTER_ATTENTION_PARAMS,
  CLUSTER_THREADS,
  MERGE_LANES,
  clusterAttentionHooks,
  clusterMergeWgsl,
  clusterMetaLayout,
  type ClusterMetaLayout,
  clusterTileBound,
  clusterTileEntriesWgsl,
  clusterTileOffsetsWgsl,
  windowAttentionHooks,
  windowTileRows,
} from './cluster-attention-wgsl.js';
import { LISTED_PARTS, ROUTING_PARAMS, ROUTING_THREADS, clusterCountWgsl, clusterListWgsl, clusterOffsetsWgsl, packRowFlagsWgsl } from './routing-selection-wgsl.js';
import type { RoutingConfig } from '../routing-config.js';
import type { RoutingPlan } from './gpu-routing.js';

type Buffer = ReturnType<ChunkEncoder['scratch']>;
/** A buffer or a range of one, as `dispatch` binds it. */
type Binding = NonNullable<Parameters<ChunkEncoder['dispatch']>[1][number]>;

/**
 * A chunk's membership as `runRouting` leaves it, bits per (slot, cluster, token)
 * (`balancedTopWWgsl`'s columns): keys `[kv slot][C][⌈keySeq / 32⌉]`, queries
 * `[query slot][C][⌈querySeq / 32⌉]`.
 */
export interface MembershipBits {
  readonly keyBits: Binding;
  readonly queryColumnBits: Buffer;
}

/** {@link MembershipBits} for the cluster executor: the key bits are a region of its lookup buffer. */
export interface ClusterMembership extends MembershipBits {
  readonly layout: ClusterMetaLayout;
  readonly lookup: Buffer;
}

/**
 * Allocates a chunk's {@link ClusterMembership} (`kvSlots` KV slots) with `make`, its lookup
 * buffer sized for the cluster parts' tiles at the smallest tile the backend may pick (16 rows).
 */
export function clusterMembership(make: (bytes: number) => Buffer, d: ResidentAttention['dims'], plan: Pick<RoutingPlan, 'clusters' | 'queryListCapacity'>, kvSlots: number): ClusterMembership {
  const querySlots = kvSlots * d.groupSize;
  const clusters = plan.clusters;
  const layout = clusterMetaLayout(kvSlots, querySlots, clusters, d.keySeq, d.querySeq, clusterTileBound(querySlots, plan.queryListCapacity, clusters, 16));
  const lookup = make(4 * layout.total);
  return { layout, lookup, keyBits: lookupRegion(lookup, layout.keyBits), queryColumnBits: make(4 * querySlots * clusters * Math.ceil(d.querySeq / 32)) };
}

/** A region of the lookup buffer, bound on its own for the kernel that writes it. */
function lookupRegion(lookup: Buffer, [start, length]: readonly [number, number]): Binding {
  return { buffer: lookup, offset: 4 * start, size: 4 * Math.max(1, length) };
}

/** The lookup buffer's region starts, as the kernels' parameters. */
function lookupBases(layout: ClusterMetaLayout): Record<string, number> {
  return {
    keyOffsetsAt: layout.keyOffsets[0],
    queryOffsetsAt: layout.queryOffsets[0],
    tileOffsetsAt: layout.tileOffsets[0],
    tileEntriesAt: layout.tileEntries[0],
    keyBitsAt: layout.keyBits[0],
    queryBitsAt: layout.queryBits[0],
  };
}

/** Bytes per query slot of the cluster executor's largest buffer, the partial outputs (one binding per KV-slot group). */
export function clusterPartialBytesPerQuerySlot(d: Pick<ResidentAttention['dims'], 'querySeq' | 'valueDim'>, plan: Pick<RoutingPlan, 'queryListCapacity'>): number {
  return 4 * (plan.queryListCapacity + d.querySeq) * d.valueDim;
}

/**
 * Runs the cluster-major executor on every chunk of `resident` (each a KV-slot group whose q, k,
 * v, out, lse rows start at slot `slotOffset` of the chunk's buffers). `make` allocates the
 * buffers (pooled or owned by the caller). Resolves with the list-building and attention times
 * and the selected pairs (sinks, local windows and routed keys, each once).
 */
export async function runClusterExecutor(
  backend: GpuBackend,
  resident: ResidentAttention,
  config: RoutingConfig,
  plan: RoutingPlan,
  membership: readonly ClusterMembership[],
  make: (bytes: number) => Buffer,
  slotOffset: number,
  countPairs = true,
): Promise<{ listMs: number; attentionMs: number; pairs: number }> {
  const d = resident.dims;
  const C = plan.clusters;
  const cluster = backend.listAttentionKernel(d, clusterAttentionHooks());
  const window = backend.listAttentionKernel(d, windowAttentionHooks());
  const rows = cluster.tile.rows;
  const buffers = resident.chunks.map((chunk, i) => {
    const querySlots = chunk.slots * d.groupSize;
    const { layout, lookup } = membership[i]!;
    return {
      layout,
      lookup,
      queryBits: lookupRegion(lookup, layout.queryBits),
      keyOffsets: lookupRegion(lookup, layout.keyOffsets),
      queryOffsets: lookupRegion(lookup, layout.queryOffsets),
      keyLists: make(4 * chunk.slots * plan.listCapacity),
      queryLists: make(4 * querySlots * plan.queryListCapacity),
      partOut: make(querySlots * clusterPartialBytesPerQuerySlot(d, plan)),
      partLse: make(4 * querySlots * (plan.queryListCapacity + d.querySeq)),
      pairCounts: make(4 * querySlots * (C + 1)),
      parts: make(4 * querySlots * d.querySeq * LISTED_PARTS),
    };
  });
  const shape = {
    clusters: C,
    groupSize: d.groupSize,
    keySeq: d.keySeq,
    querySeq: d.querySeq,
  };
  // Lists: key bits and lists per KV slot, query bits and lists per query slot, tile offsets.
  const listMs = await backend.runKernels(resident, async (encoder) => {
    const { chunk, index } = encoder;
    const b = buffers[index]!;
    const m = membership[index]!;
    const querySlots = chunk.slots * d.groupSize;
    const run = async (code: string, list: readonly Binding[], threads: number, values: Readonly<Record<string, number>>, perWorkgroup = false) => {
      const [x, y] = dispatchGrid(perWorkgroup ? threads : Math.ceil(threads / ROUTING_THREADS));
      const params = encoder.uniform(ROUTING_PARAMS, { ...shape, slotBase: chunk.slot0, chunkIndex: index, ...values, tilesX: x }, []);
      encoder.dispatch(await encoder.pipeline(code), [params, ...list], x, y);
    };
    const keys = { slots: chunk.slots, count: d.keySeq, capacity: plan.listCapacity };
    const queries = { slots: querySlots, count: d.querySeq, capacity: plan.queryListCapacity };
    await run(packRowFlagsWgsl(), [m.queryColumnBits, b.queryBits], querySlots * Math.ceil(C / 32) * d.querySeq, queries);
    // Lists from the membership's bit columns (32 positions per thread).
    for (const [bits, lists, offsets, values] of [
      [m.keyBits, b.keyLists, b.keyOffsets, keys],
      [m.queryColumnBits, b.queryLists, b.queryOffsets, queries],
    ] as const) {
      const counts = encoder.scratch(4 * values.slots * C);
      await run(clusterCountWgsl(), [bits, counts], values.slots * C, values, true);
      await run(clusterOffsetsWgsl(), [counts, offsets], values.slots, values);
      // The query lists also record each query's entries for the merge.
      const parts = lists === b.queryLists;
      await run(clusterListWgsl(parts), [bits, offsets, lists, ...(parts ? [b.queryBits, b.parts] : [])], values.slots * C, values, true);
    }
    const params = encoder.uniform(CLUSTER_ATTENTION_PARAMS, { slots: querySlots, clusters: C, tileRows: rows, ...lookupBases(b.layout) }, []);
    encoder.dispatch(await encoder.pipeline(clusterTileOffsetsWgsl()), [params, b.lookup], 1, 1);
    const [x, y] = dispatchGrid(Math.ceil((querySlots * C) / CLUSTER_THREADS));
    const entries = encoder.uniform(CLUSTER_ATTENTION_PARAMS, { slots: querySlots, clusters: C, tileRows: rows, tilesX: x, ...lookupBases(b.layout) }, []);
    encoder.dispatch(await encoder.pipeline(clusterTileEntriesWgsl()), [entries, b.lookup], x, y);
  });
  // Attention: window parts, cluster parts, merge (the pair counters start at 0).
  for (const [i, chunk] of resident.chunks.entries()) backend.context.device.queue.writeBuffer(buffers[i]!.pairCounts, 0, new Uint32Array(chunk.slots * d.groupSize * (C + 1)));
  const attentionMs = await backend.runKernels(resident, async (encoder) => {
    const { chunk, index } = encoder;
    const b = buffers[index]!;
    const querySlots = chunk.slots * d.groupSize;
    const values = {
      querySeq: d.querySeq,
      keySeq: d.keySeq,
      queryOffset: d.queryOffset,
      causal: d.causal ? 1 : 0,
      groupSize: d.groupSize,
      slots: querySlots,
      clusters: C,
      slotOffset,
      keyStride: chunkKeyStride(chunk, d),
      sinkTokens: config.sinkTokens,
      localMode: config.local === 'always' ? 1 : config.local === 'uncovered' ? 2 : 0,
      localWindow: config.localWindow,
      windowBase: querySlots * plan.queryListCapacity,
      scale: d.scale,
      tileRows: rows,
      ...lookupBases(b.layout),
    };
    const attend = [chunk.q, chunk.k, chunk.v, b.partOut, b.partLse];
    {
      const windowRows = windowTileRows(window.tile.rows, TILE_COLUMNS, config.sinkTokens, config.localWindow, values.localMode);
      const [x, y] = dispatchGrid(querySlots * Math.ceil(d.querySeq / windowRows));
      const params = encoder.uniform(CLUSTER_ATTENTION_PARAMS, { ...values, windowRows, tilesX: x }, ['scale']);
      encoder.dispatch(await encoder.pipeline(window.code), [params, ...attend, b.keyLists, b.lookup, b.pairCounts], x, y);
    }
    {
      // At most ⌈Σ|Q_c| / BR⌉ + (one partial tile per cluster) workgroups; the rest idle.
      const [x, y] = dispatchGrid(clusterTileBound(querySlots, plan.queryListCapacity, C, rows));
      const params = encoder.uniform(CLUSTER_ATTENTION_PARAMS, { ...values, tilesX: x }, ['scale']);
      encoder.dispatch(await encoder.pipeline(cluster.code), [params, ...attend, b.queryLists, b.keyLists, b.lookup, b.pairCounts], x, y);
    }
    {
      const [x, y] = dispatchGrid(Math.ceil((querySlots * d.querySeq) / (CLUSTER_THREADS / MERGE_LANES)));
      const params = encoder.uniform(CLUSTER_ATTENTION_PARAMS, { ...values, tilesX: x }, ['scale']);
      encoder.dispatch(await encoder.pipeline(clusterMergeWgsl(d.valueDim)), [params, b.partOut, b.partLse, b.queryLists, b.lookup, chunk.out, chunk.lse, b.parts], x, y);
    }
  });
  // The pairs the attention kernels counted (a readback per chunk: skipped with countPairs false, pairs 0).
  let pairs = 0;
  if (!countPairs) return { listMs, attentionMs, pairs };
  const read = await backend.readAll(resident.chunks.map((chunk, i) => ({ buffer: buffers[i]!.pairCounts, bytes: 4 * chunk.slots * d.groupSize * (C + 1) })));
  for (const counts of read) for (const n of new Uint32Array(counts.buffer, counts.byteOffset, counts.length)) pairs += n;
  return { listMs, attentionMs, pairs };
}
