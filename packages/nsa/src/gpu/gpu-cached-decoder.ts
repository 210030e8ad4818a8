/**
 * A GPU decoder for this package's methods: the KV cache lives on the device, compact per KV slot
 * (`[slots][length][D]`, the layout the kernels read), and every step runs the method's selection
 * and attention on the GPU over cache + new tokens, like the CPU's `createCachedDecoder` does on
 * the host. Only q and the new k/v go up; output, lse and the step's selection come back.
 *
 * Growing the cache copies each slot's rows into a buffer one step longer on the GPU
 * (copyBufferToBuffer, no host round trip); pooled block keys are recomputed per step by the same
 * kernels as prefill (so a step's pooled keys equal prefill's, as on the CPU). Steps validate with
 * core's `validateDecoderStep` and plan (typed errors) before any GPU work.
 */
import {
  ConfigError,
  rowOffset,
  sparseStats,
  validateDecoderStep,
  type AttentionDims,
  type AttentionResult,
  type DecoderShape,
  type Dims4,
  type Tensor,
} from '@sparse-attn/core';
import { countPairs, type GpuAttentionDecoder, type GpuBackend, type GpuSelection, type ResidentAttention, type ResidentChunk, WEBGPU_FLAGS } from '@sparse-attn/backend-gpu';

const { STORAGE, COPY_DST, COPY_SRC } = WEBGPU_FLAGS;

type Buffer = ResidentChunk['out'];

/** What a method runs for one decode step, planned (and validated) before any GPU work. */
export interface DecodeStepPlan {
  /** Largest per-KV-slot scratch of the step's kernels. */
  readonly extraBytesPerSlot: number;
  /** Selection + attention on the step's resident call; the decoder frees the selection. */
  run(resident: ResidentAttention): Promise<{ selection: GpuSelection; selectionMs: number; attentionMs: number }>;
  /** Extra pairs the output attends beyond the selection (NSA gated's window branch). */
  readonly extraPairs?: number;
  readonly diagnostics?: Readonly<Record<string, number>>;
}

/** Rows of one (batch, head) slot range of a rank-4 tensor, compacted. */
function compact(t: Tensor, d: Dims4): Float32Array {
  if (d.capacity === d.seq) return t.data.subarray(0, d.batch * d.heads * d.seq * d.dim);
  const out = new Float32Array(d.batch * d.heads * d.seq * d.dim);
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.heads; h++) {
      const at = rowOffset(d, b, h, 0);
      out.set(t.data.subarray(at, at + d.seq * d.dim), (b * d.heads + h) * d.seq * d.dim);
    }
  }
  return out;
}

/** Creates a GPU decoder; `plan` turns a step's dims (cache + new tokens) into its GPU work. */
export function createGpuCachedDecoder(backend: GpuBackend, shape: DecoderShape, plan: (d: AttentionDims) => DecodeStepPlan): GpuAttentionDecoder {
  const { device } = backend.context;
  const valueDim = shape.valueDim ?? shape.headDim;
  const slots = shape.batch * shape.kvHeads;
  let length = 0;
  let k: Buffer | undefined;
  let v: Buffer | undefined;
  const make = (bytes: number, usage = STORAGE | COPY_DST | COPY_SRC): Buffer => device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 4) * 4), usage });
  const grow = (old: Buffer | undefined, dim: number, next: number, added: Tensor, addedDims: Dims4): Buffer => {
    const buffer = make(4 * slots * next * dim);
    if (old && length > 0) {
      const encoder = device.createCommandEncoder();
      for (let s = 0; s < slots; s++) encoder.copyBufferToBuffer(old, 4 * s * length * dim, buffer, 4 * s * next * dim, 4 * length * dim);
      device.queue.submit([encoder.finish()]);
    }
    const rows = compact(added, addedDims);
    const T = next - length;
    for (let s = 0; s < slots; s++) device.queue.writeBuffer(buffer, 4 * (s * next + length) * dim, rows, s * T * dim, T * dim);
    return buffer;
  };
  return {
    get length() {
      return length;
    },
    async step(input): Promise<AttentionResult> {
      const step = validateDecoderStep(shape, input, length);
      const T = step.querySeq;
      const keySeq = length + T;
      const d: AttentionDims = {
        ...step,
        keySeq,
        queryOffset: length,
        kDims: { ...step.kDims, seq: keySeq, capacity: keySeq },
        vDims: { ...step.vDims, seq: keySeq, capacity: keySeq },
      };
      const p = plan(d);
      const perSlot = 4 * Math.max(d.groupSize * T * Math.max(d.headDim, valueDim), keySeq * Math.max(d.headDim, valueDim), p.extraBytesPerSlot);
      if (perSlot * slots > backend.context.maxBinding) {
        throw new ConfigError(`GPU decoder: ${slots} KV slots of ${perSlot} bytes exceed the device's largest binding (${backend.context.maxBinding}); decode keeps the cache in one chunk`);
      }
      const nextK = grow(k, d.headDim, keySeq, input.k, step.kDims);
      const nextV = grow(v, valueDim, keySeq, input.v, step.vDims);
      const q = make(4 * slots * d.groupSize * T * d.headDim);
      device.queue.writeBuffer(q, 0, compact(input.q, step.qDims));
      const out = make(4 * slots * d.groupSize * T * valueDim);
      const lse = make(4 * slots * d.groupSize * T);
      const resident: ResidentAttention = { dims: d, chunks: [{ slot0: 0, slots, q, k: nextK, v: nextV, out, lse }] };
      try {
        const run = await p.run(resident);
        try {
          const { output, lse: lseOut } = await backend.readOutput(resident);
          const selection = await backend.readSelection(run.selection);
          const pairs = countPairs(selection, d) + (p.extraPairs ?? 0);
          const result = {
            output,
            lse: lseOut,
            selection,
            stats: sparseStats(d, pairs, selection.headScope === 'kv', run.selectionMs, run.attentionMs),
            backend: backend.info,
            ...(p.diagnostics ? { diagnostics: p.diagnostics } : {}),
          };
          k?.destroy();
          v?.destroy();
          k = nextK;
          v = nextV;
          length = keySeq;
          return result;
        } finally {
          backend.releaseSelection(run.selection);
        }
      } catch (error) {
        nextK.destroy();
        nextV.destroy();
        throw error;
      } finally {
        q.destroy();
        out.destroy();
        lse.destroy();
      }
    },
    reset() {
      k?.destroy();
      v?.destroy();
      k = v = undefined;
      length = 0;
    },
    destroy() {
      this.reset();
    },
  };
}
