import { ConfigError } from '@sparse-attn/core';
import { chunkKeyStride, type GpuBackend, type ResidentAttention, type ResidentChunk } from './gpu-backend.js';
import type { ResidentView } from './gpu-decode.js';
import { WEBGPU_FLAGS } from './webgpu-flags.js';

const { STORAGE, COPY_DST, COPY_SRC } = WEBGPU_FLAGS;

/** What {@link withSpareRows} writes into the rows between slots (finite, far from the checks' N(0, 1) keys). */
export const SPARE_ROW_VALUE = 3;

/**
 * A copy of a resident call whose keys and values lie `spareRows` rows apart beyond each slot's
 * keys (`keyStride` = keySeq + spareRows, the spare rows filled with {@link SPARE_ROW_VALUE}), as
 * a {@link GpuKVCache}'s view has them, with its own `out` and `lse` (q is shared). For checks: a
 * kernel that ignores `keyStride` reads the wrong rows, and its output differs from the
 * compact call's. The source's k and v need `COPY_SRC` (the backend's uploads have it).
 */
export function withSpareRows(backend: GpuBackend, resident: ResidentAttention, spareRows: number): ResidentView {
  if (!(Number.isInteger(spareRows) && spareRows > 0)) throw new ConfigError(`withSpareRows: spareRows must be a positive integer, got ${spareRows}`);
  const d = resident.dims;
  const { device } = backend.context;
  const stride = d.keySeq + spareRows;
  const created: GPUBuffer[] = [];
  const buffer = (bytes: number, usage: number) => {
    const b = device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
    created.push(b);
    return b;
  };
  const encoder = device.createCommandEncoder();
  const chunks = resident.chunks.map((chunk): ResidentChunk => {
    const from = chunkKeyStride(chunk, d);
    const strided = (source: GPUBuffer, dim: number) => {
      const target = buffer(chunk.slots * stride * dim * 4, STORAGE | COPY_DST | COPY_SRC);
      device.queue.writeBuffer(target, 0, new Float32Array(chunk.slots * stride * dim).fill(SPARE_ROW_VALUE));
      for (let s = 0; s < chunk.slots; s++) encoder.copyBufferToBuffer(source, s * from * dim * 4, target, s * stride * dim * 4, d.keySeq * dim * 4);
      return target;
    };
    return {
      ...chunk,
      k: strided(chunk.k, d.headDim),
      v: strided(chunk.v, d.valueDim),
      out: buffer(chunk.out.size, STORAGE | COPY_SRC),
      lse: buffer(chunk.lse.size, STORAGE | COPY_SRC),
      keyStride: stride,
    };
  });
  device.queue.submit([encoder.finish()]);
  return { view: { dims: d, chunks }, release: () => backend.discard(...created) };
}
