import type { AttentionInput } from './attention.js';
import { ConfigError } from './errors.js';
import { Rng } from './random.js';
import { tensor } from './tensor.js';

/** Built-in synthetic workloads (seeded, deterministic). */
export type WorkloadKind = 'gaussian' | 'needle' | 'structured';

export interface WorkloadOptions {
  readonly batch?: number;
  readonly queryHeads?: number;
  readonly kvHeads?: number;
  readonly seqLength: number;
  readonly headDim?: number;
  readonly valueDim?: number;
  readonly seed?: number;
  /** `needle`: relative depth of the needle in [0, 1] (0 = first token). Default 0.5. */
  readonly needleDepth?: number;
  /** `needle`: how many of the last queries look for the needle. Default min(16, seq − position − 1, seq). */
  readonly needleQueries?: number;
  /** `needle`: the needle's logit for its queries (before softmax). Default 16. */
  readonly needleLogit?: number;
}

/** Where the needle is and which queries look for it. */
export interface NeedleInfo {
  /** Key index of the needle (the same in every batch and KV head). */
  readonly position: number;
  /** Query indices (0..seq-1) whose query matches the needle. */
  readonly queries: readonly number[];
  /** Unit direction of the needle value: outputs of needle queries should align with it. */
  readonly valueDirection: Float32Array;
}

export interface Workload {
  readonly kind: WorkloadKind;
  readonly input: AttentionInput;
  readonly needle?: NeedleInfo;
  readonly seed: number;
}

/**
 * Builds a workload.
 *
 * - `gaussian`: q, k, v i.i.d. N(0, 1). Attention is diffuse: the hardest case for sparsity.
 * - `needle`: Gaussian distractors; one key (the needle) at `needleDepth` whose direction the last
 *   `needleQueries` queries share, giving it logit `needleLogit` against N(0, 1) distractor logits.
 *   The needle's value points along a known direction so retrieval can be checked on the output.
 * - `structured` ("LLM-like"): a latent AR(1) process drives keys and queries so nearby tokens
 *   score high (local decay); the first 4 tokens are attention sinks every query sees; 2% of the
 *   queries carry a retrieval spike toward one random earlier key. Mass is concentrated the way
 *   it is in trained LLM heads, so good selections reach high mass recall.
 */
export function createWorkload(kind: WorkloadKind, options: WorkloadOptions): Workload {
  const batch = options.batch ?? 1;
  const queryHeads = options.queryHeads ?? 8;
  const kvHeads = options.kvHeads ?? queryHeads;
  const seq = options.seqLength;
  const dim = options.headDim ?? 64;
  const valueDim = options.valueDim ?? dim;
  const seed = options.seed ?? 1;
  for (const [name, x] of [['batch', batch], ['queryHeads', queryHeads], ['kvHeads', kvHeads], ['seqLength', seq], ['headDim', dim], ['valueDim', valueDim]] as const) {
    if (!(Number.isInteger(x) && x > 0)) throw new ConfigError(`workload ${kind}: ${name} must be a positive integer, got ${x}`);
  }
  if (queryHeads % kvHeads !== 0) throw new ConfigError(`workload ${kind}: queryHeads ${queryHeads} is not a multiple of kvHeads ${kvHeads}`);
  const rng = new Rng(seed);
  const q = new Float32Array(batch * queryHeads * seq * dim);
  const k = new Float32Array(batch * kvHeads * seq * dim);
  const v = new Float32Array(batch * kvHeads * seq * valueDim);
  const shapes = {
    q: [batch, queryHeads, seq, dim],
    k: [batch, kvHeads, seq, dim],
    v: [batch, kvHeads, seq, valueDim],
  };
  const make = () => ({ q: tensor(shapes.q, q), k: tensor(shapes.k, k), v: tensor(shapes.v, v), causal: true });
  rng.fillNormal(v);
  if (kind === 'gaussian') {
    rng.fillNormal(q);
    rng.fillNormal(k);
    return { kind, input: make(), seed };
  }
  if (kind === 'needle') {
    rng.fillNormal(q);
    rng.fillNormal(k);
    const depth = options.needleDepth ?? 0.5;
    if (!(depth >= 0 && depth <= 1)) throw new ConfigError(`workload needle: needleDepth must be in [0, 1], got ${depth}`);
    const position = Math.min(seq - 1, Math.round(depth * (seq - 1)));
    const count = Math.max(1, Math.min(options.needleQueries ?? 16, seq - position));
    const queries = Array.from({ length: count }, (_, i) => seq - count + i);
    const logit = options.needleLogit ?? 16;
    const dir = rng.unitVector(dim);
    const valueDirection = rng.unitVector(valueDim);
    // q·k·scale = (sqrt(D)·u)·(logit·u)/sqrt(D) = logit; distractor logits are ~N(0, 1).
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < kvHeads; h++) {
        const ko = ((b * kvHeads + h) * seq + position) * dim;
        for (let c = 0; c < dim; c++) k[ko + c] = logit * dir[c]!;
        const vo = ((b * kvHeads + h) * seq + position) * valueDim;
        for (let c = 0; c < valueDim; c++) v[vo + c] = 8 * valueDirection[c]!;
      }
      for (let h = 0; h < queryHeads; h++) {
        for (const i of queries) {
          const qo = ((b * queryHeads + h) * seq + i) * dim;
          for (let c = 0; c < dim; c++) q[qo + c] = Math.sqrt(dim) * dir[c]! + 0.1 * rng.normal();
        }
      }
    }
    return { kind, input: make(), needle: { position, queries, valueDirection }, seed };
  }
  if (kind === 'structured') {
    fillStructured(rng, q, k, { batch, queryHeads, kvHeads, seq, dim });
    return { kind, input: make(), seed };
  }
  throw new ConfigError(`unknown workload '${String(kind)}'; expected gaussian, needle or structured`);
}

