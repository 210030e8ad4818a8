/**
 * WGSL pieces the family's kernels share, each generated at the indentation of the place it is
 * spliced into (`pad`), so a kernel reads as one listing:
 *
 *   Params struct        the uniform block of a `*_PARAMS` list, as `encoder.uniform` lays it out
 *                        (4-byte fields in list order, f32 for the names in `floats`, else u32)
 *   tree reduction       red[0] = max or Σ of red[0 .. NT)       (NT a power of two, `lid` the thread)
 *
 * Every kernel keeps its own scan of candidates (which blocks, which scores), so a change here
 * changes all of them alike.
 */

/** Prefixes every non-empty line of `code` with `pad`. */
function indent(code: string, pad: string): string {
  return code
    .split('\n')
    .map((line) => (line === '' ? line : pad + line))
    .join('\n');
}

/**
 * The `struct Params` of a kernel whose uniform fields are `fields` (four per line); `floats` are
 * the f32 fields, `encoder.uniform`'s default `['scale']` unless given.
 */
export function paramsStructWgsl(fields: readonly string[], floats: readonly string[] = ['scale']): string {
  const lines: string[] = [];
  for (let f = 0; f < fields.length; f += 4) {
    lines.push(`  ${fields.slice(f, f + 4).map((name) => `${name}: ${floats.includes(name) ? 'f32' : 'u32'}`).join(', ')},`);
  }
  return `struct Params {\n${lines.join('\n')}\n}`;
}

/**
 * Tree reduction of the workgroup array `red` (NT entries, one per thread) into `red[0]`, by `max`
 * or a sum; ends on a barrier, so every thread may read `red[0]` after it.
 */
export function workgroupReduceWgsl(red: string, op: 'max' | 'sum', pad: string): string {
  const combine = op === 'max' ? `max(${red}[lid], ${red}[lid + width])` : `${red}[lid] + ${red}[lid + width]`;
  return indent(
    `for (var width = NT / 2u; width > 0u; width = width / 2u) {
  if (lid < width) { ${red}[lid] = ${combine}; }
  workgroupBarrier();
}`,
    pad,
  );
}
