/**
 * What the GPU methods of this package share: workgroup-memory checks, the entry count of a GPU
 * selection (for density without readback), and the row geometry both density and diagnostics
 * use. Nothing here touches `node:*`: the checks run in the browser too.
 */
import { ConfigError, type AttentionDims } from '@sparse-attn/core';
import { dispatchGrid, type GpuBackend, type GpuSelection, type GpuSelectionStep, type ResidentAttention, WEBGPU_FLAGS } from '@sparse-attn/backend-gpu';
import { COUNT_ENTRIES_PARAMS, COUNT_ENTRIES_THREADS, countEntriesWgsl } from './count-entries-wgsl.js';

const { STORAGE, COPY_SRC } = WEBGPU_FLAGS;

/** Throws the typed error a kernel whose workgroup arrays exceed the device's workgroup memory would otherwise fail with. */
export function assertWorkgroupFits(methodId: string, backend: GpuBackend, bytes: number, what: string): void {
  if (bytes > backend.context.maxWorkgroupBytes) {
    throw new ConfigError(`${methodId}: ${what} need ${bytes} bytes of workgroup memory, above this device's ${backend.context.maxWorkgroupBytes} (use larger blocks or a shorter sequence)`);
  }
}

/**
 * Σ over query positions of the keys the current (causally cut) block misses: block selections
 * count `entries · blockSize` pairs, minus `blockSize − (t mod blockSize) − 1` for each row whose
 * current block is selected. O(querySeq) on the host.
 */
export function currentBlockShortfall(d: AttentionDims, blockSize: number): number {
  let missing = 0;
  for (let i = 0; i < d.querySeq; i++) missing += blockSize - ((d.queryOffset + i) % blockSize) - 1;
  return missing;
}

/** Entries of a GPU selection, summed on the GPU (one u32 read back per chunk). */
export async function countSelectionEntries(backend: GpuBackend, resident: ResidentAttention, selection: GpuSelection): Promise<number> {
  const { device } = backend.context;
  const pipelinePromise = countEntriesWgsl();
  const totals = resident.chunks.map(() => device.createBuffer({ size: 16, usage: STORAGE | COPY_SRC }));
  try {
    await backend.runKernels(resident, async (e) => {
      const pipeline = await e.pipeline(pipelinePromise);
      const rows = selection.chunks[e.index]!.rows;
      const [x, y] = dispatchGrid(Math.ceil(rows / COUNT_ENTRIES_THREADS));
      e.dispatch(pipeline, [e.uniform(COUNT_ENTRIES_PARAMS, { rows, tilesX: x }), selection.chunks[e.index]!.bounds, totals[e.index]], x, y);
    });
    let total = 0;
    for (const counted of await backend.readAll(totals.map((buffer) => ({ buffer, bytes: 4 })))) total += new Uint32Array(counted.buffer, counted.byteOffset, 1)[0]!;
    return total;
  } finally {
    for (const buffer of totals) buffer.destroy();
  }
}

