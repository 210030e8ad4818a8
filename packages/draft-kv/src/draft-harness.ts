/**
 * The model-free draft harness (spec §8.2, benchmarks.md §4.2): one synthetic attention layer whose
 * future queries — the queries the answer will issue — are known by construction.
 *
 *   keys        k_t ~ N(0, I)                                   (‖k‖ ≈ √d)
 *   needles     k_{p_j} = √d · u_{g,j} + 0.1 · N(0, I)           (m needles per KV head at spread depths)
 *   future      q_fut = ℓ · u_{g, l mod m} + 0.5 · N(0, I)       (logit ℓ on its needle, ≈ N(0, σ²) elsewhere)
 *   window      q_win = a · u_{g, random j} + N(0, I)            (the last w prompt queries: weakly aligned, a ≪ ℓ)
 *   draft       q̂ = q + ε · (‖q‖ / √d) · N(0, I),  k̂ = k + ε · N(0, I)   (ε models draft quality)
 *
 * SnapKV observes the window; SpecKV the window plus the draft's future queries; SpecPC the draft's
 * attention (noisy window and future queries over noisy keys) reduced to one score per token;
 * the oracle keeps the top entries of the true future attention. Fidelity is measured on the true
 * future queries: attention-mass recall, output error vs dense, needle recall.
 */
import {
  ConfigError,
  Rng,
  attentionMassRecall,
  denseAttention,
  relativeL2Error,
  sparseAttention,
  tensor,
  type AttentionInput,
  type Tensor,
} from '@sparse-attn/core';
import { keptSelection } from './compressed-attention.js';
import { observerScores } from './observer-scores.js';
import { poolScores } from './pool-scores.js';
import { selectKeptEntries } from './select-kept-entries.js';
import { selectPromptTokens } from './select-prompt-tokens.js';

/** Sizes and signal strengths of a harness layer. */
export interface DraftHarnessOptions {
  readonly seqLength: number;
  readonly headDim?: number;
  readonly queryHeads?: number;
  readonly kvHeads?: number;
  /** Prompt window queries w (SnapKV's observers). Default 32. */
  readonly window?: number;
  /** Future queries L (the answer). Default 16. */
  readonly lookahead?: number;
  /** Needles per KV head. Default 4. */
  readonly needles?: number;
  /** Logit of a future query on its needle (ℓ). Default 12. */
  readonly needleLogit?: number;
  /** Logit of a window query on a needle (a): the weak alignment. Default 1. */
  readonly windowLogit?: number;
  readonly seed?: number;
}

/** One synthetic layer with known future queries. */
export interface DraftHarness {
  readonly seqLength: number;
  readonly window: number;
  readonly k: Tensor;
  readonly v: Tensor;
  /** `[1, Hq, w, d]`: the last w prompt queries (positions N − w … N − 1). */
  readonly windowQueries: Tensor;
  /** `[1, Hq, L, d]`: the answer's queries (they see every prompt key). */
  readonly futureQueries: Tensor;
  /** Needle positions per KV head. */
  readonly needlePositions: readonly (readonly number[])[];
  /** The draft's view of a tensor: `x + ε · (rms row norm) · N(0, I)`, seeded. */
  draftView(x: Tensor, epsilon: number, seed: number): Tensor;
}

