/**
 * WebAssembly SIMD (f32x4) kernels of @sparse-attn/core, written in AssemblyScript.
 * `node scripts/build-wasm.mjs` compiles this file and embeds the bytes in
 * `src/kernels/simd-kernels.generated.ts`; a test checks that the embedded bytes were built
 * from this exact source (sha-256).
 *
 * Every pointer is a byte offset into the module's own memory, laid out by the JS side
 * (`src/kernels/simd-runtime.ts`). Scores arrive pre-multiplied by `scale · log2(e)` (the JS
 * side scales q while copying it in), so every exponential here is a base-2 exponential:
 *
 *   flash attention (flashRows), per key tile T and query row i:
 *     s_ij = q_i·k_j (log2 domain),  m_i' = max(m_i, max_j s_ij),  α = 2^{m_i − m_i'}
 *     p_ij = 2^{s_ij − m_i'},  l_i' = α·l_i + Σ_j p_ij,  o_i' = α·o_i + Σ_j p_ij v_j
 *   (the caller divides o by l at the end and takes lse = ln2·m + ln l)
 *
 *   one query over key ranges (attendRows): the same sums, exact two-pass softmax
 *   GEMM (gemmPacked): C[m×n] += A[m×k]·B[k×n] with B packed in 8-column panels
 */

// 2^f for f ∈ [−½, ½]: degree-5 polynomial fitted to the relative error on Chebyshev nodes
// (max relative error 7.7e-8 in exact arithmetic, 2.3e-7 evaluated in float32).
const C0: f32 = 1.0000000710651837;
const C1: f32 = 0.6931469490691713;
const C2: f32 = 0.24022121576138886;
const C3: f32 = 0.05550742675436597;
const C4: f32 = 0.009675469400241447;
const C5: f32 = 0.0013266979930150536;

/** Keys per flash tile: a transposed K tile is stored as `dim` rows of `TILE_KEYS` floats. */
const TILE_KEYS: i32 = 64;

/**
 * 2^x lane-wise for x ≤ 0 (every caller passes a score minus a running maximum);
 * x ≤ −127 (and −∞) gives exactly 0.
 */
// @ts-ignore: decorator
@inline function exp2v(x: v128): v128 {
  x = f32x4.max(x, f32x4.splat(-127.0));
  // n = round-half-even(x) by the 1.5·2^23 trick (ulp 1 there, exactly what f32x4.nearest
  // gives for |x| < 2^22); the low bits of t then hold n, so 2^n needs no float-to-int
  // conversion (i32x4.trunc_sat_f32x4_s lowers to a long saturating sequence on x64).
  const t = f32x4.add(x, f32x4.splat(12582912.0));
  const n = f32x4.sub(t, f32x4.splat(12582912.0));
  const f = f32x4.sub(x, n);
  let p = f32x4.splat(C5);
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(C4));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(C3));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(C2));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(C1));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(C0));
  // bits(t) = bits(1.5·2^23) + n, and bits(1.5·2^23) << 23 wraps to 0, so this is (n + 127) << 23.
  const e = i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23);
  return f32x4.mul(p, e);
}

// @ts-ignore: decorator
@inline function exp2s(x: f32): f32 {
  return f32x4.extract_lane(exp2v(f32x4.splat(x)), 0);
}

// @ts-ignore: decorator
@inline function hsum(x: v128): f32 {
  const y = f32x4.add(x, v128.shuffle<f32>(x, x, 2, 3, 0, 1));
  return f32x4.extract_lane(y, 0) + f32x4.extract_lane(y, 1);
}

// @ts-ignore: decorator
@inline function hmax(x: v128): f32 {
  const y = f32x4.max(x, v128.shuffle<f32>(x, x, 2, 3, 0, 1));
  return max(f32x4.extract_lane(y, 0), f32x4.extract_lane(y, 1));
}

/**
 * S[r][j] = Σ_d Q[r][d]·Kt[d][j] for r < rows (a multiple of 4) and j < cols (a multiple of 8):
 * a 4×8 register block, one broadcast q element times two key vectors per step.
 */
