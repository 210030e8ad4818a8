/**
 * WGSL snippets: a workgroup's top-`want` of `count` u32 keys held in workgroup memory (floats
 * mapped by an order-preserving `sortable`), with ties toward the **higher** position like the
 * CPU's `TopKSelector` (core's `selectTopK`, 'higher'):
 *
 *   threshold   T = the want-th largest key, found 4 bits at a time (8 rounds): per round a 16-bin
 *               histogram of the next digit of the keys that share T's prefix so far, and the
 *               largest digit whose keys ≥ it (plus those already above the prefix) reach `want`
 *   kept        every key > T, and of the keys = T the last (want − |{key > T}|) by position
 *   emit        in ascending position: each thread owns a contiguous run of positions; the runs'
 *               equal-key and kept counts are summed through workgroup memory, so every thread
 *               writes its kept positions at its own offset (no single-thread pass over `count`)
 *
 * 3 barriers per round (24 in all) and 4 for the emit, instead of one barrier-synchronised
 * arg-max per pick or a 32-round bit-by-bit search. The including kernel declares `NT`,
 * `hist: array<atomic<u32>, 16>` and `runs: array<u32, NT>` in workgroup memory and the local
 * `lid`; `count` and `want` (≤ count) must be workgroup-uniform.
 */

/**
 * The snippet for the keys `keys` (a workgroup u32 array); `emit(position, rank)` is WGSL that
 * stores kept position `position` as the `rank`-th (ascending) output. `name` prefixes the locals
 * so the snippet can appear twice in one kernel. Declares `${name}Kept` (the number kept, = want).
 */
export function radixTopKWgsl(name: string, keys: string, count: string, want: string, emit: (position: string, rank: string) => string): string {
  const v = (s: string) => `${name}${s}`;
  return /* wgsl */ `
  var ${v('Threshold')} = 0u;
  var ${v('Above')} = 0u;
  for (var round = 0u; round < 8u; round++) {
    let shift = 28u - 4u * round;
    if (lid < 16u) { atomicStore(&hist[lid], 0u); }
    workgroupBarrier();
    let mask = select(0xffffffffu << (shift + 4u), 0u, round == 0u);
    for (var u = lid; u < ${count}; u += NT) {
      let key = ${keys}[u];
      if ((key & mask) == (${v('Threshold')} & mask)) { atomicAdd(&hist[(key >> shift) & 15u], 1u); }
    }
    workgroupBarrier();
    var reached = ${v('Above')};
    var digit = 0u;
    var found = false;
    for (var x = 0u; x < 16u; x++) {
      let h = atomicLoad(&hist[15u - x]);
      if (!found) {
        if (reached + h >= ${want}) { digit = 15u - x; found = true; } else { reached += h; }
      }
    }
    ${v('Threshold')} = ${v('Threshold')} | (digit << shift);
    ${v('Above')} = reached;
    workgroupBarrier();
  }
  let ${v('Ties')} = ${want} - ${v('Above')};
  let ${v('Per')} = (${count} + NT - 1u) / NT;
  let ${v('U0')} = min(lid * ${v('Per')}, ${count});
  let ${v('U1')} = min(${v('U0')} + ${v('Per')}, ${count});
  var ${v('Equal')} = 0u;
  for (var u = ${v('U0')}; u < ${v('U1')}; u++) { if (${keys}[u] == ${v('Threshold')}) { ${v('Equal')}++; } }
  runs[lid] = ${v('Equal')};
  workgroupBarrier();
  // An equal key is kept iff fewer than Ties equal keys follow it.
  var ${v('EqualAfter')} = 0u;
  for (var l = lid + 1u; l < NT; l++) { ${v('EqualAfter')} += runs[l]; }
  var ${v('Keep')} = 0u;
  var ${v('Seen')} = 0u;
  for (var u = ${v('U0')}; u < ${v('U1')}; u++) {
    let key = ${keys}[u];
    if (key == ${v('Threshold')}) {
      ${v('Seen')}++;
      if (${v('EqualAfter')} + ${v('Equal')} - ${v('Seen')} < ${v('Ties')}) { ${v('Keep')}++; }
    } else if (key > ${v('Threshold')}) {
      ${v('Keep')}++;
    }
  }
  workgroupBarrier();
  runs[lid] = ${v('Keep')};
  workgroupBarrier();
  var ${v('Rank')} = 0u;
  for (var l = 0u; l < lid; l++) { ${v('Rank')} += runs[l]; }
  ${v('Seen')} = 0u;
  for (var u = ${v('U0')}; u < ${v('U1')}; u++) {
    let key = ${keys}[u];
    var kept = key > ${v('Threshold')};
    if (key == ${v('Threshold')}) {
      ${v('Seen')}++;
      kept = ${v('EqualAfter')} + ${v('Equal')} - ${v('Seen')} < ${v('Ties')};
    }
    if (kept) {
      ${emit('u', v('Rank'))}
      ${v('Rank')}++;
    }
  }
  let ${v('Kept')} = ${want};
  workgroupBarrier();
`;
}
