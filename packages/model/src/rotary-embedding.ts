/**
 * Rotary position embedding of a model's attention heads in the Hugging Face Llama "rotate half"
 * convention (`apply_rotary_pos_emb` with `rotate_half`), on core's {@link RotaryTable}: angles in
 * float64, cos/sin tables in float32, one row per position, grown on demand up to
 * `max_position_embeddings`.
 */
import { ConfigError, RotaryTable } from '@sparse-attn/core';

/** Cached cos/sin tables for one head dim and θ. */
export class RotaryEmbedding {
  readonly headDim: number;
  readonly theta: number;
  /** Largest position accepted (the config's `max_position_embeddings`). */
  readonly maxPositions: number;
  private readonly table: RotaryTable;

  constructor(headDim: number, theta: number, maxPositions: number) {
    if (!(Number.isInteger(headDim) && headDim > 0 && headDim % 2 === 0)) throw new ConfigError(`RotaryEmbedding: headDim must be a positive even integer, got ${headDim}`);
    if (!(theta > 0 && Number.isFinite(theta))) throw new ConfigError(`RotaryEmbedding: rope_theta must be positive and finite, got ${theta}`);
    this.headDim = headDim;
    this.theta = theta;
    this.maxPositions = maxPositions;
    this.table = new RotaryTable(headDim, theta);
  }

  /**
   * Rotates `heads` rows of `headDim` for each of `count` tokens in place. Row `(h, t)` starts at
   * `data[offset + (h * stride + t) * headDim]`, the `[heads, stride, headDim]` layout of an
   * attention tensor; token `t` sits at `positions[t]`.
   */
  apply(data: Float32Array, offset: number, heads: number, stride: number, count: number, positions: ArrayLike<number>): void {
    let top = 0;
    for (let t = 0; t < count; t++) top = Math.max(top, positions[t]!);
    this.table.ensure(top + 1, this.maxPositions);
    for (let t = 0; t < count; t++) {
      const pos = positions[t]!;
      if (!(Number.isInteger(pos) && pos >= 0 && pos < this.maxPositions)) {
        throw new ConfigError(`RoPE: position ${pos} of token ${t} outside [0, max_position_embeddings = ${this.maxPositions})`);
      }
      for (let h = 0; h < heads; h++) {
        const base = offset + (h * stride + t) * this.headDim;
        this.table.rotate(data, base, data, base, pos);
      }
    }
  }
}
