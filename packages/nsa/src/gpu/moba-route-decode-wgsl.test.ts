import { describe, expect, it } from 'vitest';
import { MOBA_ROUTE_DECODE_BLOCKS, MOBA_ROUTE_DECODE_MAX_QUERIES, mobaRouteDecodeWgsl, usesDecodeRouting } from './moba-route-decode-wgsl.js';
import { MOBA_ROUTE_PARAMS } from './moba-route-wgsl.js';

describe('MoBA decode routing kernel (no GPU needed)', () => {
  it('takes decode-sized calls only: at most 16 queries per head, and pooled blocks that fit its workgroup array', () => {
    expect(usesDecodeRouting(1, 128)).toBe(true);
    expect(usesDecodeRouting(MOBA_ROUTE_DECODE_MAX_QUERIES, MOBA_ROUTE_DECODE_BLOCKS)).toBe(true);
    expect(usesDecodeRouting(MOBA_ROUTE_DECODE_MAX_QUERIES + 1, 128)).toBe(false);
    expect(usesDecodeRouting(1, MOBA_ROUTE_DECODE_BLOCKS + 1)).toBe(false);
  });

  it('reads the tiled kernel\'s params and bindings, gates with vec4 loads when D is a multiple of 4, and keeps one pick slot at least', () => {
    const code = mobaRouteDecodeWgsl({ headDim: 128, maxPicks: 3 });
    // The tiled kernel's uniform block, field for field.
    const fields = /struct Params \{([^}]*)\}/.exec(code)![1]!.match(/(\w+):/g)!.map((f) => f.slice(0, -1));
    expect(fields).toEqual([...MOBA_ROUTE_PARAMS]);
    expect(code).toContain('const W: u32 = 32u;');
    expect(code).toContain('var<storage, read> means: array<vec4<f32>>;');
    // Four threads per block, each summing its vec4 lanes; their partial gates added in workgroup memory.
    expect(code).toContain('gatePart[lid] = acc.x + acc.y + acc.z + acc.w;');
    expect(code).toContain('gateKeys[j] = sortable(gatePart[lid + 0u] + gatePart[lid + 1u] + gatePart[lid + 2u] + gatePart[lid + 3u]);');
    // Interleaved: a thread's loads are SPLIT vectors apart (8 at a time at W = 32).
    expect(code).toContain('let m7 = means[at + e + 28u];');
    expect(code).toContain(`var<workgroup> gateKeys: array<u32, ${MOBA_ROUTE_DECODE_BLOCKS}>;`);
    expect(code).toContain('var picked: array<u32, MP>;');
    // The radix top-k (ties toward the later block: the CPU's order) writes the picks it keeps.
    expect(code).toContain('chosen[pickRank] = u;');
    const scalar = mobaRouteDecodeWgsl({ headDim: 18, maxPicks: 0 });
    expect(scalar).toContain('var<storage, read> means: array<f32>;');
    expect(scalar).toContain('const MP: u32 = 1u;');
    expect(scalar).toContain('gatePart[lid] = acc;');
    expect(scalar).toContain('for (var e = slice; e < W; e += 4u)');
  });
});
