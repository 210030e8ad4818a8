/**
 * WebGPU flag values, spelled out so code needs no `GPUBufferUsage` / `GPUMapMode` global (Dawn's
 * Node binding defines none until `webgpu`'s globals are installed; the values are the spec's).
 * Families building their own buffers on the backend's device use these too.
 */
export const WEBGPU_FLAGS = {
  /** `GPUBufferUsage.MAP_READ` */
  MAP_READ: 0x01,
  /** `GPUBufferUsage.COPY_SRC` */
  COPY_SRC: 0x04,
  /** `GPUBufferUsage.COPY_DST` */
  COPY_DST: 0x08,
  /** `GPUBufferUsage.UNIFORM` */
  UNIFORM: 0x40,
  /** `GPUBufferUsage.STORAGE` */
  STORAGE: 0x80,
  /** `GPUBufferUsage.QUERY_RESOLVE` */
  QUERY_RESOLVE: 0x200,
  /** `GPUMapMode.READ` */
  MAP_MODE_READ: 0x01,
} as const;
