import { decodeMergeWgsl, decodePartialWgsl } from '@sparse-attn/backend-gpu';
import { describe, expect, it } from 'vitest';
import { decodeMergeLseWgsl, decodePartialDumpWgsl } from './dump-decode-wgsl.js';
import { pageDecodeWgsl } from './page-decode-wgsl.js';

describe("DELTA's score dump patched into the backend's split-K decode kernels", () => {
  for (const o of [{ headDim: 64, valueDim: 64 }, { headDim: 18, valueDim: 10 }, { headDim: 128, valueDim: 160 }]) {
    it(`finds its anchors and only adds lines (D ${o.headDim}, Dv ${o.valueDim})`, () => {
      const partial = decodePartialDumpWgsl(o);
      const merge = decodeMergeLseWgsl(o.valueDim);
      // The backend's kernel text is kept line for line; the dump adds its bindings and one write each.
      const added = (patched: string, original: string) => {
        const lines = original.split('\n');
        return patched.split('\n').filter((line) => {
          const at = lines.indexOf(line);
          if (at < 0) return true;
          lines.splice(at, 1);
          return false;
        });
      };
      expect(added(partial, decodePartialWgsl(o))).toEqual([
        'struct DumpParams { querySlotBase: u32, querySeq: u32, pad0: u32, pad1: u32 }',
        '@group(0) @binding(5) var<storage, read_write> dumpLogits: array<f32>;',
        '@group(0) @binding(6) var<uniform> dump: DumpParams;',
        '    if (live) { dumpLogits[((dump.querySlotBase + slot) * P.querySeq + i) * P.keySeq + key] = s; }',
      ]);
      expect(added(merge, decodeMergeWgsl(o.valueDim))).toEqual([
        'struct DumpParams { querySlotBase: u32, querySeq: u32, pad0: u32, pad1: u32 }',
        '@group(0) @binding(4) var<storage, read_write> lseAll: array<f32>;',
        '@group(0) @binding(5) var<uniform> dump: DumpParams;',
        '  if (lid == 0u) { lseAll[dump.querySlotBase * dump.querySeq + row] = lse[row]; }',
      ]);
      // The logit is written after it is computed and before the tile reduction reads it.
      expect(partial.indexOf('dumpLogits[')).toBeGreaterThan(partial.indexOf('s = '));
      expect(partial.indexOf('dumpLogits[(')).toBeLessThan(partial.indexOf('red[lid] = s;'));
    });
  }

  it('page decode: vec4 keys when the head dim allows, one accumulator per 64 value columns', () => {
    expect(pageDecodeWgsl({ headDim: 64, valueDim: 64 })).toContain('array<vec4<f32>>');
    expect(pageDecodeWgsl({ headDim: 18, valueDim: 10 })).not.toContain('vec4');
    const wide = pageDecodeWgsl({ headDim: 128, valueDim: 160 });
    expect(wide).toContain('var o2 = 0.0;');
    expect(wide).not.toContain('var o3');
  });
});
