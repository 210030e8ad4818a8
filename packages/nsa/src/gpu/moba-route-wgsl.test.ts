import { describe, expect, it } from 'vitest';
import { ConfigError, createWorkload, validateAttentionInput, type AttentionInput } from '@sparse-attn/core';
import type { GpuBackend, ResidentAttention } from '@sparse-attn/backend-gpu';
import { gpuMobaMethod, mobaPlan } from './moba-gpu.js';
import { mobaConfigSchema } from '../moba.js';
import { MOBA_ROUTE_WORKGROUP_BYTES, mobaRouteWgsl } from './moba-route-wgsl.js';

/** A backend with only a device limit: any GPU work (any other property) throws. */
function limitedBackend(maxWorkgroupBytes: number): GpuBackend {
  const context = { maxWorkgroupBytes, maxBinding: 1 << 30 };
  return new Proxy({} as GpuBackend, {
    get: (_, key) => {
      if (key === 'context') return context;
      throw new Error(`GPU work: backend.${String(key)}`);
    },
  });
}

function input(seq: number): AttentionInput {
  return createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: seq, headDim: 16, seed: 3 }).input as AttentionInput;
}

describe('MoBA routing kernel (no GPU needed)', () => {
  it('sizes its registers and score tile from the call', () => {
    const code = mobaRouteWgsl({ headDim: 128, maxPicks: 3 });
    expect(code).toContain('const D: u32 = 128u;');
    expect(code).toContain('var keys: array<f32, 3>;');
    expect(code).toContain('var picked: array<u32, 3>;');
    // 64 rows × (64 + 1) floats: one padding column against bank conflicts.
    expect(code).toContain('var<workgroup> tile: array<f32, 4160>;');
    expect(code).toContain('var<storage, read> means: array<vec4<f32>>;');
    // Scalar loads when D is not a multiple of 4; at least one pick slot for the forced block.
    expect(mobaRouteWgsl({ headDim: 18, maxPicks: 0 })).toContain('var<storage, read> means: array<f32>;');
    expect(mobaRouteWgsl({ headDim: 18, maxPicks: 0 })).toContain('var keys: array<f32, 1>;');
    // No gate-score buffer is bound: q, means, bounds, indices and the parameters.
    expect(code).not.toContain('scores: array');
    expect(code).not.toContain('@binding(5)');
  });

  it('needs 25 344 B of workgroup memory, under the 32 KiB of the H100 and SwiftShader', () => {
    expect(MOBA_ROUTE_WORKGROUP_BYTES).toBe(8704 + 16640);
    expect(MOBA_ROUTE_WORKGROUP_BYTES).toBeLessThanOrEqual(32768);
  });

  it('a device below that throws a ConfigError before any GPU work (prefill, runResident)', async () => {
    const small = gpuMobaMethod.create(limitedBackend(16384), { blockSize: 16, topK: 3 });
    await expect(small.prefill(input(100))).rejects.toThrow(ConfigError);
    await expect(small.prefill(input(100))).rejects.toThrow(/moba: the routing kernel's 64 × 64 score tile and operand chunks need 25344 bytes/);
    const resident = { dims: validateAttentionInput(input(100)) } as unknown as ResidentAttention;
    await expect(small.runResident!(resident)).rejects.toThrow(ConfigError);
  });

  it('plans the pooled means as its only scratch: 64 KiB per KV slot at S = 64k, B = 512, D = 128', () => {
    const d = { ...validateAttentionInput(input(100)), keySeq: 65536, querySeq: 65536, headDim: 128, groupSize: 1 };
    expect(mobaPlan(d, mobaConfigSchema.parse({}))).toEqual({ pooled: 128, maxBlocks: 128, stride: 3, scratchBytesPerSlot: 4 * 128 * 128 });
  });
});
