import { validateAttentionInput, type AttentionInput } from './attention.js';
import { ConfigError, ShapeError } from './errors.js';
import { attentionProbabilities } from './reference-attention.js';
import { Rng } from './random.js';
import { forEachKeyRange, selectionRow, type Selection } from './selection.js';
import { rowOffset, type Tensor } from './tensor.js';
import type { NeedleInfo } from './workloads.js';


/** Which queries a metric looks at: all of them, or a seeded sample (metrics cost O(Sk) per query). */
export interface QuerySample {
  /** Query indices to evaluate; default: a seeded sample of `maxQueries`. */
  readonly queries?: readonly number[];
  /** Queries sampled per (batch, head) when `queries` is not given. Default 32. */
  readonly maxQueries?: number;
  readonly seed?: number;
}

/**
 * The query indices a metric evaluates. Explicit `queries` must be integers in
 * `[0, querySeq)` (`ShapeError` otherwise: an index past the end would read another head's
 * rows or nothing at all); `maxQueries` must be a positive integer (`ConfigError`).
 */
function sampleQueries(querySeq: number, sample: QuerySample): number[] {
  if (sample.queries) {
    for (const [at, i] of sample.queries.entries()) {
      if (!(Number.isInteger(i) && i >= 0 && i < querySeq)) {
        throw new ShapeError(`metrics: queries[${at}] = ${i} is outside the ${querySeq} queries of this call (expected an integer in [0, ${querySeq}))`);
      }
    }
    return [...sample.queries];
  }
  const n = sample.maxQueries ?? 32;
  if (!(Number.isInteger(n) && n > 0)) throw new ConfigError(`metrics: maxQueries must be a positive integer, got ${n}`);
  if (querySeq <= n) return Array.from({ length: querySeq }, (_, i) => i);
  const rng = new Rng(sample.seed ?? 7);
  const picked = new Set<number>([querySeq - 1]);
  while (picked.size < n) picked.add(rng.int(querySeq));
  return [...picked].sort((a, b) => a - b);
}

/**
 * Attention-mass recall: the share of the dense softmax mass that falls on the selected
 * (and causally visible) keys, averaged over the sampled queries of every batch and query head.
 * 1 means the selection holds every key that matters.
 */
export function attentionMassRecall(input: AttentionInput, selection: Selection, sample: QuerySample = {}): number {
  const d = validateAttentionInput(input, { checkFinite: false });
  const queries = sampleQueries(d.querySeq, sample);
  let total = 0;
  let count = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      for (const i of queries) {
        const probs = attentionProbabilities(input, b, h, i);
        const row = selectionRow(selection, b, h, d.groupSize, i);
        let mass = 0;
        forEachKeyRange(selection, row, probs.length, (s, e) => {
          for (let j = s; j < e; j++) mass += probs[j]!;
        });
        total += mass;
        count++;
      }
    }
  }
  return count === 0 ? 1 : total / count;
}

/**
 * Top-k recall: the share of each query's k highest-probability keys that the selection holds,
 * averaged over sampled queries (k is clipped to the visible keys).
 */
export function topKRecall(input: AttentionInput, selection: Selection, k: number, sample: QuerySample = {}): number {
  const d = validateAttentionInput(input, { checkFinite: false });
  if (!(Number.isInteger(k) && k > 0)) throw new ConfigError(`topKRecall: k must be a positive integer, got ${k}`);
  const queries = sampleQueries(d.querySeq, sample);
  let total = 0;
  let count = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      for (const i of queries) {
        const probs = attentionProbabilities(input, b, h, i);
        const kk = Math.min(k, probs.length);
        const order = Array.from(probs.keys()).sort((x, y) => probs[y]! - probs[x]! || x - y).slice(0, kk);
        const selected = new Set<number>();
        forEachKeyRange(selection, selectionRow(selection, b, h, d.groupSize, i), probs.length, (s, e) => {
          for (let j = s; j < e; j++) selected.add(j);
        });
        total += order.filter((j) => selected.has(j)).length / kk;
        count++;
      }
    }
  }
  return count === 0 ? 1 : total / count;
}

/** Needle retrieval: is the needle key selected, and is the output dominated by the needle value? */
export interface NeedleRetrieval {
  /**
   * Share of (needle query, batch, head) rows whose selection contains the needle key. Without a
   * selection the call is taken to have read every visible key (dense attention), so this is 1;
   * methods that read a subset must report it for this figure to mean anything.
   */
  readonly selected: number;
  /** Share of those rows whose output has cosine ≥ 0.9 with the needle value direction. */
  readonly dominated: number;
}

export function needleRetrieval(input: AttentionInput, needle: NeedleInfo, output: Tensor, selection?: Selection): NeedleRetrieval {
  const d = validateAttentionInput(input, { checkFinite: false });
  const od = { batch: d.batch, heads: d.queryHeads, seq: d.querySeq, dim: d.valueDim, capacity: d.querySeq };
  let selected = 0;
  let dominated = 0;
  let count = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      for (const i of needle.queries) {
        // Needle queries are indexed in the full sequence; map to this call's local indices.
        const local = i - d.queryOffset;
        if (local < 0 || local >= d.querySeq) continue;
        count++;
        if (selection) {
          let hit = false;
          forEachKeyRange(selection, selectionRow(selection, b, h, d.groupSize, local), needle.position + 1, (s, e) => {
            if (s <= needle.position && needle.position < e) hit = true;
          });
          if (hit) selected++;
        } else {
          selected++;
        }
        const o = rowOffset(od, b, h, local);
        let dot = 0;
        let norm = 0;
        for (let c = 0; c < d.valueDim; c++) {
          const x = output.data[o + c]!;
          dot += x * needle.valueDirection[c]!;
          norm += x * x;
        }
        if (norm > 0 && dot / Math.sqrt(norm) >= 0.9) dominated++;
      }
    }
  }
  return { selected: count ? selected / count : 0, dominated: count ? dominated / count : 0 };
}

/** Density of a selection for a given call: causally visible selected pairs / dense causal pairs. */
export function selectionDensity(input: AttentionInput, selection: Selection): number {
  const d = validateAttentionInput(input, { checkFinite: false });
  let pairs = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      for (let i = 0; i < d.querySeq; i++) {
        const limit = d.causal ? d.queryOffset + i + 1 : d.keySeq;
        forEachKeyRange(selection, selectionRow(selection, b, h, d.groupSize, i), limit, (s, e) => {
          pairs += e - s;
        });
      }
    }
  }
  const perHead = d.causal ? d.querySeq * d.queryOffset + (d.querySeq * (d.querySeq + 1)) / 2 : d.querySeq * d.keySeq;
  return pairs / (perHead * d.batch * d.queryHeads);
}
