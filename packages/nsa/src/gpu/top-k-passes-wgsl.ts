/**
 * WGSL snippet: a workgroup's top-n over `count` candidate keys held in workgroup memory, ordered
 * exactly like the CPU's `TopKSelector` (core's `selectTopK` with ties toward the **higher** index):
 *
 *   order   (key descending, index descending)
 *   pass p  pick_p = the first candidate in that order that comes after pick_{p−1}
 *
 * Each pass is a workgroup arg-max over the candidates after the previous pick, so no "taken"
 * marks are needed and the picks are a pure function of the keys: the same set the CPU selects
 * whenever the keys are the same. Forced candidates carry `BIG` (the CPU's +∞). The picks land in
 * `picks[0..n)` (unsorted; {@link sortPicksWgsl} sorts them ascending).
 *
 * The including kernel declares `NT`, `cand: array<f32, …>`, `bestKey: array<f32, NT>`,
 * `bestIndex: array<u32, NT>`, `picks: array<u32, …>` and the locals `lid`, `n`, `count`; `n` and
 * `count` must be workgroup-uniform (the passes contain barriers).
 */
export const TOP_K_PASSES_WGSL = /* wgsl */ `
  var prevKey = 3.4e38;
  var prevIndex = 0xffffffffu;
  for (var p = 0u; p < n; p++) {
    var key = -3.4e38;
    var index = 0u;
    for (var j = lid; j < count; j += NT) {
      let kj = cand[j];
      let after = kj < prevKey || (kj == prevKey && j < prevIndex);
      if (after && kj >= key) { key = kj; index = j; }
    }
    bestKey[lid] = key;
    bestIndex[lid] = index;
    workgroupBarrier();
    for (var width = NT / 2u; width > 0u; width = width / 2u) {
      if (lid < width) {
        let ok = bestKey[lid + width];
        let oi = bestIndex[lid + width];
        if (ok > bestKey[lid] || (ok == bestKey[lid] && oi > bestIndex[lid])) {
          bestKey[lid] = ok;
          bestIndex[lid] = oi;
        }
      }
      workgroupBarrier();
    }
    prevKey = bestKey[0];
    prevIndex = bestIndex[0];
    if (lid == 0u) { picks[p] = prevIndex; }
    workgroupBarrier();
  }
`;

/** WGSL snippet (run by one thread): insertion-sorts `picks[0..n)` ascending. */
export const SORT_PICKS_WGSL = /* wgsl */ `
    for (var a = 1u; a < n; a++) {
      let x = picks[a];
      var b = a;
      while (b > 0u && picks[b - 1u] > x) { picks[b] = picks[b - 1u]; b--; }
      picks[b] = x;
    }
`;