// @ts-ignore: decorator
@inline function qkTile(q: usize, dim: i32, kt: usize, s: usize, rows: i32, cols: i32): void {
  const qRow = <usize>dim << 2;
  const ktRow = <usize>TILE_KEYS << 2;
  for (let r = 0; r < rows; r += 4) {
    const q0 = q + <usize>r * qRow;
    const q1 = q0 + qRow;
    const q2 = q1 + qRow;
    const q3 = q2 + qRow;
    const s0 = s + <usize>r * ktRow;
    for (let j = 0; j < cols; j += 8) {
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0);
      let a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0);
      let a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      let kp = kt + (<usize>j << 2);
      for (let d = 0; d < dim; d++) {
        const k0 = v128.load(kp);
        const k1 = v128.load(kp, 16);
        const off = <usize>d << 2;
        const x0 = v128.load32_splat(q0 + off);
        a00 = f32x4.add(a00, f32x4.mul(x0, k0));
        a01 = f32x4.add(a01, f32x4.mul(x0, k1));
        const x1 = v128.load32_splat(q1 + off);
        a10 = f32x4.add(a10, f32x4.mul(x1, k0));
        a11 = f32x4.add(a11, f32x4.mul(x1, k1));
        const x2 = v128.load32_splat(q2 + off);
        a20 = f32x4.add(a20, f32x4.mul(x2, k0));
        a21 = f32x4.add(a21, f32x4.mul(x2, k1));
        const x3 = v128.load32_splat(q3 + off);
        a30 = f32x4.add(a30, f32x4.mul(x3, k0));
        a31 = f32x4.add(a31, f32x4.mul(x3, k1));
        kp += ktRow;
      }
      const sp = s0 + (<usize>j << 2);
      v128.store(sp, a00);
      v128.store(sp, a01, 16);
      v128.store(sp + ktRow, a10);
      v128.store(sp + ktRow, a11, 16);
      v128.store(sp + 2 * ktRow, a20);
      v128.store(sp + 2 * ktRow, a21, 16);
      v128.store(sp + 3 * ktRow, a30);
      v128.store(sp + 3 * ktRow, a31, 16);
    }
  }
}

/**
 * Online-softmax update of one row of a tile whose first `c` scores are visible: turns the
 * row's scores into probabilities in place (0 past `c`, up to `cols`), updates its running max
 * m and sum l, and rescales its accumulator o (`dvp` floats) by α.
 */
// @ts-ignore: decorator
@inline function softmaxRow(sp: usize, c: i32, cols: i32, mp: usize, lp: usize, op: usize, dvp: i32): void {
  if (c <= 0) {
    for (let j = 0; j < cols; j += 4) v128.store(sp + (<usize>j << 2), f32x4.splat(0));
    return;
  }
  const lanes = i32x4(0, 1, 2, 3);
  // Four independent max chains (the maximum is the same in any order), so a row's maximum is
  // ready sooner and its exponentials can start: softmax time per 64×64 tile 8.0 → 6.2 µs.
  let mx = f32x4.splat(-Infinity);
  let mx1 = mx, mx2 = mx, mx3 = mx;
  let j = 0;
  for (; j + 16 <= c; j += 16) {
    const at = sp + (<usize>j << 2);
    mx = f32x4.max(mx, v128.load(at));
    mx1 = f32x4.max(mx1, v128.load(at, 16));
    mx2 = f32x4.max(mx2, v128.load(at, 32));
    mx3 = f32x4.max(mx3, v128.load(at, 48));
  }
  for (; j + 4 <= c; j += 4) mx = f32x4.max(mx, v128.load(sp + (<usize>j << 2)));
  let rowMax = hmax(f32x4.max(f32x4.max(mx, mx1), f32x4.max(mx2, mx3)));
  for (; j < c; j++) rowMax = max(rowMax, load<f32>(sp + (<usize>j << 2)));
  const mOld = load<f32>(mp);
  const mNew = max(mOld, rowMax);
  const alpha = exp2s(mOld - mNew);
  const mv = f32x4.splat(mNew);
  const cv = i32x4.splat(c);
  let sum = f32x4.splat(0);
  const full = c & ~3;
  for (j = 0; j < full; j += 4) {
    const at = sp + (<usize>j << 2);
    const p = exp2v(f32x4.sub(v128.load(at), mv));
    v128.store(at, p);
    sum = f32x4.add(sum, p);
  }
  // The partly visible vector keeps only lanes < c; vectors past it become zeros.
  for (; j < cols; j += 4) {
    const at = sp + (<usize>j << 2);
    const keep = i32x4.lt_s(i32x4.add(i32x4.splat(j), lanes), cv);
    const p = v128.and(exp2v(f32x4.sub(v128.load(at), mv)), keep);
    v128.store(at, p);
    sum = f32x4.add(sum, p);
  }
  store<f32>(mp, mNew);
  store<f32>(lp, load<f32>(lp) * alpha + hsum(sum));
  if (alpha != 1.0) {
    const av = f32x4.splat(alpha);
    for (let d = 0; d < dvp; d += 4) {
      const at = op + (<usize>d << 2);
      v128.store(at, f32x4.mul(v128.load(at), av));
    }
  }
}

/**
 * Online-softmax update of one tile of contiguous keys: row r sees the first
 * `min(valid, diag + r + 1)` scores (see {@link softmaxRow}).
 */
// @ts-ignore: decorator
@inline function softmaxTile(s: usize, rows: i32, valid: i32, cols: i32, diag: i32, m: usize, l: usize, o: usize, dvp: i32): void {
  const sRow = <usize>TILE_KEYS << 2;
  for (let r = 0; r < rows; r++) {
    softmaxRow(s + <usize>r * sRow, min(valid, diag + r + 1), cols, m + (<usize>r << 2), l + (<usize>r << 2), o + <usize>r * (<usize>dvp << 2), dvp);
  }
}

