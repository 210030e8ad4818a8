/**
 * Micro-benchmark of the sparse executor on synthetic per-query block selections (the device
 * program's `--executor S`): MoBA-like rows (the query's own block plus random past blocks of
 * 512) and NSA-like rows (16 random 64-key blocks plus the window's blocks), each part alone and
 * together, timed in both executor modes against dense on the same resident call. Prints one JSON
 * line per variant: where the key-block executor's time goes, without GPU timestamps.
 */
import { Rng, type AttentionDims } from '@sparse-attn/core';
import type { GpuBackend, GpuSelection, ResidentAttention } from './gpu-backend.js';
import { WEBGPU_FLAGS } from './webgpu-flags.js';

/** A synthetic per-query block selection: `random` past blocks (not the own or window blocks), the window's blocks, the own block. */
export interface SyntheticRows {
  readonly name: string;
  readonly blockSize: number;
  readonly random: number;
  /** Keys of the sliding window whose blocks each row holds (0: none). */
  readonly window: number;
  /** Include the query's own block (always inside a non-empty window). */
  readonly own: boolean;
}

/** Host CSR rows (fixed stride) of a synthetic selection for `count` rows of query heads at positions `queryOffset + r mod querySeq`. */
export function syntheticRows(d: Pick<AttentionDims, 'querySeq' | 'queryOffset'>, count: number, rows: SyntheticRows, seed = 1): { stride: number; bounds: Uint32Array; indices: Uint32Array } {
  const B = rows.blockSize;
  const stride = rows.random + (rows.window > 0 ? Math.ceil(rows.window / B) + 1 : rows.own ? 1 : 0);
  const rng = new Rng(seed);
  const bounds = new Uint32Array(2 * count);
  const indices = new Uint32Array(count * stride);
  const picked = new Set<number>();
  for (let r = 0; r < count; r++) {
    const pos = d.queryOffset + (r % d.querySeq);
    const current = Math.floor(pos / B);
    picked.clear();
    const first = rows.window > 0 ? Math.max(0, Math.floor((pos - rows.window + 1) / B)) : current;
    if (rows.window > 0 || rows.own) for (let b = first; b <= current; b++) picked.add(b);
    // Random blocks come from before the window (or the own block): `first` candidates.
    for (let n = 0; n < Math.min(rows.random, first); ) {
      const b = Math.floor(rng.next() * first);
      if (!picked.has(b)) {
        picked.add(b);
        n++;
      }
    }
    const list = [...picked].sort((a, b) => a - b);
    indices.set(list, r * stride);
    bounds[2 * r] = r * stride;
    bounds[2 * r + 1] = r * stride + list.length;
  }
  return { stride, bounds, indices };
}

/** Uploads a synthetic selection (rows per query head) for every chunk of a resident call. */
export function syntheticSelection(backend: GpuBackend, resident: ResidentAttention, rows: SyntheticRows, seed = 1): GpuSelection {
  const d: AttentionDims = resident.dims;
  const device = backend.context.device;
  let stride = 0;
  const chunks = resident.chunks.map((chunk, i) => {
    const host = syntheticRows(d, chunk.slots * d.groupSize * d.querySeq, rows, seed + i);
    stride = host.stride;
    const make = (data: Uint32Array) => {
      const buffer = device.createBuffer({ size: Math.max(16, data.byteLength), usage: WEBGPU_FLAGS.STORAGE | WEBGPU_FLAGS.COPY_DST | WEBGPU_FLAGS.COPY_SRC });
      device.queue.writeBuffer(buffer, 0, data);
      return buffer;
    };
    return { rows: host.bounds.length / 2, bounds: make(host.bounds), indices: make(host.indices) };
  });
  const heads = d.queryHeads;
  return {
    layout: { kind: 'block', blockSize: rows.blockSize, headScope: 'query', rows: d.querySeq, queryBlockSize: 1, batch: d.batch, heads, keySeq: d.keySeq, offsets: new Int32Array(d.batch * heads * d.querySeq + 1), indices: new Int32Array(0) },
    stride,
    chunks,
  };
}

/** The variants `--executor` times. */
export const EXECUTOR_VARIANTS: readonly SyntheticRows[] = [
  { name: 'moba-like (own + 2 random of 512)', blockSize: 512, random: 2, window: 0, own: true },
  { name: 'own block of 512 only', blockSize: 512, random: 0, window: 0, own: true },
  { name: '2 random blocks of 512 only', blockSize: 512, random: 2, window: 0, own: false },
  { name: 'nsa-like (16 random + 512-key window of 64-key blocks)', blockSize: 64, random: 16, window: 512, own: true },
  { name: 'window of 64-key blocks only', blockSize: 64, random: 0, window: 512, own: true },
  { name: '16 random blocks of 64 only', blockSize: 64, random: 16, window: 0, own: false },
];
