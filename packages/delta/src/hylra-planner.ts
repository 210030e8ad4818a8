/**
 * A HyLRA-style offline layer planner (after UCM's RALS profiler, the closest public artifact):
 * from dense attention traces of a calibration run it measures
 *
 *   sparsity[l]  = mean over steps and heads of (pages needed to cover `coverage` of the mass) / T
 *   overlap[i][j] = mean over steps of |sel_i ∩ sel_j| / |sel_j|
 *
 * where `sel_l` is the page set DELTA's selector picks from layer l's probabilities, and chooses
 * per layer "full" (the `rollback` least sparse layers), "recompute" (a Δ-layer) or "reuse the
 * selection in force" (that of the most recent recomputing layer, as in RALS's DP and DELTA's
 * layer structure) by dynamic programming: maximise the minimum overlap over reusing layers,
 * then the sum of overlaps, with at most `maxRecomputes` recomputing layers. The result is a
 * {@link LayerPlan} that {@link createDeltaPolicy} runs.
 *
 * @see arXiv:2602.00777 (HyLRA: intra-layer sensitivity, inter-layer similarity, offline DP)
 */
import { ConfigError, ShapeError, parseConfig } from '@sparse-attn/core';
import type { LlamaModel } from '@sparse-attn/model';
import { z } from 'zod';
import type { LayerPlan, LayerRole } from './layer-plan.js';
import { pageScores, selectPages } from './select-pages.js';

/** Per-head attention probabilities of one decode query, for every layer. */
export interface TraceStep {
  /** Keys the probabilities cover. */
  readonly keySeq: number;
  /** Per layer: `[queryHeads, keySeq]` probabilities of the step's query. */
  readonly probabilities: readonly Float32Array[];
}

/** Dense attention traces of a calibration run: one entry per decode step. */
export interface AttentionTrace {
  readonly layers: number;
  readonly queryHeads: number;
  readonly steps: readonly TraceStep[];
}

/** The planner's options; defaults follow RALS (`unified-cache-management: gsa_on_device/tools/main.py`). */
export const hylraPlannerConfigSchema = z
  .object({
    pageSize: z.number().int().positive().default(16).describe('Tokens per page, as in the DELTA policy that runs the plan.'),
    pageBudget: z.number().int().positive().default(64).describe('Pages a selection keeps (K), as in the DELTA policy that runs the plan.'),
    recentPages: z.number().int().nonnegative().default(8).describe('Recent pages always kept (L), as in the DELTA policy that runs the plan.'),
    coverage: z.number().gt(0).lte(1).default(0.9).describe('Share of attention mass the sparsity profile must cover. RALS: 0.9 (compute_ratio90).'),
    sparsity: z.number().gt(0).lt(1).default(0.91).describe('Target sparsity: ceil(layers·(1 − sparsity)) least sparse layers stay full. RALS: 0.91.'),
    computedRatio: z.number().gt(0).lte(1).default(0.3).describe('Share of the sparse layers that recompute their selection: ceil(layers·sparsity·computedRatio). RALS: 0.3.'),
    rollbackLayers: z.number().int().nonnegative().nullable().default(null).describe('Full layers, overriding the count derived from sparsity.'),
    maxRecomputes: z.number().int().positive().nullable().default(null).describe('Recomputing (Δ) layers at most, overriding the count derived from sparsity and computedRatio.'),
  })
  .strict()
  .refine((c) => c.recentPages <= c.pageBudget, { message: 'recentPages must not exceed pageBudget', path: ['recentPages'] });

/** Planner options as given by a user. */
export type HylraPlannerConfigInput = z.input<typeof hylraPlannerConfigSchema>;
/** Planner options with defaults applied. */
export type HylraPlannerConfig = z.output<typeof hylraPlannerConfigSchema>;

/** What the trace says about each layer and each pair of layers. */
export interface TraceProfile {
  /** Per layer: mean share of pages needed to cover `coverage` of the mass (lower = sparser). */
  readonly sparsity: readonly number[];
  /** `overlap[i][j]`: mean share of layer j's selection that layer i's selection holds (i ≤ j). */
  readonly overlap: readonly (readonly number[])[];
}

/** The planner's answer: the plan plus the figures it optimised. */
export interface HylraPlan extends LayerPlan {
  readonly profile: TraceProfile;
  /** Layers kept full (least sparse). */
  readonly rollback: readonly number[];
  /** Smallest overlap over the reusing layers (1 when none reuses). */
  readonly minOverlap: number;
  /** Sum of overlaps over the reusing layers. */
  readonly sumOverlap: number;
}

