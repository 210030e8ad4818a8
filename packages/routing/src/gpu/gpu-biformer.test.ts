import { validateAttentionInput } from '@sparse-attn/core';
import { createWorkload, sliceSeq } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { biformerConfigSchema, biformerMethod } from '../biformer-attention.js';
import { biformerGeometry, biformerScratchBytesPerSlot } from './gpu-biformer.js';
import { regionAffinityWgsl } from './region-affinity-wgsl.js';
import { regionMeanWgsl } from './region-mean-wgsl.js';
import { regionTopKWgsl } from './region-top-k-wgsl.js';
import { regionTopKRowsWgsl } from './region-top-k-rows-wgsl.js';

describe('biformer GPU geometry (no GPU needed)', () => {
  it.each([
    [203, 203, 16],
    [77, 5, 16],
    [96, 32, 16],
    [1, 1, 8],
  ])('matches the layout of the CPU selection: S %i, Sq %i, R %i', (seq, querySeq, regionSize) => {
    const w = createWorkload('gaussian', { batch: 1, queryHeads: 2, kvHeads: 1, seqLength: seq, headDim: 8, seed: 1 });
    const input = { ...w.input, q: sliceSeq(w.input.q, seq - querySeq, seq) };
    const config = biformerConfigSchema.parse({ regionSize, topK: 2 });
    const cpu = biformerMethod.create(config).prefill(input).selection!;
    const g = biformerGeometry(validateAttentionInput(input), config);
    expect(g.rowsPerHead).toBe(cpu.rows);
    expect(g.aligned ? regionSize : 1).toBe(cpu.queryBlockSize);
    expect(g.keyRegions).toBe(Math.ceil(seq / regionSize));
    let widest = 0;
    for (let r = 0; r + 1 < cpu.offsets.length; r++) widest = Math.max(widest, cpu.offsets[r + 1]! - cpu.offsets[r]!);
    expect(widest).toBeLessThanOrEqual(g.stride);
  });

  it('needs (S/R)² scratch per routing head, not S²', () => {
    const d = { keySeq: 65536, querySeq: 65536, queryOffset: 0, groupSize: 4 } as Parameters<typeof biformerScratchBytesPerSlot>[0];
    expect(biformerScratchBytesPerSlot(d, biformerConfigSchema.parse({}))).toBe(4 * 4 * 1024 * 1024);
    expect(biformerScratchBytesPerSlot(d, biformerConfigSchema.parse({ routingScope: 'shared' }))).toBe(4 * 1024 * 1024);
  });

  it('kernels are generated with a main entry point and no reserved identifiers', () => {
    for (const code of [regionMeanWgsl(), regionAffinityWgsl(128), regionAffinityWgsl(18), regionTopKWgsl(), regionTopKRowsWgsl(4), regionTopKRowsWgsl(16)]) {
      expect(code).toContain('fn main(');
      expect(code).not.toMatch(/\b(shared|local)\b/);
    }
  });
});
