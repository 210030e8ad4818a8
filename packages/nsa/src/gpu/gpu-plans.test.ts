import { describe, expect, it } from 'vitest';
import { ConfigError, validateAttentionInput, createWorkload, type AttentionInput } from '@sparse-attn/core';
import type { GpuBackend } from '@sparse-attn/backend-gpu';
import { gpuMethods } from '../gpu.js';
import { hierarchicalIndexerConfigSchema, hierarchicalIndexerMethod } from '../hierarchical-indexer.js';
import { indexerPlan, indexerRangeRows, indexerSlotsPerGroup } from './indexer-gpu.js';
import { methods } from '../index.js';
import { mobaConfigSchema } from '../moba.js';
import { nsaConfigSchema } from '../nsa.js';
import { mobaPlan } from './moba-gpu.js';
import { nsaPlan, rangeRowsFor } from './nsa-gpu.js';
import { nsaScoreWgsl } from './nsa-score-tile-wgsl.js';
import { NSA_SELECT_ROW_BLOCKS, nsaSelectRowWgsl, nsaSelectWgsl } from './nsa-select-wgsl.js';

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
    const moba = mobaPlan(dims(1000), mobaConfigSchema.parse({ blockSize: 64, topK: 3 }));
    // The scratch is the pooled means: 15 complete blocks × D = 16 (the gates stay in the routing kernel).
    expect(moba).toEqual({ pooled: 15, maxBlocks: 16, stride: 3, scratchBytesPerSlot: 4 * 15 * 16 });
    const nsa = nsaPlan(fakeBackend(32768), dims(1000), nsaConfigSchema.parse({}));
    // n = 16 plus ceil(512 / 64) + 1 window blocks, capped by the 16 blocks of the call.
    expect(nsa.stride).toBe(16);
    expect(nsa.windows).toBe(15);
    expect(nsa.scratchBytesPerSlot).toBe(4 * 15 * 16);
    expect(nsaPlan(fakeBackend(32768), dims(5000), nsaConfigSchema.parse({})).stride).toBe(25);
    // The tiled scoring kernel needs ~25 KiB of workgroup memory: a typed error, not a GPU failure.
    expect(() => nsaPlan(fakeBackend(16384), dims(1000), nsaConfigSchema.parse({}))).toThrow(ConfigError);
    // The top-n kernel keeps its picks per thread (no per-block workgroup memory): 9000 blocks of one key plan.
    expect(nsaPlan(fakeBackend(32768), dims(9000), nsaConfigSchema.parse({ compressionBlock: 1, compressionStride: 1, selectionBlock: 1, selectedBlocks: 3 })).kernel).toEqual({ maxBlocks: 9000, maxPicks: 3, logits: false });
    // Logits instead of probabilities: one head per group and one window per selection block only;
    // pass 2 writes from registers whenever each block is one window.
    const modes = (queryHeads: number, kvHeads: number, config: Record<string, unknown>) => {
      const p = nsaPlan(fakeBackend(32768), dims(1000, queryHeads, kvHeads), nsaConfigSchema.parse(config));
      expect(p.score.logits).toBe(p.kernel.logits);
      return [p.kernel.logits, p.score.windowPerBlock];
    };
    expect(modes(2, 2, {})).toEqual([true, true]);
    expect(modes(2, 2, { compressionScore: 'quest' })).toEqual([true, true]);
    expect(modes(2, 1, {})).toEqual([false, true]);
    expect(modes(2, 2, { compressionBlock: 64, compressionStride: 32 })).toEqual([false, false]);
    expect(modes(2, 2, { compressionBlock: 32, compressionStride: 32, selectionBlock: 64 })).toEqual([false, false]);
    // Row ranges: at S = 64k (1024 blocks), 32 KV slots take 2048 queries per 256 MiB range.
    const wide = { ...dims(1000), querySeq: 65536, keySeq: 65536 };
    expect(rangeRowsFor(wide, nsaPlan({ context: { maxWorkgroupBytes: 32768, maxBinding: 2 ** 31 } } as unknown as GpuBackend, wide, nsaConfigSchema.parse({})), 32)).toBe(2048);
    expect(rangeRowsFor(dims(1000), nsaPlan(fakeBackend(32768), dims(1000), nsaConfigSchema.parse({}), 64 * 16 * 4 * 2), 1)).toBe(128);
    // The indexer at S = 64k, K = 512: 128 MiB of token rows per KV slot, so a 2 GiB binding takes 16 slots per group.
    const big = { context: { maxWorkgroupBytes: 32768, maxBinding: 2 ** 31 } } as unknown as GpuBackend;
    const wideIndexer = indexerPlan(big, wide, hierarchicalIndexerConfigSchema.parse({}));
    expect(indexerSlotsPerGroup(big, wide, wideIndexer)).toBe(16);
    expect(indexerRangeRows(wide, wideIndexer, 32)).toBe(2048);
    expect(() => indexerSlotsPerGroup({ context: { maxWorkgroupBytes: 32768, maxBinding: 2 ** 27 - 4 } } as unknown as GpuBackend, wide, wideIndexer)).toThrow(ConfigError);
    const indexer = indexerPlan(fakeBackend(16384), dims(1000), hierarchicalIndexerConfigSchema.parse({}));
    expect(indexer.stride).toBe(512);
    expect(indexer.kernel.maxCandidates).toBe(16 * 64);
    expect(indexer.scratchBytesPerSlot).toBe(4 * 1000 * 512);
    // MoBA's kernels keep no per-block workgroup memory: 5000 blocks of one key plan without a limit.
    expect(mobaPlan(dims(5000), mobaConfigSchema.parse({ blockSize: 1, topK: 3 }))).toMatchObject({ pooled: 5000, stride: 3 });
  });

  it('generates kernels whose sizes follow the call', () => {
    const code = nsaSelectWgsl({ maxBlocks: 1024, maxPicks: 16 });
    expect(code).toContain('const MP: u32 = 16u;');
    expect(code).toContain('var picked: array<u32, MP>;');
    expect(code).not.toContain('var<workgroup>');
    // Up to 16 picks are ranked in register slots; more take the private-array loop.
    expect(code).toContain('var key15 = -3.4e38;');
    expect(code).not.toContain('var keys: array<f32, MP>;');
    const loop = nsaSelectWgsl({ maxBlocks: 1024, maxPicks: 17 });
    expect(loop).toContain('var keys: array<f32, MP>;');
    expect(loop).not.toContain('var key0 ');
    // On logits, a block whose first window is hidden scores the lowest value instead of 0.
    expect(code).toContain('var batch = vec4<f32>(0.0);');
    expect(nsaSelectWgsl({ maxBlocks: 1024, maxPicks: 16, logits: true })).toContain('var batch = vec4<f32>(-3.0e38);');
    expect(nsaSelectWgsl({ maxBlocks: 1024, maxPicks: 17, logits: true })).toContain('var batch = vec4<f32>(-3.0e38);');
    // The decode steps' selection: one workgroup per row, the row's candidate scores in workgroup
    // memory as sortable keys, the best n − m kept by the radix top-k (hidden blocks score 0, or the lowest logit).
    const perRow = nsaSelectRowWgsl({ maxBlocks: 1024, maxPicks: 16 });
    expect(perRow).toContain('const MP: u32 = 16u;');
    expect(perRow).toContain(`var<workgroup> scoreKeys: array<u32, ${NSA_SELECT_ROW_BLOCKS}>;`);
    expect(perRow).toContain('var<workgroup> chosen: array<u32, 16>;');
    expect(perRow).toContain('scoreKeys[x] = sortable(s);');
    expect(perRow).toContain('chosen[pickRank] = low + u;');
    expect(perRow).toContain('var s = 0.0;');
    expect(nsaSelectRowWgsl({ maxBlocks: 1024, maxPicks: 16, logits: true })).toContain('var s = -3.0e38;');
    const score = nsaScoreWgsl({ headDim: 128, groupSize: 4, quest: false, tile: { rows: 64, chunk: 16 } });
    expect(score).toContain('const D: u32 = 128u;');
    expect(score).toContain('const G: u32 = 4u;');
    expect(score).toContain('var lseRows: array<vec4<f32>, G>;');
    // vec4 operand loads at D = 128; the one-pass logits skip the log-sum-exp pass.
    expect(score).toContain('var<storage, read> q: array<vec4<f32>>;');
    expect(nsaScoreWgsl({ headDim: 6, groupSize: 1, quest: false, tile: { rows: 64, chunk: 16 } })).toContain('var<storage, read> q: array<f32>;');
    const oneShot = nsaScoreWgsl({ headDim: 128, groupSize: 1, quest: false, tile: { rows: 64, chunk: 16 }, logits: true });
    expect(oneShot).not.toContain('lseRows');
    expect(oneShot).toContain('p0 = s0;');
    // One window per block: pass 2 writes each block from registers, no overlap mapping.
    expect(score).toContain('for (var c = low; c <= last; c++)');
    const direct = nsaScoreWgsl({ headDim: 128, groupSize: 4, quest: false, tile: { rows: 64, chunk: 16 }, windowPerBlock: true });
    expect(direct).not.toContain('for (var c = low; c <= last; c++)');
    expect(direct).toContain('importance[at + (w0 + tx + 48u) * P.rangeRows] = p3[3];');
    expect(nsaScoreWgsl({ headDim: 8, groupSize: 1, quest: true, tile: { rows: 64, chunk: 16 } })).toContain('const E: u32 = 16u;');
  });
});