/** O[r][c] += Σ_{j<keys} P[r][j]·V[j][c] for r < rows (a multiple of 4), c < dvp (a multiple of 4). */
// @ts-ignore: decorator
@inline function pvTile(p: usize, v: usize, o: usize, rows: i32, keys: i32, dvp: i32): void {
  const pRow = <usize>TILE_KEYS << 2;
  const vRow = <usize>dvp << 2;
  for (let r = 0; r < rows; r += 4) {
    const p0 = p + <usize>r * pRow;
    const p1 = p0 + pRow;
    const p2 = p1 + pRow;
    const p3 = p2 + pRow;
    const o0 = o + <usize>r * vRow;
    const o1 = o0 + vRow;
    const o2 = o1 + vRow;
    const o3 = o2 + vRow;
    let c = 0;
    for (; c + 8 <= dvp; c += 8) {
      const co = <usize>c << 2;
      let a00 = v128.load(o0 + co), a01 = v128.load(o0 + co, 16);
      let a10 = v128.load(o1 + co), a11 = v128.load(o1 + co, 16);
      let a20 = v128.load(o2 + co), a21 = v128.load(o2 + co, 16);
      let a30 = v128.load(o3 + co), a31 = v128.load(o3 + co, 16);
      let vp = v + co;
      for (let j = 0; j < keys; j++) {
        const v0 = v128.load(vp);
        const v1 = v128.load(vp, 16);
        const off = <usize>j << 2;
        const x0 = v128.load32_splat(p0 + off);
        a00 = f32x4.add(a00, f32x4.mul(x0, v0));
        a01 = f32x4.add(a01, f32x4.mul(x0, v1));
        const x1 = v128.load32_splat(p1 + off);
        a10 = f32x4.add(a10, f32x4.mul(x1, v0));
        a11 = f32x4.add(a11, f32x4.mul(x1, v1));
        const x2 = v128.load32_splat(p2 + off);
        a20 = f32x4.add(a20, f32x4.mul(x2, v0));
        a21 = f32x4.add(a21, f32x4.mul(x2, v1));
        const x3 = v128.load32_splat(p3 + off);
        a30 = f32x4.add(a30, f32x4.mul(x3, v0));
        a31 = f32x4.add(a31, f32x4.mul(x3, v1));
        vp += vRow;
      }
      v128.store(o0 + co, a00);
      v128.store(o0 + co, a01, 16);
      v128.store(o1 + co, a10);
      v128.store(o1 + co, a11, 16);
      v128.store(o2 + co, a20);
      v128.store(o2 + co, a21, 16);
      v128.store(o3 + co, a30);
      v128.store(o3 + co, a31, 16);
    }
    if (c < dvp) {
      const co = <usize>c << 2;
      let a0 = v128.load(o0 + co);
      let a1 = v128.load(o1 + co);
      let a2 = v128.load(o2 + co);
      let a3 = v128.load(o3 + co);
      let vp = v + co;
      for (let j = 0; j < keys; j++) {
        const v0 = v128.load(vp);
        const off = <usize>j << 2;
        a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(p0 + off), v0));
        a1 = f32x4.add(a1, f32x4.mul(v128.load32_splat(p1 + off), v0));
        a2 = f32x4.add(a2, f32x4.mul(v128.load32_splat(p2 + off), v0));
        a3 = f32x4.add(a3, f32x4.mul(v128.load32_splat(p3 + off), v0));
        vp += vRow;
      }
      v128.store(o0 + co, a0);
      v128.store(o1 + co, a1);
      v128.store(o2 + co, a2);
      v128.store(o3 + co, a3);
    }
  }
}

/**
 * Flash attention of `groups` stacked query blocks (the query heads of one GQA group, each
 * `rows` rows, a multiple of 4, `dim` floats per row) against one KV head, tile by tile.
 *
 * - `kt`: the head's keys transposed in tiles of `TILE_KEYS` keys, `dim × TILE_KEYS` floats each,
 *   zero past `keyCount`.
 * - `v`: the head's values, `dvp` floats per row (zero-padded), at least a whole number of tiles.
 * - `o` (`groups·rows × dvp`), `m`, `l` (`groups·rows`): running accumulators, max and sum.
 * - `s`: `rows × TILE_KEYS` scratch.
 * - Causal: row r sits at key position `firstPos + r`; tiles past `lastPos` are skipped.
 */