/** Pages (of `pageSize`) needed to cover `coverage` of one head's mass, over the page count. */
function coverageShare(p: Float32Array, offset: number, keySeq: number, pageSize: number, coverage: number): number {
  const pages = Math.ceil(keySeq / pageSize);
  const mass = new Float64Array(pages);
  let total = 0;
  for (let t = 0; t < keySeq; t++) {
    mass[(t / pageSize) | 0]! += p[offset + t]!;
    total += p[offset + t]!;
  }
  mass.sort().reverse();
  let acc = 0;
  for (let u = 0; u < pages; u++) {
    acc += mass[u]!;
    if (acc >= coverage * total - 1e-12) return (u + 1) / pages;
  }
  return 1;
}

/** Measures per-layer sparsity and the layer-to-layer selection overlap of a trace. */
export function profileTrace(trace: AttentionTrace, config: HylraPlannerConfigInput = {}): TraceProfile {
  const c = parseConfig('hylra-planner', hylraPlannerConfigSchema, config);
  const n = trace.layers;
  if (trace.steps.length === 0) throw new ConfigError('profileTrace: the trace holds no decode step');
  const sparsity = new Array<number>(n).fill(0);
  const overlap = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (const [s, step] of trace.steps.entries()) {
    if (step.probabilities.length !== n) throw new ShapeError(`profileTrace: step ${s} has ${step.probabilities.length} layers, the trace ${n}`);
    const selections: Set<number>[] = [];
    for (let l = 0; l < n; l++) {
      const p = step.probabilities[l]!;
      if (p.length !== trace.queryHeads * step.keySeq) throw new ShapeError(`profileTrace: step ${s} layer ${l} holds ${p.length} probabilities, expected ${trace.queryHeads} heads × ${step.keySeq} keys`);
      let share = 0;
      for (let h = 0; h < trace.queryHeads; h++) share += coverageShare(p, h * step.keySeq, step.keySeq, c.pageSize, c.coverage);
      sparsity[l]! += share / trace.queryHeads / trace.steps.length;
      selections.push(new Set(selectPages(pageScores(p, trace.queryHeads, step.keySeq, c.pageSize), c.pageBudget, c.recentPages)));
    }
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        let common = 0;
        for (const u of selections[j]!) if (selections[i]!.has(u)) common++;
        overlap[i]![j]! += common / selections[j]!.size / trace.steps.length;
      }
    }
  }
  return { sparsity, overlap };
}

/**
 * The DP over layers for fixed full layers: every other layer recomputes (value 1, at most
 * `maxRecomputes` of them) or reuses the selection in force, that of the most recent recomputing
 * layer i (value `overlap[i][j]`).
 * Exact lexicographic optimum of (minimum overlap over reusing layers, sum of overlaps): for each
 * threshold τ, descending, a max-sum DP over paths whose reuse edges all have overlap ≥ τ; the
 * first τ that admits a path wins.
 */
export function planFromOverlap(overlap: readonly (readonly number[])[], rollback: readonly number[], maxRecomputes: number): Omit<HylraPlan, 'profile' | 'rollback'> {
  const n = overlap.length;
  if (!(Number.isInteger(maxRecomputes) && maxRecomputes >= 1)) throw new ConfigError(`planFromOverlap: maxRecomputes must be a positive integer, got ${maxRecomputes}`);
  const full = new Set(rollback);
  const free = Array.from({ length: n }, (_, l) => l).filter((l) => !full.has(l));
  const value = (i: number, j: number) => overlap[i]?.[j] ?? 0;
  // A plan with no reusing layer has minimum 1 (the most any overlap reaches), so τ = 1 comes first.
  const thresholds = [...new Set([1, ...free.flatMap((j, b) => free.slice(0, b).map((i) => value(i, j)))])].sort((a, b) => b - a);
  for (const tau of thresholds) {
    const best = maxSumPath(free, value, tau, maxRecomputes);
    if (!best) continue;
    const roles: LayerRole[] = Array.from({ length: n }, () => 'full');
    const sources = new Array<number>(n).fill(-1);
    let minOverlap = 1;
    let sumOverlap = 0;
    for (const [b, j] of free.entries()) {
      const source = best[b]!;
      if (source === j) roles[j] = 'delta';
      else {
        roles[j] = 'sparse';
        sources[j] = source;
        minOverlap = Math.min(minOverlap, value(source, j));
        sumOverlap += value(source, j);
      }
    }
    return { roles, sources, minOverlap, sumOverlap };
  }
  throw new ConfigError(`planFromOverlap: no plan recomputes at most ${maxRecomputes} of ${free.length} layers`);
}

