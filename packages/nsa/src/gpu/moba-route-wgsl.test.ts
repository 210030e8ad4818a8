import { describe, expect, it } from 'vitest';
import { ConfigError, createWorkload, validateAttentionInput, type AttentionInput } from '@sparse-attn/core';
import type { GpuBackend, ResidentAttention } from '@sparse-attn/backend-gpu';
import { gpuMobaMethod, mobaPlan } from './moba-gpu.js';
import { mobaConfigSchema } from '../moba.js';
import { MOBA_ROUTE_UNROLLED_CANDIDATES, MOBA_ROUTE_WORKGROUP_BYTES, mobaRouteWgsl, mobaRouteWorkgroupBytes } from './moba-route-wgsl.js';

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
  it('keeps K = maxPicks − 1 candidates per row and thread in registers, with no score tile', () => {
    const code = mobaRouteWgsl({ headDim: 128, maxPicks: 3 });
    expect(code).toContain('const D: u32 = 128u;');
    expect(code).toContain('var keys: array<f32, 3>;');
    expect(code).toContain('var picked: array<u32, 3>;');
    // Two (score, block) scalar pairs for each of the thread's four rows, empty slots marked by the block.
    for (const r of [0, 1, 2, 3]) {
      for (const p of [0, 1]) expect(code).toContain(`var ck${r}_${p} = 0.0;\n  var cb${r}_${p} = INVALID;`);
      expect(code).not.toContain(`ck${r}_2`);
    }
    // No per-tile score tile or scan: the only workgroup memory besides the operand chunks is the merge buffer.
    expect(code).not.toContain('var<workgroup> tile');
    expect(code).toContain('var<workgroup> candKey: array<f32, 128>;');
    expect(code).toContain('var<workgroup> candBlock: array<u32, 128>;');
    // Only constant indices into the candidates: no candidate arrays at all.
    expect(code).not.toMatch(/var c[kb]\d: array/);
    expect(code).toContain('var<storage, read> means: array<vec4<f32>>;');
    // Scalar loads when D is not a multiple of 4; at least one pick slot for the forced block.
    expect(mobaRouteWgsl({ headDim: 18, maxPicks: 0 })).toContain('var<storage, read> means: array<f32>;');
    expect(mobaRouteWgsl({ headDim: 18, maxPicks: 0 })).toContain('var keys: array<f32, 1>;');
    // No gate-score buffer is bound: q, means, bounds, indices and the parameters.
    expect(code).not.toContain('scores: array');
    expect(code).not.toContain('@binding(5)');
  });

  it('with top-k 1 keeps no candidates and merges nothing (the current block alone)', () => {
    const code = mobaRouteWgsl({ headDim: 16, maxPicks: 1 });
    expect(code).toContain('const K: u32 = 0u;');
    expect(code).not.toContain('ck0');
    expect(code).not.toContain('candKey');
    expect(code).not.toContain('workgroupBarrier();\n    if (owner)');
  });

  it('writes the insertion out slot by slot up to K = 15, loops over private arrays above', () => {
    const unrolled = mobaRouteWgsl({ headDim: 16, maxPicks: MOBA_ROUTE_UNROLLED_CANDIDATES + 1 });
    expect(unrolled).toContain(`cb3_${MOBA_ROUTE_UNROLLED_CANDIDATES - 1}`);
    expect(unrolled).not.toContain('for (var k0');
    const looped = mobaRouteWgsl({ headDim: 16, maxPicks: MOBA_ROUTE_UNROLLED_CANDIDATES + 2 });
    expect(looped).toContain(`var ck0: array<f32, ${MOBA_ROUTE_UNROLLED_CANDIDATES + 1}>;`);
    expect(looped).toContain('for (var k0 = 0u; k0 < K; k0 += KW)');
    expect(looped).toContain(`var<workgroup> candKey: array<f32, ${64 * MOBA_ROUTE_UNROLLED_CANDIDATES}>;`);
  });

  it('needs 8 704 B of operand chunks plus 512 B per candidate slot: 9 728 B at top-k 3, at most 16 KiB for any top-k', () => {
    expect(mobaRouteWorkgroupBytes(1)).toBe(8704);
    expect(mobaRouteWorkgroupBytes(3)).toBe(8704 + 64 * 2 * 8);
    expect(mobaRouteWorkgroupBytes(16)).toBe(16384);
    expect(mobaRouteWorkgroupBytes(1000)).toBe(16384);
    expect(MOBA_ROUTE_WORKGROUP_BYTES).toBe(16384);
    for (let picks = 1; picks < 40; picks++) expect(mobaRouteWorkgroupBytes(picks)).toBeLessThanOrEqual(MOBA_ROUTE_WORKGROUP_BYTES);
  });

  it("a device below what the call's top-k needs throws a ConfigError before any GPU work (prefill, runResident)", async () => {
    const small = gpuMobaMethod.create(limitedBackend(9216), { blockSize: 16, topK: 3 });
    await expect(small.prefill(input(100))).rejects.toThrow(ConfigError);
    await expect(small.prefill(input(100))).rejects.toThrow(/moba: .* need 9728 bytes/);
    const resident = { dims: validateAttentionInput(input(100)) } as unknown as ResidentAttention;
    await expect(small.runResident!(resident)).rejects.toThrow(ConfigError);
    // Top-k 1 keeps no candidates: the operand chunks (8 704 B) fit the same device.
    await expect(gpuMobaMethod.create(limitedBackend(9216), { blockSize: 16, topK: 1 }).prefill(input(100))).rejects.toThrow(/GPU work/);
    // WebGPU's minimum (16 KiB) is enough for any top-k.
    const minimum = gpuMobaMethod.create(limitedBackend(16384), { blockSize: 16, topK: 1000 });
    await expect(minimum.prefill(input(100))).rejects.toThrow(/GPU work/);
  });

  it('plans the pooled means as its only scratch: 64 KiB per KV slot at S = 64k, B = 512, D = 128', () => {
    const d = { ...validateAttentionInput(input(100)), keySeq: 65536, querySeq: 65536, headDim: 128, groupSize: 1 };
    expect(mobaPlan(d, mobaConfigSchema.parse({}))).toEqual({ pooled: 128, maxBlocks: 128, stride: 3, scratchBytesPerSlot: 4 * 128 * 128 });
  });
});
