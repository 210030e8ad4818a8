/**
 * WGSL snippets: a workgroup's top-`want` of `count` u32 keys held in workgroup memory (floats
 * mapped by an order-preserving `sortable`), with ties toward the **higher** position like the
 * CPU's `TopKSelector` (core's `selectTopK`, 'higher'):
 *
 *   prefix      the leading bits every key shares (AND and OR of all keys agree there): they are
 *               T's, and the rounds over them are skipped. Floats of one sign and similar magnitude
 *               share their sign and top exponent bits, so the first one or two rounds would put
 *               every key in one bin (2048 atomic adds on one word, serialised)
 *   threshold   T = the want-th largest key, found 4 bits at a time (up to 8 rounds): per round a
 *               16-bin histogram of the next digit of the keys that share T's prefix so far, and
 *               the largest digit whose keys ≥ it (plus those already above the prefix) reach `want`
 *   kept        every key > T, and of the keys = T the last (want − |{key > T}|) by position
 *   emit        in ascending position: each thread owns a contiguous run of positions; one scan of
 *               the runs' (greater, equal) counts, packed in one u32, gives each run its rank
 *               offset (greater keys before it, plus the kept equal keys before it: the equal keys
 *               kept are the last ones), so every thread writes its kept positions at its own offset
 *
 * 3 barriers per round and 2·⌈log2 NT⌉ + 3 for the emit, instead of one barrier-synchronised
 * arg-max per pick or a 32-round bit-by-bit search. The including kernel declares `NT`, the
 * workgroup variables {@link RADIX_TOP_K_WORKGROUP} and `runs: array<u32, NT>`, and the local
 * `lid`; `count` and `want` (≤ count, both < 2¹⁶) must be workgroup-uniform.
 */

/**
 * WGSL: the order-preserving map of a float32 onto u32 (larger float, larger key) the snippet's
 * keys are made with (the indexer's scores, NSA's decode-step block importance, MoBA's decode-step
 * gates). −0 maps as +0, so the two tie as they do in a float comparison (the CPU's).
 */
export const SORTABLE_WGSL = /* wgsl */ `/** Order-preserving map of a float32 onto u32 (larger float, larger key; −0 as +0). */
fn sortable(x: f32) -> u32 {
  let bits = select(bitcast<u32>(x), 0u, x == 0.0);
  return select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
}`;

/** Workgroup variables the snippet uses (the histogram, the prefix's AND / OR, the prefix length). */
export const RADIX_TOP_K_WORKGROUP = /* wgsl */ `var<workgroup> hist: array<atomic<u32>, 18>;
var<workgroup> radixCommon: u32;`;

/** Bytes of {@link RADIX_TOP_K_WORKGROUP}. */
export const RADIX_TOP_K_WORKGROUP_BYTES = 4 * 19;

/**
 * The snippet for the keys `keys` (a workgroup u32 array); `emit(position, rank)` is WGSL that
 * stores kept position `position` as the `rank`-th (ascending) output. `name` prefixes the locals
 * so the snippet can appear twice in one kernel. Declares `${name}Kept` (the number kept, = want).
 */
export function radixTopKWgsl(name: string, keys: string, count: string, want: string, emit: (position: string, rank: string) => string): string {
  const v = (s: string) => `${name}${s}`;
  return /* wgsl */ `
  if (lid == 0u) { atomicStore(&hist[16], 0xffffffffu); atomicStore(&hist[17], 0u); }
  workgroupBarrier();
  {
    var andKeys = 0xffffffffu;
    var orKeys = 0u;
    for (var u = lid; u < ${count}; u += NT) { andKeys &= ${keys}[u]; orKeys |= ${keys}[u]; }
    atomicAnd(&hist[16], andKeys);
    atomicOr(&hist[17], orKeys);
  }
  workgroupBarrier();
  if (lid == 0u) { radixCommon = countLeadingZeros(atomicLoad(&hist[16]) ^ atomicLoad(&hist[17])); }
  // Whole digits of the shared prefix (8 when every key is equal): T starts with them.
  let ${v('First')} = workgroupUniformLoad(&radixCommon) / 4u;
  var ${v('Threshold')} = 0u;
  if (${v('First')} == 8u) { ${v('Threshold')} = atomicLoad(&hist[16]); } else if (${v('First')} > 0u) { ${v('Threshold')} = atomicLoad(&hist[16]) & (0xffffffffu << (32u - 4u * ${v('First')})); }
  var ${v('Above')} = 0u;
  for (var round = ${v('First')}; round < 8u; round++) {
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
  var ${v('Greater')} = 0u;
  var ${v('Equal')} = 0u;
  for (var u = ${v('U0')}; u < ${v('U1')}; u++) {
    let key = ${keys}[u];
    if (key == ${v('Threshold')}) { ${v('Equal')}++; } else if (key > ${v('Threshold')}) { ${v('Greater')}++; }
  }
  // Inclusive scan of the runs' packed (greater, equal << 16) counts (Hillis–Steele).
  let ${v('Packed')} = ${v('Greater')} | (${v('Equal')} << 16u);
  var ${v('Scan')} = ${v('Packed')};
  runs[lid] = ${v('Scan')};
  workgroupBarrier();
  for (var offset = 1u; offset < NT; offset <<= 1u) {
    var add = 0u;
    if (lid >= offset) { add = runs[lid - offset]; }
    workgroupBarrier();
    ${v('Scan')} += add;
    runs[lid] = ${v('Scan')};
    workgroupBarrier();
  }
  let ${v('Before')} = ${v('Scan')} - ${v('Packed')};
  let ${v('EqualTotal')} = runs[NT - 1u] >> 16u;
  let ${v('EqualBefore')} = ${v('Before')} >> 16u;
  // Equal keys after this run; an equal key is kept iff fewer than Ties equal keys follow it.
  let ${v('EqualAfter')} = ${v('EqualTotal')} - ${v('EqualBefore')} - ${v('Equal')};
  let ${v('FromHere')} = ${v('EqualTotal')} - ${v('EqualBefore')};
  var ${v('Rank')} = (${v('Before')} & 0xffffu) + select(0u, ${v('Ties')} - ${v('FromHere')}, ${v('Ties')} > ${v('FromHere')});
  var ${v('Seen')} = 0u;
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
