/**
 * WGSL pieces several routing kernels share, emitted as text so the kernels stay one string each.
 */

/**
 * Inclusive Hillis–Steele scan of the workgroup array `partial` (`NT` u32 entries, one per
 * thread `lid`); every thread of the workgroup must reach it (barriers inside).
 */
export function inclusiveScanU32(indent: string): string {
  return [
    'for (var offset = 1u; offset < NT; offset = offset * 2u) {',
    '  var add = 0u;',
    '  if (lid >= offset) { add = partial[lid - offset]; }',
    '  workgroupBarrier();',
    '  partial[lid] += add;',
    '  workgroupBarrier();',
    '}',
  ]
    .map((line) => indent + line)
    .join('\n');
}

/**
 * Inside a loop over candidates `k` with value `s`: keeps the `R` largest in the descending
 * register lists `bestValue` / `best` (`filled` counts them), ties to the earlier candidate.
 */
export function insertTopR(indent: string): string {
  return [
    'if (filled == R && !(s > bestValue[R - 1u])) { continue; }',
    'var at = min(filled, R - 1u);',
    'if (filled < R) { filled++; }',
    'while (at > 0u && s > bestValue[at - 1u]) {',
    '  bestValue[at] = bestValue[at - 1u];',
    '  best[at] = best[at - 1u];',
    '  at--;',
    '}',
    'bestValue[at] = s;',
    'best[at] = k;',
  ]
    .map((line) => indent + line)
    .join('\n');
}

/** Order-preserving map of a float to u32 (larger float, larger key; −0 below +0), as the balanced top-w ranks similarities. */
export const orderKeyWgsl = /* wgsl */ `
fn orderKey(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b ^ 0x80000000u, ~b, (b >> 31u) == 1u);
}`;