export function flashRows(
  q: usize, groups: i32, rows: i32, dim: i32,
  kt: usize, keyCount: i32, v: usize, dvp: i32,
  s: usize, o: usize, m: usize, l: usize,
  firstPos: i32, lastPos: i32, causal: i32,
): void {
  const lastKey = causal ? min(keyCount - 1, lastPos) : keyCount - 1;
  const tiles = lastKey / TILE_KEYS + 1;
  const tileBytes = <usize>(dim * TILE_KEYS) << 2;
  const qBlock = <usize>(rows * dim) << 2;
  const oBlock = <usize>(rows * dvp) << 2;
  const rowBytes = <usize>rows << 2;
  for (let t = 0; t < tiles; t++) {
    const k0 = t * TILE_KEYS;
    const valid = min(TILE_KEYS, keyCount - k0);
    const cols = (valid + 7) & ~7;
    const diag = causal ? firstPos - k0 : TILE_KEYS;
    const ktp = kt + <usize>t * tileBytes;
    const vp = v + (<usize>(k0 * dvp) << 2);
    for (let g = 0; g < groups; g++) {
      const og = o + <usize>g * oBlock;
      qkTile(q + <usize>g * qBlock, dim, ktp, s, rows, cols);
      softmaxTile(s, rows, valid, cols, diag, m + <usize>g * rowBytes, l + <usize>g * rowBytes, og, dvp);
      pvTile(s, vp, og, rows, valid, dvp);
    }
  }
}

/**
 * Writes keys `[0, keyCount)` of one head (row-major at `src`, `dim` floats per key) into tiles
 * of `TILE_KEYS` keys stored `dim × TILE_KEYS` at `dst` (the layout {@link flashRows} reads).
 * Slots past `keyCount` in the last tile are left as they are (the caller zeroes them).
 */
export function transposeTiles(src: usize, dst: usize, keyCount: i32, dim: i32): void {
  const tileRow = <usize>TILE_KEYS << 2;
  const keyRow = <usize>dim << 2;
  for (let first = 0; first < keyCount; first += TILE_KEYS) {
    const count = min(TILE_KEYS, keyCount - first);
    const tile = dst + ((<usize>(first * dim)) << 2);
    const from = src + <usize>first * keyRow;
    for (let c = 0; c < dim; c++) {
      const to = tile + <usize>c * tileRow;
      let at = from + (<usize>c << 2);
      for (let j = 0; j < count; j++) {
        store<f32>(to + (<usize>j << 2), load<f32>(at));
        at += keyRow;
      }
    }
  }
}

/**
 * Runs the query blocks of a flash job until none is left, so several threads can share one
 * job over a shared memory: each call claims blocks with an atomic counter, most expensive
 * (latest, under causal masking) first. `s` is this thread's `blockRows × TILE_KEYS` scratch.
 * The job is 16 i32 slots at `job`: 0 next-block counter, 1 q, 2 o, 3 m, 4 l, 5 blocks,
 * 6 groups, 7 dim, 8 kt, 9 keyCount, 10 v, 11 dvp, 12 position of query 0, 13 queries,
 * 14 causal, 15 rows per block, then the f64 query scale at byte 64. Block b holds `groups`
 * stacked row sets of `min(blockRows, queries − b·blockRows)` rows (rounded up to 4) starting
 * at row `b · blockRows · groups` of q, o, m and l.
 *
 * The thread that claims a block also does its set-up and finish, so no serial pass over q or o
 * remains for the caller: it scales the block's raw q rows by the query scale (in f64, rounded
 * once to f32, exactly as the JS copy did), sets o = 0, m = −∞, l = 0, runs the tiles, then
 * divides each row of o by its l (o · (1 / l) in f64, rounded once). m and l stay for the
 * caller's log-sum-exp.
 */
export function flashBlocks(job: usize, s: usize): void {
  const q = <usize>load<i32>(job, 4);
  const o = <usize>load<i32>(job, 8);
  const m = <usize>load<i32>(job, 12);
  const l = <usize>load<i32>(job, 16);
  const blocks = load<i32>(job, 20);
  const groups = load<i32>(job, 24);
  const dim = load<i32>(job, 28);
  const kt = <usize>load<i32>(job, 32);
  const keyCount = load<i32>(job, 36);
  const v = <usize>load<i32>(job, 40);
  const dvp = load<i32>(job, 44);
  const firstPos = load<i32>(job, 48);
  const queries = load<i32>(job, 52);
  const causal = load<i32>(job, 56);
  const blockRows = load<i32>(job, 60);
  const scale = load<f64>(job, 64);
  for (;;) {
    const taken = atomic.add<i32>(job, 1);
    if (taken >= blocks) return;
    const b = blocks - 1 - taken;
    const valid = min(blockRows, queries - b * blockRows);
    const rows = (valid + 3) & ~3;
    const rowBase = <usize>(b * blockRows * groups);
    const pos = firstPos + b * blockRows;
    const blockQ = q + ((rowBase * <usize>dim) << 2);
    const blockO = o + ((rowBase * <usize>dvp) << 2);
    const blockM = m + (rowBase << 2);
    const blockL = l + (rowBase << 2);
    const blockRowCount = <usize>(groups * rows);
    const qEnd = blockQ + ((blockRowCount * <usize>dim) << 2);
    for (let at = blockQ; at < qEnd; at += 4) store<f32>(at, <f32>(<f64>load<f32>(at) * scale));
    memory.fill(blockO, 0, (blockRowCount * <usize>dvp) << 2);
    for (let r: usize = 0; r < blockRowCount; r++) {
      store<f32>(blockM + (r << 2), -Infinity);
      store<f32>(blockL + (r << 2), 0);
    }
    flashRows(blockQ, groups, rows, dim, kt, keyCount, v, dvp, s, blockO, blockM, blockL, pos, pos + valid - 1, causal);
    for (let r: usize = 0; r < blockRowCount; r++) {
      const inv: f64 = 1.0 / <f64>load<f32>(blockL + (r << 2));
      const row = blockO + ((r * <usize>dvp) << 2);
      const rowEnd = row + (<usize>dvp << 2);
      for (let at = row; at < rowEnd; at += 4) store<f32>(at, <f32>(<f64>load<f32>(at) * inv));
    }
  }
}

