/**
 * WGSL pieces the family's kernels share, each generated at the indentation of the place it is
 * spliced into (`pad`), so a kernel reads as one listing:
 *
 *   Params struct        the uniform block of a `*_PARAMS` list, as `encoder.uniform` lays it out
 *                        (4-byte fields in list order, f32 for the names in `floats`, else u32)
 *   tree reduction       red[0] = max or Σ of red[0 .. NT)       (NT a power of two, `lid` the thread)
 *   arg-max pick         (key, index) of the workgroup with the largest key, ties toward the lower
 *                        index: one pass of backend-gpu's `blockTopKWgsl` top-k, the CPU
 *                        `topKIndices` order
 *   picks sort           insertion sort of `picks[0 .. P.topK)` ascending (one thread)
 *   every-block row      the CSR row 0 .. last of a query with no more candidates than picks
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

/**
 * One top-k pass's workgroup step, inside `for (var p = 0u; p < P.topK; p++)` after each thread
 * scanned its candidates into `key` / `index`: reduces them through the workgroup arrays `keys` /
 * `indexes` to the largest key (ties toward the lower index), leaves it in the `prevKey` /
 * `prevIndex` variables (the next pass scans only candidates after it in that order) and records
 * `picks[p]`.
 */
export function argMaxPickWgsl(keys: string, indexes: string, pad: string): string {
  return indent(
    `workgroupBarrier();
${keys}[lid] = key;
${indexes}[lid] = index;
workgroupBarrier();
for (var width = NT / 2u; width > 0u; width = width / 2u) {
  if (lid < width) {
    let ok = ${keys}[lid + width];
    let oi = ${indexes}[lid + width];
    if (ok > ${keys}[lid] || (ok == ${keys}[lid] && oi < ${indexes}[lid])) {
      ${keys}[lid] = ok;
      ${indexes}[lid] = oi;
    }
  }
  workgroupBarrier();
}
prevKey = ${keys}[0];
prevIndex = ${indexes}[0];
if (lid == 0u) { picks[p] = prevIndex; }`,
    pad,
  );
}

/** Sorts the `P.topK` picks ascending (insertion sort; run by one thread). */
export function sortPicksWgsl(pad: string): string {
  return indent(
    `for (var a = 1u; a < P.topK; a++) {
  let x = picks[a];
  var b = a;
  while (b > 0u && picks[b - 1u] > x) { picks[b] = picks[b - 1u]; b--; }
  picks[b] = x;
}`,
    pad,
  );
}

/**
 * Writes the CSR row `row` as every block `0 ..= last` from `start` (a query with no more
 * candidates than picks keeps all of them, unranked) and returns from the kernel.
 */
export function everyBlockRowWgsl(last: string, pad: string): string {
  return indent(
    `for (var j = lid; j <= ${last}; j += NT) { indices[start + j] = j; }
if (lid == 0u) {
  bounds[2u * row] = start;
  bounds[2u * row + 1u] = start + ${last} + 1u;
}
return;`,
    pad,
  );
}
