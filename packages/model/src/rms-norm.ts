/**
 * Kernel: RMSNorm as in Hugging Face `LlamaRMSNorm`.
 *
 *   y = w ⊙ x / sqrt(mean(x²) + ε)
 *
 * The mean of squares is accumulated in float64 (HF upcasts to float32 from half precision;
 * we are float32 already, so float64 keeps the normaliser exact to float32 rounding).
 */

/** Normalises `rows` rows of width `dim` from `x` into `out` (may alias `x`). */
export function rmsNorm(x: Float32Array, weight: Float32Array, rows: number, dim: number, eps: number, out: Float32Array, xOffset = 0, outOffset = 0): Float32Array {
  for (let r = 0; r < rows; r++) {
    const xo = xOffset + r * dim;
    const oo = outOffset + r * dim;
    let sum = 0;
    for (let c = 0; c < dim; c++) {
      const v = x[xo + c]!;
      sum += v * v;
    }
    const inv = 1 / Math.sqrt(sum / dim + eps);
    for (let c = 0; c < dim; c++) out[oo + c] = weight[c]! * (x[xo + c]! * inv);
  }
  return out;
}