/**
 * One query over a list of key ranges (`ranges`: `count` pairs of i32 `[start, end)`), with
 * keys `dimp` and values `dvp` floats per row (zero-padded to a multiple of 4). Scores go to
 * `s`; writes the normalised output (`dvp` floats) to `out` and `[max, sum]` (log2 domain) to
 * `stats`. The caller guarantees at least one key.
 */
export function attendRows(
  q: usize, dimp: i32, k: usize, v: usize, dvp: i32,
  ranges: usize, count: i32, s: usize, out: usize, stats: usize,
): void {
  const kRow = <usize>dimp << 2;
  const vRow = <usize>dvp << 2;
  let mx = f32x4.splat(-Infinity);
  let n = 0;
  let rowMax: f32 = -Infinity;
  for (let r = 0; r < count; r++) {
    const end = load<i32>(ranges + (<usize>r << 3), 4);
    let j = load<i32>(ranges + (<usize>r << 3));
    for (; j + 4 <= end; j += 4) {
      const k0 = k + <usize>j * kRow;
      const k1 = k0 + kRow;
      const k2 = k1 + kRow;
      const k3 = k2 + kRow;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let c = 0; c < dimp; c += 4) {
        const off = <usize>c << 2;
        const x = v128.load(q + off);
        a0 = f32x4.add(a0, f32x4.mul(x, v128.load(k0 + off)));
        a1 = f32x4.add(a1, f32x4.mul(x, v128.load(k1 + off)));
        a2 = f32x4.add(a2, f32x4.mul(x, v128.load(k2 + off)));
        a3 = f32x4.add(a3, f32x4.mul(x, v128.load(k3 + off)));
      }
      // Transpose-and-add: lane i of the result is the full sum of a_i.
      const b01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 1, 4, 5), v128.shuffle<f32>(a0, a1, 2, 3, 6, 7));
      const b23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 1, 4, 5), v128.shuffle<f32>(a2, a3, 2, 3, 6, 7));
      const sums = f32x4.add(v128.shuffle<f32>(b01, b23, 0, 2, 4, 6), v128.shuffle<f32>(b01, b23, 1, 3, 5, 7));
      v128.store(s + (<usize>n << 2), sums);
      mx = f32x4.max(mx, sums);
      n += 4;
    }
    for (; j < end; j++) {
      const kj = k + <usize>j * kRow;
      let a = f32x4.splat(0);
      for (let c = 0; c < dimp; c += 4) {
        const off = <usize>c << 2;
        a = f32x4.add(a, f32x4.mul(v128.load(q + off), v128.load(kj + off)));
      }
      const sj = hsum(a);
      store<f32>(s + (<usize>n << 2), sj);
      rowMax = max(rowMax, sj);
      n++;
    }
  }
  rowMax = max(rowMax, hmax(mx));
  const mv = f32x4.splat(rowMax);
  let sum = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const at = s + (<usize>i << 2);
    const p = exp2v(f32x4.sub(v128.load(at), mv));
    v128.store(at, p);
    sum = f32x4.add(sum, p);
  }
  let total = hsum(sum);
  for (; i < n; i++) {
    const at = s + (<usize>i << 2);
    const p = exp2s(load<f32>(at) - rowMax);
    store<f32>(at, p);
    total += p;
  }
  for (let c = 0; c < dvp; c += 4) v128.store(out + (<usize>c << 2), f32x4.splat(0));
  n = 0;
  for (let r = 0; r < count; r++) {
    const end = load<i32>(ranges + (<usize>r << 3), 4);
    let j = load<i32>(ranges + (<usize>r << 3));
    for (; j + 4 <= end; j += 4) {
      const sp = s + (<usize>n << 2);
      const x0 = v128.load32_splat(sp);
      const x1 = v128.load32_splat(sp, 4);
      const x2 = v128.load32_splat(sp, 8);
      const x3 = v128.load32_splat(sp, 12);
      const v0 = v + <usize>j * vRow;
      const v1 = v0 + vRow;
      const v2 = v1 + vRow;
      const v3 = v2 + vRow;
      for (let c = 0; c < dvp; c += 4) {
        const off = <usize>c << 2;
        let a = v128.load(out + off);
        a = f32x4.add(a, f32x4.mul(x0, v128.load(v0 + off)));
        a = f32x4.add(a, f32x4.mul(x1, v128.load(v1 + off)));
        a = f32x4.add(a, f32x4.mul(x2, v128.load(v2 + off)));
        a = f32x4.add(a, f32x4.mul(x3, v128.load(v3 + off)));
        v128.store(out + off, a);
      }
      n += 4;
    }
    for (; j < end; j++) {
      const x = v128.load32_splat(s + (<usize>n << 2));
      const vj = v + <usize>j * vRow;
      for (let c = 0; c < dvp; c += 4) {
        const off = <usize>c << 2;
        v128.store(out + off, f32x4.add(v128.load(out + off), f32x4.mul(x, v128.load(vj + off))));
      }
      n++;
    }
  }
  const inv = f32x4.splat(1.0 / total);
  for (let c = 0; c < dvp; c += 4) {
    const off = <usize>c << 2;
    v128.store(out + off, f32x4.mul(v128.load(out + off), inv));
  }
  store<f32>(stats, rowMax);
  store<f32>(stats, total, 4);
}

