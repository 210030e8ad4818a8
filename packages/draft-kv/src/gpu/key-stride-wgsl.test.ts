import { describe, expect, it } from 'vitest';
import { uniformStructFields } from '@sparse-attn/backend-gpu';
import { KEY_NORM_PARAMS, keyNormScoresWgsl } from './key-norm-scores-wgsl.js';
import { OBSERVER_PARAMS, observerPartialsWgsl } from './observer-partials-wgsl.js';
import { SINK_WINDOW_PARAMS, sinkWindowHooks } from './sink-window-attention-wgsl.js';

/** The kernels of this package that read a resident chunk's keys or values, with their parameter lists. */
const readers: readonly { name: string; code: string; params: readonly string[] }[] = [
  { name: 'key norm', code: keyNormScoresWgsl({ headDim: 16 }), params: KEY_NORM_PARAMS },
  { name: 'observer partials', code: observerPartialsWgsl({ headDim: 16 }), params: OBSERVER_PARAMS },
  { name: 'sink + window attention', code: `struct Params {${sinkWindowHooks().params}}\n${sinkWindowHooks().prologue}`, params: SINK_WINDOW_PARAMS },
];

describe('kernels reading chunk keys (no GPU needed)', () => {
  it.each(readers)('$name: the uniform struct is its parameter list (a multiple of 16 bytes, with keyStride), and keys are read at slot · keyStride', ({ code, params }) => {
    expect(uniformStructFields(code)).toEqual([...params]);
    expect((params.length * 4) % 16).toBe(0);
    expect(params).toContain('keyStride');
    expect(code).toContain('P.keyStride');
    expect(code).not.toMatch(/\*\s*P\.keySeq\b/);
  });
});
