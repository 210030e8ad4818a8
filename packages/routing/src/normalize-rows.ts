/**
 * Kernel: per-vector normalisation before routing.
 *
 *   l2:        x̂ = x / max(‖x‖₂, ε)                       (LUCID `F.normalize`)
 *   layernorm: x̂ = (x − mean(x)) / sqrt(var(x) + ε)         (GR `layer_norm(·, scaling=False)`)
 *
 * Routing only looks at directions (every normalised vector has the same norm: 1 or √D), so
 * both modes feed the same spherical k-means; they differ in which direction a vector has
 * (layernorm removes the mean component first) and, with shared QK, in the norm of the keys.
 */

/** How queries and keys are normalised before they are compared with the centroids. */
export type RoutingNormalization = 'l2' | 'layernorm';

const L2_EPSILON = 1e-12;
const LAYERNORM_EPSILON = 1e-6;

/**
 * Normalises `count` rows of `dim` floats read from `source` at `sourceOffset` (rows contiguous)
 * into `target` at `targetOffset`. `source` and `target` may be the same array and offset.
 */
export function normalizeRows(
  source: Float32Array,
  sourceOffset: number,
  target: Float32Array,
  targetOffset: number,
  count: number,
  dim: number,
  mode: RoutingNormalization,
): void {
  for (let r = 0; r < count; r++) {
    const s = sourceOffset + r * dim;
    const t = targetOffset + r * dim;
    if (mode === 'l2') {
      let sum = 0;
      for (let c = 0; c < dim; c++) sum += source[s + c]! * source[s + c]!;
      const inv = 1 / Math.max(Math.sqrt(sum), L2_EPSILON);
      for (let c = 0; c < dim; c++) target[t + c] = source[s + c]! * inv;
    } else {
      let mean = 0;
      for (let c = 0; c < dim; c++) mean += source[s + c]!;
      mean /= dim;
      let variance = 0;
      for (let c = 0; c < dim; c++) {
        const x = source[s + c]! - mean;
        variance += x * x;
      }
      const inv = 1 / Math.sqrt(variance / dim + LAYERNORM_EPSILON);
      for (let c = 0; c < dim; c++) target[t + c] = (source[s + c]! - mean) * inv;
    }
  }
}

/** Scales a vector in place to unit L2 norm (zero vectors stay zero). Returns the original norm. */
export function normalizeInPlace(x: Float32Array | Float64Array, offset: number, dim: number): number {
  let sum = 0;
  for (let c = 0; c < dim; c++) sum += x[offset + c]! * x[offset + c]!;
  const norm = Math.sqrt(sum);
  if (norm > L2_EPSILON) {
    const inv = 1 / norm;
    for (let c = 0; c < dim; c++) x[offset + c]! *= inv;
  }
  return norm;
}
