/**
 * Kernel: the per-head scores a selection layer needs for one decode query, in one pass over
 * the layer's keys (scoring only: no values are read, the attention output comes from core).
 *
 *   logit[h][t] = scale · q_h · k_{g(h), t}                          (TidalDecode: top-k per head)
 *   s[t]        = max_h p[h][t] = exp(max_h (logit[h][t] − lse_h))   (DELTA: unified token score)
 *
 * `lse_h` is the log-sum-exp core's dense attention already returns for the same query, so the
 * unified score needs no second pass and no `[heads, N]` buffer: one dot product per (head, key)
 * and one `exp` per key. Without `lse` the logits are materialised and the log-sum-exp computed.
 * The dot products run through core's SIMD `matmul`, a GQA group's heads against a chunk of
 * keys per call (groups of one or two heads: scalar JavaScript, which is faster for them) (float32 sums: logits agree with a float64 brute force to ~1e-6 relative).
 * This is the reference's fused "dump" (`del3_legacy_softmax`) in CPU form; the model runtime's
 * generic score capture costs about 2.3× a dense decode step at 64k, this less than 1×.
 */
import { ShapeError, dims4, matmul, rowOffset, type Tensor } from '@sparse-attn/core';

/** Which query row of `q` to score and over how many leading keys (default: the last row, every key). */
export interface ScoreRow {
  /** Query row (local index in `q`); default the last. */
  readonly row?: number;
  /** Keys `[0, visible)` are scored; default every key. */
  readonly visible?: number;
}

/** Query row `row` of `q` (`[1, Hq, T, D]`), every head gathered and scaled: `[Hq, D]`. */
function queryRows(q: Tensor, scale: number, row?: number): { rows: Float32Array; heads: number; dim: number } {
  const qd = dims4(q, 'q');
  if (qd.batch !== 1) throw new ShapeError(`decode scores: batch must be 1, got q of batch ${qd.batch}`);
  const at = row ?? qd.seq - 1;
  if (!(Number.isInteger(at) && at >= 0 && at < qd.seq)) throw new ShapeError(`decode scores: query row ${at} outside q's ${qd.seq} rows`);
  const rows = new Float32Array(qd.heads * qd.dim);
  for (let h = 0; h < qd.heads; h++) {
    const from = rowOffset(qd, 0, h, at);
    for (let c = 0; c < qd.dim; c++) rows[h * qd.dim + c] = q.data[from + c]! * scale;
  }
  return { rows, heads: qd.heads, dim: qd.dim };
}

/**
 * Dot products of two query rows (offsets `q0`, `q1`) with every key row, four keys per inner
 * loop (six loads feed eight multiply-adds), into `out[r·n + t]` for r < 2: a GQA group of two.
 */
function dots2(rows: Float32Array, q0: number, q1: number, dim: number, k: Float32Array, base: number, n: number, out: Float32Array): void {
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const a = base + t * dim;
    const b = a + dim;
    const c2 = b + dim;
    const d2 = c2 + dim;
    let s0 = 0, s1 = 0, u0 = 0, u1 = 0, v0 = 0, v1 = 0, x0 = 0, x1 = 0;
    for (let c = 0; c < dim; c++) {
      const w0 = rows[q0 + c]!, w1 = rows[q1 + c]!;
      const ka = k[a + c]!, kb = k[b + c]!, kc = k[c2 + c]!, kd = k[d2 + c]!;
      s0 += w0 * ka; s1 += w1 * ka;
      u0 += w0 * kb; u1 += w1 * kb;
      v0 += w0 * kc; v1 += w1 * kc;
      x0 += w0 * kd; x1 += w1 * kd;
    }
    out[t] = s0; out[t + 1] = u0; out[t + 2] = v0; out[t + 3] = x0;
    out[n + t] = s1; out[n + t + 1] = u1; out[n + t + 2] = v1; out[n + t + 3] = x1;
  }
  for (; t < n; t++) {
    const a = base + t * dim;
    let s0 = 0, s1 = 0;
    for (let c = 0; c < dim; c++) {
      const x = k[a + c]!;
      s0 += rows[q0 + c]! * x; s1 += rows[q1 + c]! * x;
    }
    out[t] = s0; out[n + t] = s1;
  }
}

/** Dot products of one query row (offset `q0`) with every key row, four keys per inner loop, into `out[t]`. */
function dots1(rows: Float32Array, q0: number, dim: number, k: Float32Array, base: number, n: number, out: Float32Array): void {
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const a = base + t * dim;
    const b = a + dim;
    const c2 = b + dim;
    const d2 = c2 + dim;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let c = 0; c < dim; c++) {
      const w = rows[q0 + c]!;
      s0 += w * k[a + c]!; s1 += w * k[b + c]!; s2 += w * k[c2 + c]!; s3 += w * k[d2 + c]!;
    }
    out[t] = s0; out[t + 1] = s1; out[t + 2] = s2; out[t + 3] = s3;
  }
  for (; t < n; t++) {
    const a = base + t * dim;
    let s0 = 0;
    for (let c = 0; c < dim; c++) s0 += rows[q0 + c]! * k[a + c]!;
    out[t] = s0;
  }
}