/**
 * Max-sum assignment of a source to each free layer (itself = recompute), reuse edges limited
 * to overlap ≥ τ, at most `maxRecomputes` recomputes. State: (layer index b, current source,
 * recomputes used). Returns each free layer's source, or undefined when none is feasible.
 */
function maxSumPath(free: readonly number[], value: (i: number, j: number) => number, tau: number, maxRecomputes: number): number[] | undefined {
  const m = free.length;
  if (m === 0) return [];
  // score[b][s][c]: best sum over layers 0..b with free[s] the source in force and c recomputes.
  const C = Math.min(maxRecomputes, m);
  const size = m * (C + 1);
  let score = new Float64Array(size).fill(-Infinity);
  const back: Int32Array[] = [];
  const at = (s: number, c: number) => s * (C + 1) + c;
  score[at(0, 1)] = 0; // the first free layer must recompute (nothing runs before it)
  back.push(new Int32Array(size).fill(-1));
  for (let b = 1; b < m; b++) {
    const next = new Float64Array(size).fill(-Infinity);
    const from = new Int32Array(size).fill(-1);
    for (let s = 0; s < b; s++) {
      for (let c = 1; c <= C; c++) {
        const current = score[at(s, c)]!;
        if (current === -Infinity) continue;
        // Reuse free[s]'s selection.
        const v = value(free[s]!, free[b]!);
        if (v >= tau && current + v > next[at(s, c)]!) {
          next[at(s, c)] = current + v;
          from[at(s, c)] = at(s, c);
        }
        // Recompute at free[b].
        if (c < C && current > next[at(b, c + 1)]!) {
          next[at(b, c + 1)] = current;
          from[at(b, c + 1)] = at(s, c);
        }
      }
    }
    score = next;
    back.push(from);
  }
  let bestState = -1;
  for (let state = 0; state < size; state++) if (score[state]! > -Infinity && (bestState < 0 || score[state]! > score[bestState]!)) bestState = state;
  if (bestState < 0) return undefined;
  const sources = new Array<number>(m);
  let state = bestState;
  for (let b = m - 1; b >= 0; b--) {
    sources[b] = free[Math.floor(state / (C + 1))]!;
    state = back[b]![state]!;
  }
  return sources;
}

/**
 * Plans layer roles from a calibration trace: the least sparse layers stay full, the DP picks
 * the Δ-layers and which Δ-layer each other layer reuses.
 */
export function planLayers(trace: AttentionTrace, config: HylraPlannerConfigInput = {}): HylraPlan {
  const c = parseConfig('hylra-planner', hylraPlannerConfigSchema, config);
  const n = trace.layers;
  const profile = profileTrace(trace, c);
  const rollbackCount = Math.min(n, c.rollbackLayers ?? Math.ceil(n * (1 - c.sparsity)));
  const rollback = Array.from({ length: n }, (_, l) => l)
    .sort((a, b) => profile.sparsity[b]! - profile.sparsity[a]! || a - b)
    .slice(0, rollbackCount)
    .sort((a, b) => a - b);
  const maxRecomputes = c.maxRecomputes ?? Math.max(1, Math.ceil(n * c.sparsity * c.computedRatio));
  return { ...planFromOverlap(profile.overlap, rollback, maxRecomputes), profile, rollback };
}

/**
 * Runs a dense calibration on `model`: the prompt, then `steps` greedy decode steps, capturing
 * every layer's per-head probabilities of each decode query. Memory: steps × layers × heads × N floats.
 */
export function collectAttentionTrace(model: LlamaModel, prompt: ArrayLike<number>, steps: number): AttentionTrace {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new ConfigError(`collectAttentionTrace: steps must be a positive integer, got ${steps}`);
  const d = model.dims;
  const collected: TraceStep[] = [];
  let current: Float32Array[] = [];
  const session = model.createSession({
    policy: {
      beginStep: () => {
        current = [];
      },
      planLayer: ({ step }) => (step.phase === 'decode' ? { kind: 'dense', capture: { queries: 'last' } } : { kind: 'dense' }),
      afterAttention: (_context, record) => {
        if (record.scores) current.push(record.scores.probabilities.slice());
      },
      endStep: (step, trace) => {
        if (step.phase === 'decode') collected.push({ keySeq: trace[0]!.keySeq, probabilities: current });
      },
    },
  });
  session.generate(prompt, steps + 1);
  return { layers: d.layers, queryHeads: d.queryHeads, steps: collected };
}
