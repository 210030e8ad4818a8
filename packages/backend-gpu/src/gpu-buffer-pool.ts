import { WEBGPU_FLAGS } from './webgpu-flags.js';

const { STORAGE, COPY_SRC, COPY_DST } = WEBGPU_FLAGS;

/**
 * Storage buffers reused by name: `take(name, bytes)` hands back the buffer last taken under
 * `name` when it is large enough (else replaces it). A family's multi-pass call takes its large
 * scratch from one pool so that later passes (and, through {@link GpuBackend.borrowPool}, later
 * calls) allocate nothing: on the H100, allocating, first touching and freeing gigabytes per call
 * cost hundreds of milliseconds. Contents are NOT zeroed between takes: a user must write every
 * buffer it takes before reading it.
 */
export class GpuBufferPool {
  private readonly buffers = new Map<string, GPUBuffer>();

  constructor(private readonly device: Pick<GPUDevice, 'createBuffer'>) {}

  /** A storage (+ copy) buffer of at least `bytes` bytes, reused under `name`. */
  take(name: string, bytes: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 4) * 4);
    const found = this.buffers.get(name);
    if (found && found.size >= size) return found;
    found?.destroy();
    const buffer = this.device.createBuffer({ size, usage: STORAGE | COPY_SRC | COPY_DST });
    this.buffers.set(name, buffer);
    return buffer;
  }

  /** Bytes the pool holds. */
  get bytes(): number {
    let total = 0;
    for (const buffer of this.buffers.values()) total += buffer.size;
    return total;
  }

  /** Frees every buffer of the pool. */
  destroy(): void {
    for (const buffer of this.buffers.values()) buffer.destroy();
    this.buffers.clear();
  }
}