/**
 * Visits the scaled logits of every query head against its KV head's keys for GQA groups of one
 * or two heads, in scalar JavaScript: `matmul` pads the heads to 8 columns, which costs more
 * than it saves for so few (measured at 64k: 1.05× the time for two heads, 1.3× for one).
 * `visit(head, logits)` with `logits[t]` for t < n (a scratch row, valid during the call).
 */
function forEachHeadLogitsSmallGroup(q: Tensor, keys: Tensor, scale: number, visit: (head: number, logits: Float32Array) => void, which: ScoreRow = {}): number {
  const { rows, heads, dim } = queryRows(q, scale, which.row);
  const kd = checkKeys(keys, heads, dim);
  const group = heads / kd.heads;
  if (group > 2) throw new ShapeError(`decode scores: the scalar path takes GQA groups of at most 2 heads, got ${group}`);
  const n = which.visible ?? kd.seq;
  if (!(Number.isInteger(n) && n >= 1 && n <= kd.seq)) throw new ShapeError(`decode scores: visible ${n} outside [1, ${kd.seq}]`);
  const scratch = new Float32Array(group * n);
  for (let g = 0; g < kd.heads; g++) {
    const base = rowOffset(kd, 0, g, 0);
    const head = g * group;
    if (group === 2) dots2(rows, head * dim, (head + 1) * dim, dim, keys.data, base, n, scratch);
    else dots1(rows, head * dim, dim, keys.data, base, n, scratch);
    for (let i = 0; i < group; i++) visit(head + i, scratch.subarray(i * n, (i + 1) * n));
  }
  return n;
}

/** Keys per `matmul` call: a chunk of K (4 MiB at D 64) and its logits stay in cache while they are used. */
const KEY_CHUNK = 16384;

/**
 * Visits the scaled logits of every query head against its KV head's keys, one GQA group and
 * one chunk of keys at a time, through core's SIMD `matmul`: the chunk of keys is A (`[m, D]`,
 * rows contiguous in the cache, no repacking of K) and the group's scaled query rows are Bᵀ
 * (padded with zero rows to a multiple of 8, so the product needs no padded copy-out).
 * `visit(group, from, m, logits, stride)` gets `logits[t·stride + r]` = the logit of the group's
 * head `r` against key `from + t`, for t < m (a scratch buffer, valid during the call).
 */
function forEachGroupLogits(
  q: Tensor,
  keys: Tensor,
  scale: number,
  visit: (group: number, from: number, count: number, logits: Float32Array, stride: number) => void,
  which: ScoreRow = {},
): { n: number; group: number } {
  const { rows, heads, dim } = queryRows(q, scale, which.row);
  const kd = checkKeys(keys, heads, dim);
  const group = heads / kd.heads;
  const n = which.visible ?? kd.seq;
  if (!(Number.isInteger(n) && n >= 1 && n <= kd.seq)) throw new ShapeError(`decode scores: visible ${n} outside [1, ${kd.seq}]`);
  const stride = (group + 7) & ~7;
  const queries = new Float32Array(stride * dim);
  const chunk = Math.min(KEY_CHUNK, n);
  const scratch = new Float32Array(chunk * stride);
  for (let g = 0; g < kd.heads; g++) {
    queries.set(rows.subarray(g * group * dim, (g + 1) * group * dim));
    const base = rowOffset(kd, 0, g, 0);
    for (let from = 0; from < n; from += chunk) {
      const count = Math.min(chunk, n - from);
      const at = base + from * dim;
      matmul(keys.data.subarray(at, at + count * dim), queries, count, dim, stride, scratch, { transposeB: true });
      visit(g, from, count, scratch, stride);
    }
  }
  return { n, group };
}

function checkKeys(keys: Tensor, heads: number, dim: number) {
  const kd = dims4(keys, 'keys');
  if (kd.batch !== 1 || kd.dim !== dim || kd.heads === 0 || heads % kd.heads !== 0) {
    throw new ShapeError(`decode scores: keys [${keys.shape.join(', ')}] do not match ${heads} query heads of dim ${dim}`);
  }
  if (kd.seq === 0) throw new ShapeError('decode scores: the cache is empty');
  return kd;
}

