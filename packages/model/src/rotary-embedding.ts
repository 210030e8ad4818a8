/**
 * Kernel: rotary position embedding in the Hugging Face Llama "rotate half" convention.
 *
 *   inv_freq_i = θ^(−2i/d),  i ∈ [0, d/2);   a_i = pos · inv_freq_i
 *   x'_i       = x_i · cos a_i − x_{i+d/2} · sin a_i
 *   x'_{i+d/2} = x_{i+d/2} · cos a_i + x_i · sin a_i
 *
 * (`apply_rotary_pos_emb` with `rotate_half`: the two halves of a head are paired, not
 * interleaved pairs as in the original RoFormer.) Angles are computed in float64 and the
 * cos/sin tables stored in float32, one row per position, grown on demand.
 */
import { ConfigError } from '@sparse-attn/core';

/** Cached cos/sin tables for one head dim and θ. */
export class RotaryEmbedding {
  readonly headDim: number;
  readonly theta: number;
  /** Largest position accepted (the config's `max_position_embeddings`). */
  readonly maxPositions: number;
  private readonly invFreq: Float64Array;
  private cos = new Float32Array(0);
  private sin = new Float32Array(0);
  private rows = 0;

  constructor(headDim: number, theta: number, maxPositions: number) {
    if (!(Number.isInteger(headDim) && headDim > 0 && headDim % 2 === 0)) throw new ConfigError(`RotaryEmbedding: headDim must be a positive even integer, got ${headDim}`);
    if (!(theta > 0 && Number.isFinite(theta))) throw new ConfigError(`RotaryEmbedding: rope_theta must be positive and finite, got ${theta}`);
    this.headDim = headDim;
    this.theta = theta;
    this.maxPositions = maxPositions;
    const half = headDim / 2;
    this.invFreq = new Float64Array(half);
    for (let i = 0; i < half; i++) this.invFreq[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  }

  /**
   * Rotates `heads` rows of `headDim` for each of `count` tokens in place. Row `(h, t)` starts at
   * `data[offset + (h * stride + t) * headDim]`, the `[heads, stride, headDim]` layout of an
   * attention tensor; token `t` sits at `positions[t]`.
   */
  apply(data: Float32Array, offset: number, heads: number, stride: number, count: number, positions: ArrayLike<number>): void {
    const half = this.headDim / 2;
    let top = 0;
    for (let t = 0; t < count; t++) top = Math.max(top, positions[t]!);
    this.ensure(top + 1);
    for (let t = 0; t < count; t++) {
      const pos = positions[t]!;
      if (!(Number.isInteger(pos) && pos >= 0 && pos < this.maxPositions)) {
        throw new ConfigError(`RoPE: position ${pos} of token ${t} outside [0, max_position_embeddings = ${this.maxPositions})`);
      }
      const table = pos * half;
      for (let h = 0; h < heads; h++) {
        const base = offset + (h * stride + t) * this.headDim;
        for (let i = 0; i < half; i++) {
          const c = this.cos[table + i]!;
          const s = this.sin[table + i]!;
          const x0 = data[base + i]!;
          const x1 = data[base + i + half]!;
          data[base + i] = x0 * c - x1 * s;
          data[base + i + half] = x1 * c + x0 * s;
        }
      }
    }
  }

  private ensure(positions: number): void {
    if (positions <= this.rows) return;
    const rows = Math.min(this.maxPositions, Math.max(positions, this.rows * 2, 64));
    const half = this.headDim / 2;
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
}
