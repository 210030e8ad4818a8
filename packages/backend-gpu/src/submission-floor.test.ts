import { describe, expect, it } from 'vitest';
import { timeSubmissionFloor } from './submission-floor.js';

/** A device whose queue runs nothing: every dispatch is dropped, so the counter reads `counted`. */
function droppingDevice(counted: number): GPUDevice {
  const buffer = () => ({ destroy() {}, mapAsync: async () => {}, getMappedRange: () => new Float32Array([counted, 0, 0, 0]).buffer, unmap() {} });
  const pass = { setPipeline() {}, setBindGroup() {}, dispatchWorkgroups() {}, end() {} };
  return {
    createShaderModule: () => ({}),
    createComputePipelineAsync: async () => ({ getBindGroupLayout: () => ({}) }),
    createBuffer: buffer,
    createBindGroup: () => ({}),
    createCommandEncoder: () => ({ beginComputePass: () => pass, copyBufferToBuffer() {}, finish: () => ({}) }),
    queue: { submit() {}, onSubmittedWorkDone: async () => {} },
  } as unknown as GPUDevice;
}

describe('timeSubmissionFloor', () => {
  it('rejects a dispatch count that is not a non-negative integer before touching the device', async () => {
    await expect(timeSubmissionFloor({} as GPUDevice, -1)).rejects.toThrow(RangeError);
    await expect(timeSubmissionFloor({} as GPUDevice, 1.5)).rejects.toThrow(/non-negative integer/);
  });

  it('throws when the kernel did not count every dispatch submitted (no floor of work that did not run)', async () => {
    await expect(timeSubmissionFloor(droppingDevice(0), 3, { warmup: 1, repeats: 4 })).rejects.toThrow('counted 0 dispatches of the 15 submitted');
  });

  it('times each submission when the counter agrees', async () => {
    const timing = await timeSubmissionFloor(droppingDevice(10), 2, { warmup: 1, repeats: 4 });
    expect(timing.samplesMs).toHaveLength(4);
    expect(timing.medianMs).toBeGreaterThanOrEqual(0);
  });
});