/**
 * Scaled logits `scale · q_h · k_t` of one query row of `q` (default the last) against the first
 * `visible` keys of `keys` (`[1, Hkv, N, D]`, possibly a padded cache view; default all N),
 * laid out `[Hq, visible]`.
 */
export function decodeLogits(q: Tensor, keys: Tensor, scale: number, which: ScoreRow = {}): Float32Array {
  const n = which.visible ?? keys.shape[2] ?? 0;
  const out = new Float32Array((q.shape[1] ?? 0) * n);
  const group = (q.shape[1] ?? 0) / (keys.shape[1] ?? 1);
  if (group <= 2) {
    forEachHeadLogitsSmallGroup(q, keys, scale, (h, logits) => out.set(logits, h * n), which);
    return out;
  }
  forEachGroupLogits(q, keys, scale, (g, from, count, logits, stride) => {
    for (let r = 0; r < group; r++) {
      const row = (g * group + r) * n + from;
      for (let t = 0; t < count; t++) out[row + t] = logits[t * stride + r]!;
    }
  }, which);
  return out;
}

/**
 * Per-head softmax of logits laid out `[heads, n]` (a new array): the attention probabilities
 * of one query over `n` keys.
 */
export function softmaxRows(logits: Float32Array, heads: number, n: number): Float32Array {
  const out = new Float32Array(heads * n);
  for (let h = 0; h < heads; h++) {
    let max = -Infinity;
    for (let t = 0; t < n; t++) if (logits[h * n + t]! > max) max = logits[h * n + t]!;
    let sum = 0;
    for (let t = 0; t < n; t++) {
      const e = Math.exp(logits[h * n + t]! - max);
      out[h * n + t] = e;
      sum += e;
    }
    for (let t = 0; t < n; t++) out[h * n + t]! /= sum;
  }
  return out;
}

/**
 * DELTA's unified token scores from per-head logits laid out `[heads, n]` (a new array):
 * `s[t] = max_h softmax_t(logit[h])[t] = exp(max_h (logit[h][t] − lse_h))`, one pass per head
 * for its log-sum-exp and one `exp` per key, without materialising the `[heads, n]` probabilities.
 */
export function unifiedScoresOfLogits(logits: Float32Array, heads: number, n: number): Float32Array {
  const best = new Float32Array(n).fill(-Infinity);
  for (let h = 0; h < heads; h++) {
    const at = h * n;
    let max = -Infinity;
    for (let t = 0; t < n; t++) if (logits[at + t]! > max) max = logits[at + t]!;
    let sum = 0;
    for (let t = 0; t < n; t++) sum += Math.exp(logits[at + t]! - max);
    const lse = max + Math.log(sum);
    for (let t = 0; t < n; t++) {
      const x = logits[at + t]! - lse;
      if (x > best[t]!) best[t] = x;
    }
  }
  for (let t = 0; t < n; t++) best[t] = Math.exp(best[t]!);
  return best;
}

/**
 * DELTA's unified token scores of the last query of `q`: `s[t] = max_h softmax_t(logit[h])[t]`
 * over every query head. `lse` (`[Hq]`, natural log) is the dense attention's log-sum-exp of
 * the same query; when absent it is computed from the logits (one more `exp` per head and key).
 */
export function unifiedTokenScores(q: Tensor, keys: Tensor, scale: number, lse?: ArrayLike<number>): Float32Array {
  const heads = q.shape[1] ?? 0;
  const n = keys.shape[2] ?? 0;
  const given = lse && lse.length === heads ? lse : undefined;
  if (!given) return unifiedScoresOfLogits(decodeLogits(q, keys, scale), heads, n);
  const group = heads / (keys.shape[1] ?? 1);
  if (group <= 2) {
    const best = new Float32Array(n).fill(-Infinity);
    forEachHeadLogitsSmallGroup(q, keys, scale, (h, logits) => {
      const l = given[h]!;
      for (let t = 0; t < n; t++) {
        const x = logits[t]! - l;
        if (x > best[t]!) best[t] = x;
      }
    });
    for (let t = 0; t < n; t++) best[t] = Math.exp(best[t]!);
    return best;
  }
  const best = new Float32Array(n);
  forEachGroupLogits(q, keys, scale, (g, from, count, logits, stride) => {
    const shift = new Float64Array(group);
    for (let r = 0; r < group; r++) shift[r] = given[g * group + r]!;
    for (let t = 0; t < count; t++) {
      const at = t * stride;
      let x = g === 0 ? -Infinity : best[from + t]!;
      for (let r = 0; r < group; r++) {
        const y = logits[at + r]! - shift[r]!;
        if (y > x) x = y;
      }
      best[from + t] = x;
    }
  });
  for (let t = 0; t < n; t++) best[t] = Math.exp(best[t]!);
  return best;
}
