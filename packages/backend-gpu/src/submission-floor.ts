import type { MeasureOptions, Timing } from '@sparse-attn/core';
import { measureAsync } from './measure-async.js';
import { WEBGPU_FLAGS } from './webgpu-flags.js';

const { STORAGE, COPY_SRC, COPY_DST, MAP_READ, MAP_MODE_READ } = WEBGPU_FLAGS;

/** One workgroup, one thread writing: each dispatch adds 1 to the counter, after the previous dispatch's add. */
const COUNTER_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> counter: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) { counter[0] = counter[0] + 1.0; }
}
`;

/**
 * The wall time of the smallest possible step on `device`: `dispatches` dependent dispatches of a
 * one-workgroup kernel recorded into one compute pass, submitted, and awaited
 * (`onSubmittedWorkDone`), with raw WebGPU calls and none of the backend's recording (0
 * dispatches: an empty command buffer). A decode step that runs that many dependent kernels cannot
 * take less wall time than this, whatever its kernels do, so `dense decode step / floor` bounds any
 * method's decode-step speedup on this runtime. Each sample is the call's own wall time (encoding,
 * submission, wait).
 *
 * The kernel counts its dispatches: the counter is read back once after the timed runs and must
 * equal the dispatches submitted (an `Error` otherwise), so the floor never times work that did
 * not run.
 */
export async function timeSubmissionFloor(device: GPUDevice, dispatches: number, options: MeasureOptions = {}): Promise<Timing> {
  if (!Number.isInteger(dispatches) || dispatches < 0) throw new RangeError(`timeSubmissionFloor: dispatches must be a non-negative integer, got ${dispatches}`);
  const module = device.createShaderModule({ code: COUNTER_WGSL });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const counter = device.createBuffer({ size: 16, usage: STORAGE | COPY_SRC | COPY_DST });
  const staging = device.createBuffer({ size: 16, usage: MAP_READ | COPY_DST });
  try {
    const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: counter } }] });
    let submitted = 0;
    const timing = await measureAsync(async () => {
      const started = performance.now();
      const encoder = device.createCommandEncoder();
      if (dispatches > 0) {
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, group);
        for (let i = 0; i < dispatches; i++) pass.dispatchWorkgroups(1);
        pass.end();
      }
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
      submitted += dispatches;
      return performance.now() - started;
    }, options);
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(counter, 0, staging, 0, 16);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const counted = new Float32Array(staging.getMappedRange().slice(0))[0];
    staging.unmap();
    if (counted !== submitted) throw new Error(`timeSubmissionFloor: the kernel counted ${counted} dispatches of the ${submitted} submitted`);
    return timing;
  } finally {
    counter.destroy();
    staging.destroy();
  }
}
