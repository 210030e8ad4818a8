/**
 * Kernel: rotary position embedding (RoPE) in the Hugging Face Llama "rotate half" convention,
 * over the leading `width` channels of a row (partial rotary leaves the rest to the caller):
 *
 *   inv_freq_i = θ^(−2i/width),  i ∈ [0, width/2);   a_i = pos · inv_freq_i
 *   x'_i           = x_i · cos a_i − x_{i+width/2} · sin a_i
 *   x'_{i+width/2} = x_{i+width/2} · cos a_i + x_i · sin a_i
 *
 * (`apply_rotary_pos_emb` with `rotate_half`: the two halves are paired, not interleaved pairs as
 * in RoFormer.) Angles are computed in float64 and the cos/sin tables stored in float32, one row
 * per position, grown on demand — so every user (the model runtime, Landmark Attention's slot
 * positions) rotates bit-identically.
 */
import { ConfigError } from './errors.js';

/** Cached cos/sin tables of one RoPE (rotated width, θ); rotates single rows at integer positions. */
export class RotaryTable {
  /** Leading channels rotated (even). */
  readonly width: number;
  /** RoPE base θ (`rope_theta`). */
  readonly theta: number;
  private readonly invFreq: Float64Array;
  private cos = new Float32Array(0);
  private sin = new Float32Array(0);
  private rows = 0;

  constructor(width: number, theta: number) {
    if (!(Number.isInteger(width) && width >= 0 && width % 2 === 0)) throw new ConfigError(`RoPE: the rotated width must be a non-negative even integer, got ${width}`);
    if (!(theta > 0 && Number.isFinite(theta))) throw new ConfigError(`RoPE: theta must be positive and finite, got ${theta}`);
    this.width = width;
    this.theta = theta;
    const half = width / 2;
    this.invFreq = new Float64Array(half);
    for (let i = 0; i < half; i++) this.invFreq[i] = 1 / Math.pow(theta, (2 * i) / width);
  }

  /**
   * Makes table rows for positions `[0, count)` ready, growing geometrically (at least 64 rows)
   * but never past `limit` rows.
   */
  ensure(count: number, limit = Number.POSITIVE_INFINITY): void {
    if (count <= this.rows) return;
    const rows = Math.min(limit, Math.max(count, this.rows * 2, 64));
    const half = this.width / 2;
    const cos = new Float32Array(rows * half);
    const sin = new Float32Array(rows * half);
    cos.set(this.cos);
    sin.set(this.sin);
    for (let p = this.rows; p < rows; p++) {
      for (let i = 0; i < half; i++) {
        const angle = p * this.invFreq[i]!;
        cos[p * half + i] = Math.cos(angle);
        sin[p * half + i] = Math.sin(angle);
      }
    }
    this.cos = cos;
    this.sin = sin;
    this.rows = rows;
  }

  /**
   * Writes the leading `width` channels of `source[sourceOffset ..]` rotated to the integer
   * `position` into `target[targetOffset ..]` (the two may be the same row). Non-negative
   * positions read the table (grown as needed); negative ones, well defined for relative moves,
   * compute their angles directly with the same float32 rounding.
   */
  rotate(source: Float32Array, sourceOffset: number, target: Float32Array, targetOffset: number, position: number): void {
    const half = this.width / 2;
    if (half === 0) return;
    if (!Number.isInteger(position)) throw new ConfigError(`RoPE: position must be an integer, got ${position}`);
    if (position >= 0) {
      this.ensure(position + 1);
      const table = position * half;
      for (let i = 0; i < half; i++) {
        const c = this.cos[table + i]!;
        const s = this.sin[table + i]!;
        const x0 = source[sourceOffset + i]!;
        const x1 = source[sourceOffset + i + half]!;
        target[targetOffset + i] = x0 * c - x1 * s;
        target[targetOffset + i + half] = x1 * c + x0 * s;
      }
      return;
    }
    for (let i = 0; i < half; i++) {
      const angle = position * this.invFreq[i]!;
      const c = Math.fround(Math.cos(angle));
      const s = Math.fround(Math.sin(angle));
      const x0 = source[sourceOffset + i]!;
      const x1 = source[sourceOffset + i + half]!;
      target[targetOffset + i] = x0 * c - x1 * s;
      target[targetOffset + i + half] = x1 * c + x0 * s;
    }
  }
}
