import { describe, expect, it } from 'vitest';
import { ConfigError } from '@sparse-attn/core';
import { RopeRotation } from './rope-rotation.js';

function rotated(rope: RopeRotation, x: readonly number[], position: number): number[] {
  const out = new Float32Array(x.length);
  rope.rotate(Float32Array.from(x), 0, out, 0, x.length, position);
  return Array.from(out);
}

const dot = (a: readonly number[], b: readonly number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe('RopeRotation (Hugging Face Llama rotate-half convention)', () => {
  it('pairs channel i with i + D/2 at angle position · θ^(−2i/D) (hand-worked, D = 4, θ = 100, position 3)', () => {
    const got = rotated(new RopeRotation({ theta: 100, rotaryDims: null }), [1, 2, 3, 4], 3);
    // inv_freq = [1, 100^(−1/2)] = [1, 0.1]: angles 3 and 0.3.
    const expected = [1 * Math.cos(3) - 3 * Math.sin(3), 2 * Math.cos(0.3) - 4 * Math.sin(0.3), 3 * Math.cos(3) + 1 * Math.sin(3), 4 * Math.cos(0.3) + 2 * Math.sin(0.3)];
    got.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 6));
  });

  it('partial rotary: only the leading rotaryDims channels rotate, with θ^(−2i/rotaryDims)', () => {
    const got = rotated(new RopeRotation({ theta: 100, rotaryDims: 4 }), [1, 2, 3, 4, 5, 6], 3);
    const expected = [1 * Math.cos(3) - 3 * Math.sin(3), 2 * Math.cos(0.3) - 4 * Math.sin(0.3), 3 * Math.cos(3) + 1 * Math.sin(3), 4 * Math.cos(0.3) + 2 * Math.sin(0.3), 5, 6];
    got.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 6));
    expect(rotated(new RopeRotation({ theta: 100, rotaryDims: 0 }), [1, 2, 3, 4], 7)).toEqual([1, 2, 3, 4]);
  });

  it('scores depend on the position difference only (the identity the slot layout relies on), negative positions included', () => {
    const rope = new RopeRotation({ theta: 10000, rotaryDims: null });
    const q = [0.3, -1.2, 0.7, 2.0, -0.4, 0.9, 1.1, -0.6];
    const k = [1.5, 0.2, -0.8, 0.4, 0.6, -1.3, 0.1, 0.5];
    const reference = dot(rotated(rope, q, 900), rotated(rope, k, 37));
    expect(dot(rotated(rope, q, 900 - 37), rotated(rope, k, 0))).toBeCloseTo(reference, 4);
    expect(dot(rotated(rope, q, 0), rotated(rope, k, 37 - 900))).toBeCloseTo(reference, 4);
    expect(dot(rotated(rope, q, 5), rotated(rope, k, 5))).toBeCloseTo(dot(q, k), 5);
  });

  it('rotates in place', () => {
    const rope = new RopeRotation({ theta: 100, rotaryDims: null });
    const row = Float32Array.from([1, 2, 3, 4]);
    rope.rotate(row, 0, row, 0, 4, 3);
    expect(Array.from(row)).toEqual(rotated(rope, [1, 2, 3, 4], 3));
  });

  it('rejects bad settings with ConfigError', () => {
    expect(() => new RopeRotation({ theta: 0, rotaryDims: null })).toThrow(ConfigError);
    expect(() => new RopeRotation({ theta: 10000, rotaryDims: 3 })).toThrow(ConfigError);
    expect(() => rotated(new RopeRotation({ theta: 10000, rotaryDims: 8 }), [1, 2, 3, 4], 1)).toThrow(ConfigError);
    expect(() => rotated(new RopeRotation({ theta: 10000, rotaryDims: null }), [1, 2, 3], 1)).toThrow(ConfigError);
    expect(() => rotated(new RopeRotation({ theta: 10000, rotaryDims: null }), [1, 2], 1.5)).toThrow(ConfigError);
  });
});