/**
 * Logits the structured workload's sinks score above each query's own diagonal logit: with 4
 * sinks this puts roughly 15–50% of a query's mass on them (median over queries, D = 16…128; 40% at D = 64).
 */
const SINK_BOOST = 1;

/** Removes from `x[at … at + dim)` its component along the unit vector `u`. */
function removeComponent(x: Float32Array, at: number, u: Float32Array, dim: number): void {
  let dot = 0;
  for (let c = 0; c < dim; c++) dot += x[at + c]! * u[c]!;
  for (let c = 0; c < dim; c++) x[at + c]! -= dot * u[c]!;
}

/**
 * The structured workload. Logit scale (q·k / sqrt(D)):
 * - local: queries are `temperature ×` the latent AR(1) state keys are drawn around, so the
 *   diagonal logit is ≈ temperature·sqrt(D) and decays as rho^Δ with distance Δ;
 * - sinks: each sink key carries `temperature·sqrt(D) · u` along a per-head sink direction u that
 *   is projected out of every other key and query, and each query carries just enough of u that
 *   a sink's logit is the query's own diagonal logit (≈ temperature·sqrt(D)) plus `SINK_BOOST`. With 4 sinks
 *   that gives them a large share of every query's mass (tens of percent, the "attention sink"
 *   of trained LLM heads, Xiao et al., arXiv:2309.17453), not the ≈ 3-logit trickle a weak sink
 *   direction gave;
 * - retrieval spikes: about 2% of queries are pulled toward one earlier key.
 */
function fillStructured(
  rng: Rng,
  q: Float32Array,
  k: Float32Array,
  s: { batch: number; queryHeads: number; kvHeads: number; seq: number; dim: number },
): void {
  const { batch, queryHeads, kvHeads, seq, dim } = s;
  const group = queryHeads / kvHeads;
  const rho = 0.995; // latent correlation between neighbours: decay length ~ 1/(1-rho) = 200 tokens
  const innovation = Math.sqrt(1 - rho * rho);
  const temperature = 2; // query gain: near-diagonal logits ≈ 2·sqrt(D)·rho^Δ, far logits ~ N(0, 4)
  const sinks = Math.min(4, seq);
  const rootDim = Math.sqrt(dim);
  const keySink = temperature * rootDim;
  const latent = new Float32Array(seq * dim);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < kvHeads; h++) {
      const sinkDir = rng.unitVector(dim);
      // Latent AR(1) path with unit per-channel variance.
      rng.fillNormal(latent.subarray(0, dim));
      for (let t = 1; t < seq; t++) {
        for (let c = 0; c < dim; c++) latent[t * dim + c] = rho * latent[(t - 1) * dim + c]! + innovation * rng.normal();
      }
      const kBase = (b * kvHeads + h) * seq * dim;
      for (let t = 0; t < seq; t++) {
        for (let c = 0; c < dim; c++) k[kBase + t * dim + c] = latent[t * dim + c]! + 0.3 * rng.normal();
        // With D = 1 the sink direction is the only direction: keep the content instead.
        if (dim > 1) removeComponent(k, kBase + t * dim, sinkDir, dim);
      }
      // Sinks: a damped copy of their content plus a large component along the sink direction.
      for (let t = 0; t < sinks; t++) {
        for (let c = 0; c < dim; c++) k[kBase + t * dim + c] = 0.3 * k[kBase + t * dim + c]! + keySink * sinkDir[c]!;
      }
      for (let g = 0; g < group; g++) {
        const qh = h * group + g;
        const qBase = (b * queryHeads + qh) * seq * dim;
        for (let t = 0; t < seq; t++) {
          const o = qBase + t * dim;
          for (let c = 0; c < dim; c++) q[o + c] = temperature * latent[t * dim + c]! + 0.3 * rng.normal();
          if (dim > 1) removeComponent(q, o, sinkDir, dim);
          // The sink logit tracks this query's own local logit q·latent_t/sqrt(D), so every query
          // gives the sinks a similar share (a fixed sink logit against local logits that vary by
          // ± several units would make the share all-or-nothing).
          let local = 0;
          for (let c = 0; c < dim; c++) local += q[o + c]! * latent[t * dim + c]!;
          const querySink = (Math.max(0, local) + SINK_BOOST * rootDim) / keySink;
          for (let c = 0; c < dim; c++) q[o + c]! += querySink * sinkDir[c]!;
          if (t > 64 && rng.next() < 0.02) {
            // Retrieval spike toward one random earlier key.
            const r = rng.int(t - 32);
            const ko = kBase + r * dim;
            let norm = 0;
            for (let c = 0; c < dim; c++) norm += k[ko + c]! * k[ko + c]!;
            const gain = (3 * rootDim) / Math.sqrt(norm);
            for (let c = 0; c < dim; c++) q[o + c] = 0.5 * q[o + c]! + gain * k[ko + c]!;
          }
        }
      }
    }
  }
}
