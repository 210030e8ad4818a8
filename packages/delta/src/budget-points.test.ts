import { createWorkload, referenceAttention, relativeL2Error, type MethodDefinition } from '@sparse-attn/core';
import { decodeTokenByToken } from '@sparse-attn/core/testing';
import { describe, expect, it } from 'vitest';
import { deltaMethod } from './delta.js';
import { tidalDecodeMethod } from './tidal-decode.js';

// The bench sweeps every method at lengths from 64 (its quick mode) up: each budget point must be
// a valid config at that length, and the last one must equal dense attention.
const lengths = [1, 15, 16, 17, 64, 100, 127, 128, 200, 1000, 1024, 4096];

describe.each([
  ['delta', deltaMethod],
  ['tidal-decode', tidalDecodeMethod],
] as [string, MethodDefinition][])('%s budget points', (_name, definition) => {
  it.each(lengths)('are valid configs at S=%i, sparsest first, ending with full', (seq) => {
    const points = definition.budgets!(seq);
    expect(points.length).toBeGreaterThan(0);
    expect(points.at(-1)!.label).toBe('full');
    for (const point of points) expect(() => definition.create(point.config), point.label).not.toThrow();
  });

  it.each([64, 100])('full point decodes exactly as dense attention at S=%i', (seq) => {
    const { input } = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: seq, headDim: 16, seed: 3 });
    const method = definition.create(definition.budgets!(seq).at(-1)!.config);
    expect(relativeL2Error(decodeTokenByToken(method, input), referenceAttention(input).output)).toBeLessThanOrEqual(1e-5);
    expect(relativeL2Error(method.prefill(input).output, referenceAttention(input).output)).toBeLessThanOrEqual(1e-5);
  });
});
