import { denseMethod, type MethodDefinition } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { QUICK_SWEEP } from '../src/cli-options.js';
import { gpuProviderOf, openGpuSession, type GpuBackendHandle, type GpuMethodHandle } from '../src/gpu-sweep.js';
import { loadRegistry } from '../src/registry.js';
import { runSweep } from '../src/run-sweep.js';
import { runCli } from './helpers.js';

// A stand-in GPU family: CPU methods whose results say they ran on a "gpu" device. It checks the
// bench's plumbing (dispatch, labels, no decode cells, speedups vs the GPU dense); the real WGSL
// kernels are tested in @sparse-attn/backend-gpu.
const backend: GpuBackendHandle = { info: { backend: 'gpu', kernel: 'fake-wgsl', device: 'test device' }, destroy: () => undefined };
function fakeGpuMethod(cpu: MethodDefinition): GpuMethodHandle {
  return {
    id: cpu.id,
    family: cpu.family,
    cpu,
    create: (b, config) => {
      const method = cpu.create(config);
      return { prefill: async (input) => ({ ...method.prefill(input), backend: b.info }) };
    },
  };
}

describe('--backend gpu dispatch', () => {
  it('runs the GPU family methods (prefill only) and labels every row with the GPU backend', async () => {
    const { registry } = await loadRegistry();
    const methods = [fakeGpuMethod(denseMethod as unknown as MethodDefinition), fakeGpuMethod(registry.get('block-top-k'))];
    const provider = gpuProviderOf('fake-gpu', { gpuMethods: methods, createGpuBackend: async () => backend })!;
    const gpu = await openGpuSession(provider, 'unused');
    const results = await runSweep(registry, [], {
      ...QUICK_SWEEP,
      methods: ['dense', 'block-top-k'],
      workloads: ['needle'],
      decodeWorkloads: ['needle'],
      seqLengths: [64],
      decodeLengths: [64],
      suiteSeqLengths: [64],
      suiteQuick: true,
      backend: 'gpu',
      quick: true,
      seed: 1,
      suites: [],
      ort: false,
      gpu,
    });
    expect(results.rows.length).toBeGreaterThan(1);
    for (const r of results.rows) {
      expect(r.status, r.error).toBe('ok');
      expect(r.phase).toBe('prefill');
      expect(r.backend).toEqual(backend.info);
      expect(r.speedupVsDense).toBeGreaterThan(0);
    }
    expect(results.rows.find((r) => r.method === 'dense')!.quality!.relativeL2Error).toBeLessThan(1e-5);
  });

  it('a GPU method that reports a CPU backend is a failed row, not a GPU figure', async () => {
    const { registry } = await loadRegistry();
    const liar: GpuMethodHandle = { ...fakeGpuMethod(denseMethod as unknown as MethodDefinition), create: () => ({ prefill: async (input) => denseMethod.create({}).prefill(input) }) };
    const gpu = await openGpuSession(gpuProviderOf('fake-gpu', { gpuMethods: [liar], createGpuBackend: async () => backend }), 'unused');
    const results = await runSweep(registry, [], { ...QUICK_SWEEP, methods: ['dense'], workloads: ['gaussian'], decodeWorkloads: ['gaussian'], seqLengths: [32], decodeLengths: [32], suiteSeqLengths: [32], suiteQuick: true, backend: 'gpu', quick: true, seed: 1, suites: [], ort: false, gpu });
    expect(results.rows.map((r) => [r.status, r.error])).toEqual([['error', 'a GPU method reported backend cpu']]);
  });

  it('no adapter or no GPU family: one ConfigError line naming why', async () => {
    await expect(openGpuSession(undefined, '@sparse-attn/backend-gpu: could not load')).rejects.toThrow(/--backend gpu: no GPU family is loaded \(@sparse-attn\/backend-gpu: could not load\)/);
    const failing = gpuProviderOf('fake-gpu', { gpuMethods: [], createGpuBackend: async () => Promise.reject(new Error('requestAdapter() returned null')) });
    await expect(openGpuSession(failing, '')).rejects.toThrow(/--backend gpu: no usable WebGPU adapter \(Error: requestAdapter\(\) returned null\)/);
    expect(() => gpuProviderOf('half', { gpuMethods: [] })).toThrow(/must export both/);
  });

  it('the real CLI: either GPU rows, or exit 2 with one line saying why there is no adapter', async () => {
    const r = await runCli(['--backend', 'gpu', '--quick', '--no-html', '--suites', '', '--out', '/tmp/bench-gpu-test']);
    if (r.code === 0) {
      expect(r.stdout.join('\n')).toMatch(/webgpu/);
    } else {
      expect(r.code).toBe(2);
      expect(r.stderr).toEqual([expect.stringMatching(/^error: ConfigError: --backend gpu: no usable WebGPU adapter \(.+\)$/)]);
    }
  });

  it('bench gpu-check runs every package\'s GPU checks on an adapter, or exits 2 naming why there is none', async () => {
    const r = await runCli(['gpu-check', '--only', 'onuncapturederror']);
    if (r.code === 2) {
      expect(r.stderr.at(-1)).toMatch(/^error: ConfigError: --backend gpu: no usable WebGPU adapter \(.+\)$/);
    } else {
      expect(r.stdout.join('\n')).toMatch(/^PASS @sparse-attn\/backend-gpu: device.onuncapturederror/m);
      expect(r.code).toBe(0);
    }
  });

  it('bench list --backend gpu lists the GPU methods of every family, described by their CPU twins', async () => {
    const r = await runCli(['list', '--backend', 'gpu', '--json']);
    expect(r.code, r.stderr.join('\n')).toBe(0);
    const { methods } = JSON.parse(r.stdout.join('\n')) as { methods: { id: string; family: string; defaults: object }[] };
    const ids = methods.map((m) => m.id);
    for (const id of ['dense', 'block-top-k', 'nsa', 'moba', 'landmark-retrieval', 'hip', 'biformer', 'routing', 'delta', 'tidal-decode', 'snapkv', 'streaming-llm']) expect(ids).toContain(id);
    expect(ids).not.toContain('h2o');
    expect(methods.find((m) => m.id === 'nsa')!.family).toBe('nsa');
  });
});