/** Builds a harness layer (seeded, deterministic). */
export function createDraftHarness(options: DraftHarnessOptions): DraftHarness {
  const n = options.seqLength;
  const d = options.headDim ?? 64;
  const hq = options.queryHeads ?? 4;
  const hkv = options.kvHeads ?? 2;
  const w = options.window ?? 32;
  const L = options.lookahead ?? 16;
  const m = options.needles ?? 4;
  const ell = options.needleLogit ?? 12;
  const a = options.windowLogit ?? 1;
  if (!(Number.isInteger(n) && n > w + m)) throw new ConfigError(`draft harness: seqLength ${n} must exceed window + needles (${w + m})`);
  if (hq % hkv !== 0) throw new ConfigError(`draft harness: queryHeads ${hq} must be a multiple of kvHeads ${hkv}`);
  const rng = new Rng(options.seed ?? 1);
  const k = rng.fillNormal(new Float32Array(hkv * n * d));
  const v = rng.fillNormal(new Float32Array(hkv * n * d));
  const qw = new Float32Array(hq * w * d);
  const qf = new Float32Array(hq * L * d);
  const group = hq / hkv;
  const needlePositions: number[][] = [];
  const sqrtD = Math.sqrt(d);
  for (let g = 0; g < hkv; g++) {
    const topics = Array.from({ length: m }, () => unit(rng, d));
    // Needles at depths spread over 5%–85% of the prompt, jittered per head.
    const positions = topics.map((_, j) => Math.min(n - w - 1, Math.floor(n * (0.05 + (0.8 * (j + rng.next())) / m))));
    needlePositions.push(positions);
    for (const [j, p] of positions.entries()) {
      for (let c = 0; c < d; c++) k[(g * n + p) * d + c] = sqrtD * topics[j]![c]! + 0.1 * rng.normal();
    }
    for (let r = 0; r < group; r++) {
      const h = g * group + r;
      for (let l = 0; l < L; l++) {
        const u = topics[l % m]!;
        for (let c = 0; c < d; c++) qf[(h * L + l) * d + c] = ell * u[c]! + 0.5 * rng.normal();
      }
      for (let i = 0; i < w; i++) {
        const u = topics[rng.int(m)]!;
        for (let c = 0; c < d; c++) qw[(h * w + i) * d + c] = a * u[c]! + rng.normal();
      }
    }
  }
  return {
    seqLength: n,
    window: w,
    k: tensor([1, hkv, n, d], k),
    v: tensor([1, hkv, n, d], v),
    windowQueries: tensor([1, hq, w, d], qw),
    futureQueries: tensor([1, hq, L, d], qf),
    needlePositions,
    draftView(x, epsilon, seed) {
      const out = x.data.slice();
      if (epsilon === 0) return tensor(x.shape, out);
      const noise = new Rng(seed);
      const dim = x.shape[3]!;
      for (let r = 0; r < out.length / dim; r++) {
        let norm = 0;
        for (let c = 0; c < dim; c++) norm += out[r * dim + c]! ** 2;
        const scale = (epsilon * Math.sqrt(norm)) / Math.sqrt(dim);
        for (let c = 0; c < dim; c++) out[r * dim + c]! += scale * noise.normal();
      }
      return tensor(x.shape, out);
    },
  };
}

function unit(rng: Rng, d: number): Float32Array {
  const u = rng.fillNormal(new Float32Array(d));
  const norm = Math.hypot(...u);
  return u.map((x) => x / norm);
}

/** Methods the harness compares. */
export type HarnessMethod = 'snapkv' | 'speckv' | 'specpc' | 'streaming-llm' | 'oracle';

/** Options of one harness selection. */
export interface HarnessSelectOptions {
  readonly capacity: number;
  /** Draft noise ε (SpecKV, SpecPC). Default 0. */
  readonly epsilon?: number;
  /** Pooling kernel for SnapKV/SpecKV (odd). Default 7. */
  readonly kernel?: number;
  /** SpecPC's center-pool kernel and neighbours. Default 7 (single-token needles; the paper uses 32–64 on text). */
  readonly promptKernel?: number;
  readonly seed?: number;
}

