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
 * The rotation itself is core's {@link RotaryTable} (float64 angles, float32 tables grown on
 * demand), the same one `packages/model` rotates with, so both rotate bit-identically.
 *
 * Because every pair is a plane rotation, `rope(q, a) · rope(k, b) = rope(q, a − c) · rope(k, b − c)`:
 * the Landmark kernel uses this to rotate keys once at their true positions and move each
 * retrieved block to its slot position by rotating the query instead.
 */
import { ConfigError, RotaryTable } from '@sparse-attn/core';

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
  private table: RotaryTable | undefined;

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
    if (this.table?.width !== width) this.table = new RotaryTable(width, this.theta);
    this.table.rotate(source, sourceOffset, target, targetOffset, position);
  }
}
