import { describe, expect, it } from 'vitest';
import { ConfigError, validateAttentionInput, createWorkload, type AttentionInput } from '@sparse-attn/core';
import type { GpuBackend } from '@sparse-attn/backend-gpu';
import { gpuMethods } from '../gpu.js';
import { hierarchicalIndexerConfigSchema, hierarchicalIndexerMethod } from '../hierarchical-indexer.js';
import { indexerPlan } from './indexer-gpu.js';
import { methods } from '../index.js';
import { mobaConfigSchema } from '../moba.js';
import { nsaConfigSchema } from '../nsa.js';
import { mobaPlan } from './moba-gpu.js';
import { mobaSelectWgsl } from './moba-select-wgsl.js';
import { nsaPlan } from './nsa-gpu.js';
import { nsaSelectWgsl } from './nsa-select-wgsl.js';

/** Enough of a backend for the planning code, which must run (and throw) before any GPU work. */
function fakeBackend(maxWorkgroupBytes: number): GpuBackend {
  return { context: { maxWorkgroupBytes, maxBinding: 1 << 30 } } as unknown as GpuBackend;
}

function dims(seq: number, queryHeads = 2, kvHeads = 1, headDim = 16) {
  const w = createWorkload('gaussian', { queryHeads, kvHeads, seqLength: seq, headDim, seed: 1 });
  return validateAttentionInput(w.input as AttentionInput);
}

describe('GPU entry (no GPU needed)', () => {
  it('mirrors the CPU definitions: same ids, families and config schemas', () => {
    for (const m of gpuMethods) {
      const cpu = methods.find((c) => c.id === m.id);
      expect(cpu).toBe(m.cpu);
      expect(m.family).toBe(cpu!.family);
    }
    expect(gpuMethods.map((m) => m.id)).toEqual(['moba', 'nsa', hierarchicalIndexerMethod.id]);
  });

  it('bad configs throw the CPU ConfigError from create, before a backend is touched', () => {
    const touched = new Proxy({}, { get: () => { throw new Error('backend touched'); } }) as GpuBackend;
    expect(() => gpuMethods[0]!.create(touched, { topK: 0 })).toThrow(ConfigError);
    expect(() => gpuMethods[1]!.create(touched, { compressionStride: 3 })).toThrow(ConfigError);
    expect(() => gpuMethods[2]!.create(touched, { blockSize: 8, candidateBlocks: 1, topK: 16 })).toThrow(ConfigError);
  });

  it('plans: CSR strides, scratch per KV slot and the workgroup-memory guard', () => {
    const moba = mobaPlan('moba', fakeBackend(16384), dims(1000), mobaConfigSchema.parse({ blockSize: 64, topK: 3 }));
    expect(moba).toEqual({ pooled: 15, maxBlocks: 16, stride: 3, scratchBytesPerSlot: 4 * 15 * 16 });
    const nsa = nsaPlan(fakeBackend(16384), dims(1000), nsaConfigSchema.parse({}));
    // n = 16 plus ceil(512 / 64) + 1 window blocks, capped by the 16 blocks of the call.
    expect(nsa.stride).toBe(16);
    expect(nsa.windows).toBe(15);
    expect(nsa.scratchBytesPerSlot).toBe(4 * 15 * 16);
    expect(nsaPlan(fakeBackend(16384), dims(5000), nsaConfigSchema.parse({})).stride).toBe(25);
    // Stride-1 windows at S = 5000 need ~40 KiB of workgroup memory: a typed error, not a GPU failure.
    expect(() => nsaPlan(fakeBackend(16384), dims(5000), nsaConfigSchema.parse({ compressionBlock: 1, compressionStride: 1, selectionBlock: 1, selectedBlocks: 3 }))).toThrow(ConfigError);
    const indexer = indexerPlan(fakeBackend(16384), dims(1000), hierarchicalIndexerConfigSchema.parse({}));
    expect(indexer.stride).toBe(512);
    expect(indexer.kernel.maxCandidates).toBe(16 * 64);
    expect(indexer.scratchBytesPerSlot).toBe(4 * 1000 * 512);
    expect(() => mobaPlan('moba', fakeBackend(1024), dims(5000), mobaConfigSchema.parse({ blockSize: 1, topK: 3 }))).toThrow(ConfigError);
  });

  it('generates kernels whose sizes follow the call', () => {
    const code = nsaSelectWgsl({ headDim: 128, groupSize: 4, maxWindows: 1024, maxBlocks: 1024, maxPicks: 16, quest: false });
    expect(code).toContain('const D: u32 = 128u;');
    expect(code).toContain('const G: u32 = 4u;');
    expect(code).toContain('const PER: u32 = 8u;');
    expect(code).toContain('var<workgroup> prob: array<f32, 1024>;');
    expect(nsaSelectWgsl({ headDim: 8, groupSize: 1, maxWindows: 1, maxBlocks: 1, maxPicks: 1, quest: true })).toContain('const E: u32 = 16u;');
    expect(mobaSelectWgsl({ headDim: 64, maxBlocks: 128, maxPicks: 3 })).toContain('var<workgroup> picks: array<u32, 3>;');
  });
});