/** Kept prompt entries per KV head for `method` at `capacity`. */
export function harnessKeep(h: DraftHarness, method: HarnessMethod, options: HarnessSelectOptions): Int32Array[] {
  const n = h.seqLength;
  const kvHeads = h.k.shape[1]!;
  const w = Math.min(h.window, options.capacity);
  const kernel = options.kernel ?? 7;
  const eps = options.epsilon ?? 0;
  const seed = options.seed ?? 1;
  const windowLimits = Array.from({ length: h.windowQueries.shape[2]! }, (_, i) => n - h.windowQueries.shape[2]! + i + 1);
  const futureLimits = Array.from({ length: h.futureQueries.shape[2]! }, () => n);
  const perHead = (scores: Float32Array) => selectKeptEntries(poolScores(scores, kvHeads, n - w, kernel, 'max'), kvHeads, n, w, options.capacity);
  switch (method) {
    case 'snapkv':
      return perHead(observerScores(h.windowQueries, h.k, { limits: windowLimits, reduction: 'mean', scoredKeys: n - w }));
    case 'speckv': {
      const future = h.draftView(h.futureQueries, eps, seed);
      const a = observerScores(h.windowQueries, h.k, { limits: windowLimits, reduction: 'max', scoredKeys: n - w });
      const b = observerScores(future, h.k, { limits: futureLimits, reduction: 'max', scoredKeys: n - w });
      return perHead(a.map((x, i) => Math.max(x, b[i]!)));
    }
    case 'oracle':
      return selectKeptEntries(observerScores(h.futureQueries, h.k, { limits: futureLimits, reduction: 'max', scoredKeys: n - w }), kvHeads, n, w, options.capacity);
    case 'streaming-llm': {
      const keep = Int32Array.from({ length: Math.min(n, options.capacity) }, (_, i) => (i < 4 ? i : n - (Math.min(n, options.capacity) - i)));
      return Array.from({ length: kvHeads }, () => keep);
    }
    case 'specpc': {
      const keys = h.draftView(h.k, eps, seed + 1);
      const windowQ = h.draftView(h.windowQueries, eps, seed + 2);
      const future = h.draftView(h.futureQueries, eps, seed);
      const rows = windowQ.shape[2]!;
      const weights = Array.from({ length: rows }, (_, i) => (rows > 1 ? i / (rows - 1) : 1));
      const a = observerScores(windowQ, keys, { limits: windowLimits, reduction: 'max', weights });
      const b = observerScores(future, keys, { limits: futureLimits, reduction: 'max' });
      const tokenScores = new Float32Array(n);
      for (let g = 0; g < kvHeads; g++) for (let j = 0; j < n; j++) tokenScores[j] = Math.max(tokenScores[j]!, a[g * n + j]!, b[g * n + j]!);
      const k = options.promptKernel ?? 7;
      const indices = selectPromptTokens(tokenScores, n, { capacity: options.capacity, window: w, kernel: k, neighbors: k, pooling: 'max' });
      return Array.from({ length: kvHeads }, () => indices);
    }
    default:
      throw new ConfigError(`unknown harness method '${String(method)}'`);
  }
}

/** Fidelity of a kept set on the true future queries. */
export interface HarnessFidelity {
  /** Mean share of the future queries' dense attention mass on kept keys. */
  readonly futureMassRecall: number;
  /** ‖õ − o‖ / ‖o‖ of the future queries' outputs. */
  readonly outputError: number;
  /** Share of (KV head, needle) pairs kept. */
  readonly needleRecall: number;
}

/** Measures a kept set against dense attention of the future queries. */
export function harnessFidelity(h: DraftHarness, keep: readonly Int32Array[]): HarnessFidelity {
  const n = h.seqLength;
  const futureInput: AttentionInput = { q: h.futureQueries, k: h.k, v: h.v, causal: false };
  const selection = keptSelection(keep, 1, keep.length, h.futureQueries.shape[2]!, n);
  const dense = denseAttention(futureInput, { checkFinite: false });
  const sparse = sparseAttention(futureInput, selection, { checkFinite: false });
  let needles = 0;
  let kept = 0;
  for (const [g, positions] of h.needlePositions.entries()) {
    const set = new Set(keep[g]);
    for (const p of positions) {
      needles++;
      if (set.has(p)) kept++;
    }
  }
  return {
    futureMassRecall: attentionMassRecall(futureInput, selection, { maxQueries: h.futureQueries.shape[2]! }),
    outputError: relativeL2Error(sparse.output, dense.output),
    needleRecall: kept / needles,
  };
}
