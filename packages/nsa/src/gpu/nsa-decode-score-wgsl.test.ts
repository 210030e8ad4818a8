import { describe, expect, it } from 'vitest';
import { NSA_DECODE_MAX_QUERIES, NSA_DECODE_QUERY_FLOATS, nsaDecodeLogitsWgsl, nsaDecodeReduceWgsl, usesDecodeScoring } from './nsa-decode-score-wgsl.js';

describe('NSA decode scoring kernels (no GPU needed)', () => {
  it('take decode-sized calls only: at most 16 queries, and G · T query rows that fit the staging array', () => {
    expect(usesDecodeScoring({ querySeq: 1, groupSize: 1, headDim: 128 }, false)).toBe(true);
    expect(usesDecodeScoring({ querySeq: NSA_DECODE_MAX_QUERIES, groupSize: 1, headDim: 128 }, false)).toBe(true);
    expect(usesDecodeScoring({ querySeq: NSA_DECODE_MAX_QUERIES + 1, groupSize: 1, headDim: 16 }, false)).toBe(false);
    // Quest rows are [q⁺ | q⁻]: twice the floats.
    expect(usesDecodeScoring({ querySeq: 3, groupSize: 4, headDim: 128 }, false)).toBe(true);
    expect(usesDecodeScoring({ querySeq: 3, groupSize: 4, headDim: 128 }, true)).toBe(false);
    expect(usesDecodeScoring({ querySeq: 1, groupSize: NSA_DECODE_QUERY_FLOATS / 128 + 1, headDim: 128 }, false)).toBe(false);
  });

  it('stage the queries as the tiled kernel reads them (Quest: [q⁺ | q⁻]) and sum heads per window in order', () => {
    const plain = nsaDecodeLogitsWgsl({ headDim: 64, groupSize: 2, quest: false });
    expect(plain).toContain('const E: u32 = 64u;');
    expect(plain).toContain('qs[x] = vec4<f32>(q[base + e0], q[base + e1], q[base + e2], q[base + e3]);');
    // vec4 window loads when E is a multiple of 4; scalar ones otherwise.
    expect(plain).toContain('var<storage, read> keys: array<vec4<f32>>;');
    expect(plain).toContain('const L: u32 = 4u;');
    // The whole dot product is scaled (one sum of the four lanes).
    expect(plain).toContain('select(NEG, ((acc.x + acc.y) + (acc.z + acc.w)) * P.scale, w < visible(t))');
    const scalar = nsaDecodeLogitsWgsl({ headDim: 6, groupSize: 1, quest: false });
    expect(scalar).toContain('qs[x] = q[base + x % E];');
    expect(scalar).toContain('var<storage, read> keys: array<f32>;');
    // Quest doubles the width: 2 · 6 = 12 channels, vec4 again.
    expect(nsaDecodeLogitsWgsl({ headDim: 6, groupSize: 1, quest: true })).toContain('const E: u32 = 12u;\n// Channels per load: E / L loads per window.\nconst L: u32 = 4u;');
    const quest = nsaDecodeLogitsWgsl({ headDim: 64, groupSize: 2, quest: true });
    expect(quest).toContain('const E: u32 = 128u;');
    expect(quest).toContain('select(min(q[base + e0 - D], 0.0), max(q[base + e0], 0.0), e0 < D)');
    const reduce = nsaDecodeReduceWgsl({ groupSize: 4 });
    expect(reduce).toContain('const G: u32 = 4u;');
    expect(reduce).toContain('var<workgroup> lse: array<f32, 4>;');
    expect(reduce).toMatch(/for \(var g = 0u; g < G; g\+\+\) \{ p \+= exp\(/);
  });
});
