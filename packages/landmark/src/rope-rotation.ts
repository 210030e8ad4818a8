/**
 * Kernel: rotary position embedding in the Hugging Face Llama "rotate half" convention, the one
 * Landmark Attention's LLaMA code uses (`llama_mem.py`: `rotate_half`, `apply_rotary_pos_emb`),
 * with an optional partial rotary width `r` (the leading `r` channels rotate, the rest pass):
 *
 *   inv_freq_i = θ^(−2i/r),  i ∈ [0, r/2);   a_i = pos · inv_freq_i
 *   x'_i       = x_i · cos a_i − x_{i+r/2} · sin a_i
 *   x'_{i+r/2} = x_{i+r/2} · cos a_i + x_i · sin a_i
 *   x'_c       = x_c                                      c ≥ r
 *
 * Angles are computed in float64 and the cos/sin tables stored in float32, one row per position,
 * grown on demand (the convention of `packages/model`'s `RotaryEmbedding`; this package keeps
 * its own copy so that it does not depend on the model package).
 *
 * Because every pair is a plane rotation, `rope(q, a) · rope(k, b) = rope(q, a − c) · rope(k, b − c)`:
 * the Landmark kernel uses this to rotate keys once at their true positions and move each
 * retrieved block to its slot position by rotating the query instead.
 */
import { ConfigError } from '@sparse-attn/core';

/** Settings of {@link RopeRotation}. */
export interface RopeSettings {
  /** RoPE base θ (`rope_theta`; LLaMA-1/2 use 10000). */
  readonly theta: number;
  /** Leading channels of a head that rotate (even); `null` rotates the whole head (Llama). */
  readonly rotaryDims: number | null;
}

/** Cached cos/sin tables of one RoPE (θ, rotary width); rotates single rows at any integer position. */
export class RopeRotation {
  readonly theta: number;
  readonly rotaryDims: number | null;
  private width = -1;
  private invFreq = new Float64Array(0);
  private cos = new Float32Array(0);
  private sin = new Float32Array(0);
  private rows = 0;

  constructor(settings: RopeSettings) {
    if (!(settings.theta > 0 && Number.isFinite(settings.theta))) throw new ConfigError(`RoPE: theta must be positive and finite, got ${settings.theta}`);
    const dims = settings.rotaryDims;
    if (dims !== null && !(Number.isInteger(dims) && dims >= 0 && dims % 2 === 0)) throw new ConfigError(`RoPE: rotaryDims must be a non-negative even integer or null, got ${dims}`);
    this.theta = settings.theta;
    this.rotaryDims = dims;
  }

  /** Rotated channels for a head of `headDim` channels; throws ConfigError when it does not fit. */
  widthFor(headDim: number): number {
    const width = this.rotaryDims ?? headDim;
    if (width > headDim || width % 2 !== 0) {
      throw new ConfigError(`RoPE: rotaryDims must be even and at most headDim ${headDim}, got ${this.rotaryDims ?? `the whole head (${headDim}, odd)`}`);
    }
    return width;
  }

  /**
   * Writes `source[sourceOffset .. +headDim)` rotated to `position` into
   * `target[targetOffset .. +headDim)` (the two may be the same row).
   */
  rotate(source: Float32Array, sourceOffset: number, target: Float32Array, targetOffset: number, headDim: number, position: number): void {
    const width = this.widthFor(headDim);
    for (let c = width; c < headDim; c++) target[targetOffset + c] = source[sourceOffset + c]!;
    if (width === 0) return;
    this.prepare(width, position);
    const half = width / 2;
    if (position >= 0) {
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
    // Negative positions (not produced by the slot layout, but well defined): no table row.
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

  private prepare(width: number, position: number): void {
    if (!Number.isInteger(position)) throw new ConfigError(`RoPE: position must be an integer, got ${position}`);
    if (width !== this.width) {
      this.width = width;
      const half = width / 2;
      this.invFreq = new Float64Array(half);
      for (let i = 0; i < half; i++) this.invFreq[i] = 1 / Math.pow(this.theta, (2 * i) / width);
      this.cos = new Float32Array(0);
      this.sin = new Float32Array(0);
      this.rows = 0;
    }
    if (position < this.rows) return;
    const rows = Math.max(position + 1, this.rows * 2, 64);
    const half = width / 2;
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
