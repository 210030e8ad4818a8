/**
 * Runs GPU work over a resident call a few KV slots at a time, for outputs that cannot fit one
 * binding per chunk: the indexer's token rows are Sq · K u32 per KV slot (128 MiB at 64k × 512),
 * so a benchmark resident holding 32 slots in one chunk needs 4 GiB of CSR rows. A chunk with more
 * slots than a group takes is split: each group's q, k, v are copied (a contiguous run of every
 * per-slot tensor; k and v slot by slot where the chunk's `keyStride` leaves spare rows between
 * its slots, as a KV cache's view does) into compact group-sized buffers with `copy-range-wgsl.ts`,
 * the work runs on a resident made of that one group (`keyStride` = keySeq), and its out / lse are
 * copied back into the chunk. Chunks that already fit
 * run in place. The group buffers come from a pool the backend keeps between calls
 * (`backend.releaseScratch()` frees it). The copies are not part of the timings the callers
 * report (the benchmark's wall time, `hostMs`, holds them).
 */
import type { AttentionDims } from '@sparse-attn/core';
import { chunkKeyStride, dispatchGrid, type GpuBackend, type ResidentAttention, type ResidentChunk } from '@sparse-attn/backend-gpu';
import { COPY_RANGE_PARAMS, COPY_RANGE_THREADS, copyRangeWgsl } from './copy-range-wgsl.js';

/** The backend pool the group buffers come from (`backend.borrowPool`). */
const SLOT_GROUP_POOL = 'nsa:slot-groups';

type Buffer = ResidentChunk['q'];
type Tensors = 'q' | 'k' | 'v' | 'out' | 'lse';

/** 32-bit words per KV slot of each resident tensor, compact (keys `keySeq` rows apart). */
function wordsPerSlot(d: AttentionDims): Record<Tensors, number> {
  const g = d.groupSize;
  return { q: g * d.querySeq * d.headDim, k: d.keySeq * d.headDim, v: d.keySeq * d.valueDim, out: g * d.querySeq * d.valueDim, lse: g * d.querySeq };
}

/** `count` 32-bit words from `src` at `srcOffset` to `dst` at `dstOffset`. */
interface CopyRange {
  readonly src: Buffer;
  readonly dst: Buffer;
  readonly srcOffset: number;
  readonly dstOffset: number;
  readonly count: number;
}

/** Copies word ranges between buffers on the GPU (one timed pass of the copy kernel). */
async function copyWords(backend: GpuBackend, on: ResidentAttention, copies: readonly CopyRange[]): Promise<void> {
  await backend.runKernels(on, async (e) => {
    const pipeline = await e.pipeline(copyRangeWgsl());
    for (const c of copies) {
      if (c.count === 0) continue;
      const [x, y] = dispatchGrid(Math.ceil(c.count / COPY_RANGE_THREADS));
      e.dispatch(pipeline, [e.uniform(COPY_RANGE_PARAMS, { count: c.count, srcOffset: c.srcOffset, dstOffset: c.dstOffset, tilesX: x }), c.src, c.dst], x, y);
    }
  });
}

/**
 * Calls `run` on every group of at most `slotsPerGroup` KV slots of `resident` (each a resident
 * of one chunk; its output lands in `resident`'s out / lse) and returns the results in slot order.
 */
export async function forSlotGroups<T>(backend: GpuBackend, resident: ResidentAttention, slotsPerGroup: number, run: (group: ResidentAttention) => Promise<T>): Promise<T[]> {
  const d = resident.dims;
  const words = wordsPerSlot(d);
  const results: T[] = [];
  for (const chunk of resident.chunks) {
    if (chunk.slots <= slotsPerGroup) {
      results.push(await run({ dims: d, chunks: [chunk] }));
      continue;
    }
    const only: ResidentAttention = { dims: d, chunks: [chunk] };
    // Rows between the chunk's KV slots in k and v (the group buffers hold them keySeq apart).
    const keyStride = chunkKeyStride(chunk, d);
    const names: readonly Tensors[] = ['q', 'k', 'v', 'out', 'lse'];
    // The group buffers stay with the backend for the next call (allocating and first touching
    // 2 GiB of them took ~200 ms per call at 64k MHA on the H100).
    await backend.withPool(SLOT_GROUP_POOL, async (pool) => {
      const buffers = Object.fromEntries(names.map((name) => [name, pool.take(name, 4 * Math.max(4, slotsPerGroup * words[name]))])) as Record<Tensors, Buffer>;
      for (let first = 0; first < chunk.slots; first += slotsPerGroup) {
        const slots = Math.min(slotsPerGroup, chunk.slots - first);
        const copies: CopyRange[] = [{ src: chunk.q, dst: buffers.q, srcOffset: first * words.q, dstOffset: 0, count: slots * words.q }];
        for (const [name, dim] of [['k', d.headDim], ['v', d.valueDim]] as const) {
          if (keyStride === d.keySeq) copies.push({ src: chunk[name], dst: buffers[name], srcOffset: first * words[name], dstOffset: 0, count: slots * words[name] });
          else for (let s = 0; s < slots; s++) copies.push({ src: chunk[name], dst: buffers[name], srcOffset: (first + s) * keyStride * dim, dstOffset: s * words[name], count: words[name] });
        }
        await copyWords(backend, only, copies);
        // The group's buffers are compact whatever the source's stride: its own keyStride, not the chunk's.
        results.push(await run({ dims: d, chunks: [{ slot0: chunk.slot0 + first, slots, ...buffers, keyStride: d.keySeq }] }));
        await copyWords(backend, only, (['out', 'lse'] as const).map((name) => ({ src: buffers[name], dst: chunk[name], srcOffset: 0, dstOffset: first * words[name], count: slots * words[name] })));
      }
    });
  }
  return results;
}