/**
 * C[m×np] += A[m×k]·B for `m` a multiple of 4 (A zero-padded), with B packed in panels of 8
 * columns (`np / 8` panels, each `k × 8` floats contiguous) and C `np` floats per row. Blocked
 * over `KC` rows of B so a panel slice stays in L1 while every row block of A reads it.
 */
export function gemmPacked(a: usize, b: usize, c: usize, m: i32, k: i32, np: i32): void {
  const KC: i32 = 256;
  const MC: i32 = 64;
  const aRow = <usize>k << 2;
  const cRow = <usize>np << 2;
  const panelBytes = <usize>k << 5;
  for (let p0 = 0; p0 < k; p0 += KC) {
    const p1 = min(k, p0 + KC);
    for (let i0 = 0; i0 < m; i0 += MC) {
      const i1 = min(m, i0 + MC);
      for (let jp = 0; jp < np; jp += 8) {
        const panel = b + <usize>(jp >> 3) * panelBytes + (<usize>p0 << 5);
        for (let i = i0; i < i1; i += 4) {
          const c0 = c + <usize>i * cRow + (<usize>jp << 2);
          const c1 = c0 + cRow;
          const c2 = c1 + cRow;
          const c3 = c2 + cRow;
          let a00 = v128.load(c0), a01 = v128.load(c0, 16);
          let a10 = v128.load(c1), a11 = v128.load(c1, 16);
          let a20 = v128.load(c2), a21 = v128.load(c2, 16);
          let a30 = v128.load(c3), a31 = v128.load(c3, 16);
          const r0 = a + <usize>i * aRow;
          const r1 = r0 + aRow;
          const r2 = r1 + aRow;
          const r3 = r2 + aRow;
          let bp = panel;
          for (let p = p0; p < p1; p++) {
            const b0 = v128.load(bp);
            const b1 = v128.load(bp, 16);
            const off = <usize>p << 2;
            const x0 = v128.load32_splat(r0 + off);
            a00 = f32x4.add(a00, f32x4.mul(x0, b0));
            a01 = f32x4.add(a01, f32x4.mul(x0, b1));
            const x1 = v128.load32_splat(r1 + off);
            a10 = f32x4.add(a10, f32x4.mul(x1, b0));
            a11 = f32x4.add(a11, f32x4.mul(x1, b1));
            const x2 = v128.load32_splat(r2 + off);
            a20 = f32x4.add(a20, f32x4.mul(x2, b0));
            a21 = f32x4.add(a21, f32x4.mul(x2, b1));
            const x3 = v128.load32_splat(r3 + off);
            a30 = f32x4.add(a30, f32x4.mul(x3, b0));
            a31 = f32x4.add(a31, f32x4.mul(x3, b1));
            bp += 32;
          }
          v128.store(c0, a00);
          v128.store(c0, a01, 16);
          v128.store(c1, a10);
          v128.store(c1, a11, 16);
          v128.store(c2, a20);
          v128.store(c2, a21, 16);
          v128.store(c3, a30);
          v128.store(c3, a31, 16);
        }
      }
    }
  }
}

/**
 * Runs the row chunks of a GEMM job until none is left (threads share a job as in
 * flashBlocks). The job is 7 i32 slots at `job`: 0 next-chunk counter, 1 a, 2 b (packed),
 * 3 c, 4 m (a multiple of 4), 5 k, 6 np. Chunks are 64 rows of A and C.
 */
export function gemmRows(job: usize, unused: usize): void {
  const a = <usize>load<i32>(job, 4);
  const b = <usize>load<i32>(job, 8);
  const c = <usize>load<i32>(job, 12);
  const m = load<i32>(job, 16);
  const k = load<i32>(job, 20);
  const np = load<i32>(job, 24);
  const chunks = (m + 63) >> 6;
  for (;;) {
    const taken = atomic.add<i32>(job, 1);
    if (taken >= chunks) return;
    const i0 = taken << 6;
    gemmPacked(a + ((<usize>i0 * <usize>k) << 2), b, c + ((<usize>i0 * <usize>np) << 2), min(64, m - i0), k, np);
  }
}

