/**
 * Kernel: one float32 dot product with four accumulators, `Σ_c a[ao + c] · b[bo + c]`.
 * Every scorer of this package (NSA compression scores, MoBA gates, the indexer) calls this one
 * function for both prefill and decode, so their scores, and hence their selections, are
 * bit-identical.
 */
export function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const d4 = dim - (dim % 4);
  let c = 0;
  for (; c < d4; c += 4) {
    s0 += a[ao + c]! * b[bo + c]!;
    s1 += a[ao + c + 1]! * b[bo + c + 1]!;
    s2 += a[ao + c + 2]! * b[bo + c + 2]!;
    s3 += a[ao + c + 3]! * b[bo + c + 3]!;
  }
  for (; c < dim; c++) s0 += a[ao + c]! * b[bo + c]!;
  return s0 + s1 + s2 + s3;
}
