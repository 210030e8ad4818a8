/**
 * WGSL snippet shared by the selection kernels that write one CSR row of picked blocks at a fixed
 * stride (backend-gpu's block top-k, MoBA's routing): sorts the `count` picks of a private or
 * workgroup array ascending (insertion sort: a row holds a handful of picks) and writes them as
 * row `row` of `indices` / `bounds` (start, end) at `P.stride` entries per row. Expects the
 * kernel's `P.stride` and `bounds` / `indices` bindings.
 */
export function csrRowWgsl(o: { readonly picks: string; readonly count: string; readonly row: string; readonly indent: string }): string {
  const { picks, count, row, indent } = o;
  return [
    `for (var a = 1u; a < ${count}; a++) {`,
    `  let x = ${picks}[a];`,
    `  var b = a;`,
    `  while (b > 0u && ${picks}[b - 1u] > x) { ${picks}[b] = ${picks}[b - 1u]; b--; }`,
    `  ${picks}[b] = x;`,
    `}`,
    `let start = (${row}) * P.stride;`,
    `for (var a = 0u; a < ${count}; a++) { indices[start + a] = ${picks}[a]; }`,
    `bounds[2u * (${row})] = start;`,
    `bounds[2u * (${row}) + 1u] = start + ${count};`,
  ]
    .map((line) => indent + line)
    .join('\n');
}