/**
 * Transposes `valid` keys of `dim` floats (row-major at `src`) into `dim` rows of `TILE_KEYS`
 * floats at `dst`, in 4 × 4 blocks of vector shuffles where whole blocks fit; key lanes from
 * `valid` up to `cols` are zeroed, so padded scores stay finite.
 */
// @ts-ignore: decorator
@inline function transposeTile(src: usize, dim: i32, valid: i32, cols: i32, dst: usize): void {
  const kRow = <usize>dim << 2;
  const tRow = <usize>TILE_KEYS << 2;
  const dim4 = dim & ~3;
  const valid4 = valid & ~3;
  for (let j = 0; j < valid4; j += 4) {
    const r0 = src + <usize>j * kRow;
    const r1 = r0 + kRow;
    const r2 = r1 + kRow;
    const r3 = r2 + kRow;
    const out = dst + (<usize>j << 2);
    for (let d = 0; d < dim4; d += 4) {
      const off = <usize>d << 2;
      const a0 = v128.load(r0 + off);
      const a1 = v128.load(r1 + off);
      const a2 = v128.load(r2 + off);
      const a3 = v128.load(r3 + off);
      const t0 = v128.shuffle<f32>(a0, a1, 0, 4, 1, 5);
      const t1 = v128.shuffle<f32>(a0, a1, 2, 6, 3, 7);
      const t2 = v128.shuffle<f32>(a2, a3, 0, 4, 1, 5);
      const t3 = v128.shuffle<f32>(a2, a3, 2, 6, 3, 7);
      const row = out + <usize>d * tRow;
      v128.store(row, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
      v128.store(row + tRow, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
      v128.store(row + 2 * tRow, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
      v128.store(row + 3 * tRow, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
    }
    for (let d = dim4; d < dim; d++) {
      const row = out + <usize>d * tRow;
      const off = <usize>d << 2;
      store<f32>(row, load<f32>(r0 + off));
      store<f32>(row, load<f32>(r1 + off), 4);
      store<f32>(row, load<f32>(r2 + off), 8);
      store<f32>(row, load<f32>(r3 + off), 12);
    }
  }
  for (let j = valid4; j < valid; j++) {
    const from = src + <usize>j * kRow;
    const to = dst + (<usize>j << 2);
    for (let d = 0; d < dim; d++) store<f32>(to + <usize>d * tRow, load<f32>(from + (<usize>d << 2)));
  }
  for (let j = valid; j < cols; j++) {
    for (let d = 0; d < dim; d++) store<f32>(dst + <usize>d * tRow + (<usize>j << 2), 0);
  }
}

/**
 * Flash attention over gathered keys (the exact sparse executor's flash path): runs the tasks
 * of a job until none is left, so several threads can share it (an atomic counter, as in
 * flashBlocks). Each task is a block of `rows` query rows (a multiple of 4, ≤ 64) per head of
 * a stack of `groups` heads, against its own gathered keys: `k` row-major (`dim` floats per
 * key), `v` (`dvp` floats per key) and `pos`, the keys' sequence positions (i32, ascending).
 * Each 64-key tile of `k` is transposed into the thread's scratch before use. Under `causal`,
 * row r (at position `firstPos + r`) sees the gathered keys at positions ≤ its own: a prefix
 * of each tile, since positions ascend. Q arrives unscaled; each task scales its rows by
 * `qScale` (scale · log2 e) first.
 *
 * The job is 8 slots at `job`: 0 next-task counter, 1 tasks, 2 groups, 3 dim, 4 dvp, 5 causal,
 * 6 pointer to the task table (i32), 7 qScale (f32). A task is 12 i32 slots: 0 q, 1 o, 2 m,
 * 3 l, 4 rows, 5 k, 6 v, 7 pos, 8 keyCount, 9 firstPos. `s` is this thread's scratch:
 * `64 × TILE_KEYS` scores, 64 i32 row counts, then a `dim × TILE_KEYS` transposed key tile.
 */
export function flashGathered(job: usize, s: usize): void {
  const tasks = load<i32>(job, 4);
  const groups = load<i32>(job, 8);
  const dim = load<i32>(job, 12);
  const dvp = load<i32>(job, 16);
  const causal = load<i32>(job, 20);
  const table = <usize>load<i32>(job, 24);
  const qScale = load<f32>(job, 28);
  const counts = s + (<usize>(64 * TILE_KEYS) << 2);
  const ktp = counts + (<usize>64 << 2);
  const sRow = <usize>TILE_KEYS << 2;
  const kRow = <usize>dim << 2;
  for (;;) {
    const taken = atomic.add<i32>(job, 1);
    if (taken >= tasks) return;
    const task = table + <usize>taken * 48;
    const q = <usize>load<i32>(task);
    const o = <usize>load<i32>(task, 4);
    const m = <usize>load<i32>(task, 8);
    const l = <usize>load<i32>(task, 12);
    const rows = load<i32>(task, 16);
    const k = <usize>load<i32>(task, 20);
    const v = <usize>load<i32>(task, 24);
    const pos = <usize>load<i32>(task, 28);
    const keyCount = load<i32>(task, 32);
    const firstPos = load<i32>(task, 36);
    const qBlock = <usize>(rows * dim) << 2;
    const oBlock = <usize>(rows * dvp) << 2;
    const rowBytes = <usize>rows << 2;
    const qFloats = groups * rows * dim;
    let e = 0;
    const sv = f32x4.splat(qScale);
    for (; e + 4 <= qFloats; e += 4) v128.store(q + (<usize>e << 2), f32x4.mul(v128.load(q + (<usize>e << 2)), sv));
    for (; e < qFloats; e++) store<f32>(q + (<usize>e << 2), load<f32>(q + (<usize>e << 2)) * qScale);
    const tiles = (keyCount + TILE_KEYS - 1) / TILE_KEYS;
    for (let t = 0; t < tiles; t++) {
      const k0 = t * TILE_KEYS;
      const valid = min(TILE_KEYS, keyCount - k0);
      const cols = (valid + 7) & ~7;
      // Visible keys per row: positions ascend, so each row sees a prefix that grows with r.
      const posT = pos + (<usize>k0 << 2);
      let c = 0;
      for (let r = 0; r < rows; r++) {
        if (causal) {
          const rowPos = firstPos + r;
          while (c < valid && load<i32>(posT + (<usize>c << 2)) <= rowPos) c++;
        } else {
          c = valid;
        }
        store<i32>(counts + (<usize>r << 2), c);
      }
      if (c == 0) continue; // every key of the tile lies after every row
      transposeTile(k + <usize>k0 * kRow, dim, valid, cols, ktp);
      const vp = v + (<usize>(k0 * dvp) << 2);
      for (let g = 0; g < groups; g++) {
        const og = o + <usize>g * oBlock;
        const mg = m + <usize>g * rowBytes;
        const lg = l + <usize>g * rowBytes;
        qkTile(q + <usize>g * qBlock, dim, ktp, s, rows, cols);
        for (let r = 0; r < rows; r++) {
          softmaxRow(s + <usize>r * sRow, load<i32>(counts + (<usize>r << 2)), cols, mg + (<usize>r << 2), lg + (<usize>r << 2), og + <usize>r * (<usize>dvp << 2), dvp);
        }
        pvTile(s, vp, og, rows, valid, dvp);
      }
    }
  }
}

/**
 * Runs the tasks of a short-query job until none is left (threads share a job as in
 * flashBlocks): each task is one chunk of one KV head's keys, read in place, against the query
 * rows of its GQA group. Row r attends to the first `limit[r]` keys of the chunk (0: none) with
 * {@link attendRows} and leaves its normalised partial output (`dvp` floats) and `[max, sum]`
 * (log2 domain) for the caller to merge across chunks.
 *
 * The job is 5 i32 slots at `job`: 0 next-task counter, 1 tasks, 2 task table, 3 dimp, 4 dvp.
 * A task is 8 i32 slots: 0 q (rows × dimp, pre-scaled), 1 rows, 2 k, 3 v, 4 limits (i32 per
 * row), 5 out (rows × dvp), 6 stats (rows × 2). `s` is this thread's scratch: 2 i32 (a range)
 * then the scores of one chunk.
 */
export function attendChunks(job: usize, s: usize): void {
  const tasks = load<i32>(job, 4);
  const table = <usize>load<i32>(job, 8);
  const dimp = load<i32>(job, 12);
  const dvp = load<i32>(job, 16);
  for (;;) {
    const taken = atomic.add<i32>(job, 1);
    if (taken >= tasks) return;
    const task = table + <usize>taken * 32;
    const q = <usize>load<i32>(task);
    const rows = load<i32>(task, 4);
    const k = <usize>load<i32>(task, 8);
    const v = <usize>load<i32>(task, 12);
    const limits = <usize>load<i32>(task, 16);
    const out = <usize>load<i32>(task, 20);
    const stats = <usize>load<i32>(task, 24);
    for (let r = 0; r < rows; r++) {
      const count = load<i32>(limits + (<usize>r << 2));
      const st = stats + (<usize>r << 3);
      if (count <= 0) {
        store<f32>(st, -Infinity);
        store<f32>(st, 0, 4);
        continue;
      }
      store<i32>(s, 0);
      store<i32>(s, count, 4);
      attendRows(q + <usize>r * (<usize>dimp << 2), dimp, k, v, dvp, s, 1, s + 16, out + <usize>r * (<usize>dvp << 2), st);
    }
  }
}
