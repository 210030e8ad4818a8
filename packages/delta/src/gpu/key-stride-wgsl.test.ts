import { describe, expect, it } from 'vitest';
import { uniformStructFields } from '@sparse-attn/backend-gpu';
import { ROW_LOGITS_PARAMS, rowLogitsWgsl } from './row-logits-wgsl.js';

describe('the row-logits kernel (no GPU needed)', () => {
  it('declares its parameter list (a multiple of 16 bytes, with keyStride) and reads keys at slot · keyStride (its logits stay keySeq apart)', () => {
    const code = rowLogitsWgsl(16);
    expect(uniformStructFields(code)).toEqual([...ROW_LOGITS_PARAMS]);
    expect((ROW_LOGITS_PARAMS.length * 4) % 16).toBe(0);
    expect(code).toMatch(/\(slot \/ P\.groupSize\) \* P\.keyStride \+ t/);
  });
});
