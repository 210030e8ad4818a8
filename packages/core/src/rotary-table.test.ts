import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { Rng } from './random.js';
import { RotaryTable } from './rotary-table.js';

/** Rotate-half RoPE straight from its formula, in float64. */
function rotateDirect(x: Float32Array, width: number, theta: number, position: number): number[] {
  const out = Array.from(x);
  const half = width / 2;
  for (let i = 0; i < half; i++) {
    const angle = position / Math.pow(theta, (2 * i) / width);
    out[i] = x[i]! * Math.cos(angle) - x[i + half]! * Math.sin(angle);
    out[i + half] = x[i + half]! * Math.cos(angle) + x[i]! * Math.sin(angle);
  }
  return out;
}

describe('RotaryTable', () => {
  it('matches the rotate-half formula at table and negative positions, in place or not, leaving channels past the width', () => {
    const rng = new Rng(5);
    const table = new RotaryTable(8, 10000);
    for (const position of [0, 1, 7, 63, 64, 1000, 5000, -3, -200]) {
      const x = Float32Array.from({ length: 12 }, () => rng.normal());
      const target = new Float32Array(12).fill(Number.NaN);
      table.rotate(x, 0, target, 0, position);
      const expected = rotateDirect(x, 8, 10000, position);
      for (let c = 0; c < 8; c++) expect(target[c]).toBeCloseTo(expected[c]!, 4);
      for (let c = 8; c < 12; c++) expect(target[c]).toBeNaN();
      const inPlace = x.slice();
      table.rotate(inPlace, 0, inPlace, 0, position);
      expect(Array.from(inPlace.subarray(0, 8))).toEqual(Array.from(target.subarray(0, 8)));
    }
  });

  it('rotations compose by position difference (relative-position property)', () => {
    const rng = new Rng(9);
    const table = new RotaryTable(16, 500);
    const q = Float32Array.from({ length: 16 }, () => rng.normal());
    const k = Float32Array.from({ length: 16 }, () => rng.normal());
    const dot = (a: number, b: number) => {
      const qa = new Float32Array(16);
      const kb = new Float32Array(16);
      table.rotate(q, 0, qa, 0, a);
      table.rotate(k, 0, kb, 0, b);
      return qa.reduce((s, v, i) => s + v * kb[i]!, 0);
    };
    expect(dot(120, 40)).toBeCloseTo(dot(80, 0), 3);
    expect(dot(5, 40)).toBeCloseTo(dot(0, 35), 3);
  });

  it('rejects bad settings and fractional positions with ConfigError', () => {
    const table = new RotaryTable(4, 10000);
    expect(() => new RotaryTable(3, 10000)).toThrow(ConfigError);
    expect(() => new RotaryTable(4, 0)).toThrow(ConfigError);
    expect(() => table.rotate(new Float32Array(4), 0, new Float32Array(4), 0, 1.5)).toThrow(ConfigError);
  });
});
