import { ConfigError, ShapeError, formatShape } from './errors.js';
import { assertFinite, dims4, type Dims4, type Tensor } from './tensor.js';

/**
 * The attention input contract shared by every method and backend.
 *
 * - `q` is `[batch, queryHeads, querySeq, headDim]`, `k` is `[batch, kvHeads, keySeq, headDim]`,
 *   `v` is `[batch, kvHeads, keySeq, valueDim]`.
 * - Grouped-query attention when `queryHeads` is a multiple of `kvHeads`: query head `h`
 *   reads KV head `floor(h / (queryHeads / kvHeads))`.
 * - Queries are aligned to the **end** of the keys: query `i` sits at absolute position
 *   `keySeq - querySeq + i`. Under `causal` it sees keys `0..keySeq - querySeq + i`. The same
 *   code thus serves prefill (`querySeq == keySeq`), chunked prefill and one-token decode.
 */
export interface AttentionInput {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  /** Mask keys after each query's position. Default `true` (decoder LLM attention). */
  readonly causal?: boolean;
  /** Softmax scale; default `1 / sqrt(headDim)`. */
  readonly scale?: number;
}

/** Validated dimensions of an attention call. */
export interface AttentionDims {
  readonly batch: number;
  readonly queryHeads: number;
  readonly kvHeads: number;
  /** Query heads per KV head (`queryHeads / kvHeads`). */
  readonly groupSize: number;
  readonly querySeq: number;
  readonly keySeq: number;
  readonly headDim: number;
  readonly valueDim: number;
  readonly causal: boolean;
  readonly scale: number;
  /** `keySeq - querySeq`: absolute position of query 0. */
  readonly queryOffset: number;
  readonly qDims: Dims4;
  readonly kDims: Dims4;
  readonly vDims: Dims4;
}

/** Options for {@link validateAttentionInput}. */
export interface ValidateOptions {
  /** Scan q, k and v for NaN/Infinity (O(n), on by default). */
  readonly checkFinite?: boolean;
  /** Allow `keySeq == 0` (an empty cache); off by default. */
  readonly allowEmpty?: boolean;
}

/**
 * Checks an attention input up front and returns its dimensions: rank, batch, head
 * divisibility, head dims, sequence lengths, scale, and (by default) NaN/Infinity.
 * Every method calls this first, so bad input fails here with a typed error naming
 * the tensor instead of deep inside a loop.
 */
export function validateAttentionInput(input: AttentionInput, options: ValidateOptions = {}): AttentionDims {
  const { q, k, v } = input;
  if (!q || !k || !v) throw new ShapeError('attention input needs q, k and v tensors');
  const qDims = dims4(q, 'q');
  const kDims = dims4(k, 'k');
  const vDims = dims4(v, 'v');
  if (kDims.batch !== qDims.batch || vDims.batch !== qDims.batch) {
    throw new ShapeError(`batch sizes differ: q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)}`);
  }
  if (kDims.heads !== vDims.heads) {
    throw new ShapeError(`k and v must have the same number of heads: k ${formatShape(k.shape)}, v ${formatShape(v.shape)}`);
  }
  if (kDims.seq !== vDims.seq) {
    throw new ShapeError(`k and v must have the same sequence length: k ${formatShape(k.shape)}, v ${formatShape(v.shape)}`);
  }
  if (kDims.heads === 0 || qDims.heads % kDims.heads !== 0) {
    throw new ShapeError(`query heads (${qDims.heads}) must be a positive multiple of kv heads (${kDims.heads}): q ${formatShape(q.shape)}, k ${formatShape(k.shape)}`);
  }
  if (qDims.dim !== kDims.dim) {
    throw new ShapeError(`q and k head dims differ: q ${formatShape(q.shape)}, k ${formatShape(k.shape)}`);
  }
  if (qDims.dim === 0 || vDims.dim === 0) throw new ShapeError(`head dims must be positive: q ${formatShape(q.shape)}, v ${formatShape(v.shape)}`);
  if (qDims.batch === 0) throw new ShapeError(`batch must be positive: q ${formatShape(q.shape)}`);
  if (qDims.seq === 0) throw new ShapeError(`empty query sequence: q ${formatShape(q.shape)}`);
  if (kDims.seq === 0 && !options.allowEmpty) throw new ShapeError(`empty key sequence: k ${formatShape(k.shape)}`);
  if (qDims.seq > kDims.seq) {
    throw new ShapeError(`more queries (${qDims.seq}) than keys (${kDims.seq}): queries are aligned to the end of the keys, so querySeq ≤ keySeq`);
  }
  const causal = input.causal ?? true;
  const scale = input.scale ?? 1 / Math.sqrt(qDims.dim);
  if (!Number.isFinite(scale) || scale <= 0) throw new ConfigError(`scale must be a positive finite number, got ${scale}`);
  if (options.checkFinite ?? true) {
    assertFinite(q, 'q');
    assertFinite(k, 'k');
    assertFinite(v, 'v');
  }
  return {
    batch: qDims.batch,
    queryHeads: qDims.heads,
    kvHeads: kDims.heads,
    groupSize: qDims.heads / kDims.heads,
    querySeq: qDims.seq,
    keySeq: kDims.seq,
    headDim: qDims.dim,
    valueDim: vDims.dim,
    causal,
    scale,
    queryOffset: kDims.seq - qDims.seq,
    qDims,
    kDims,
    vDims,
  };
}

/** Number of query–key pairs dense attention scores (causal-aware), summed over batch and query heads. */
export function densePairCount(d: Pick<AttentionDims, 'batch' | 'queryHeads' | 'querySeq' | 'keySeq' | 'causal'>): number {
  const perHead = d.causal
    ? // query i sees keySeq - querySeq + i + 1 keys
      d.querySeq * (d.keySeq - d.querySeq) + (d.querySeq * (d.querySeq + 1)) / 2
    : d.querySeq * d.keySeq;
  return perHead * d.batch * d.queryHeads;
}

/** Which implementation actually ran: recorded in every result (never guessed). */
export interface BackendInfo {
  /** The device family that ran: `cpu` or `gpu`. */
  readonly backend: 'cpu' | 'gpu';
  /** The kernel that ran, e.g. `wasm-simd`, `js-scalar`, `webgpu-wgsl`. */
  readonly kernel: string;
  /** Adapter or CPU description where known. */
  readonly device?: string;
  /** Why a requested backend or kernel was not used, if one was not. */
  readonly fallbackReason?: string;
}

/** Costs and sparsity of one attention call. */
export interface AttentionStats {
  /** Query–key pairs actually scored, summed over batch and query heads (causally masked pairs excluded). */
  readonly pairs: number;
  /** Pairs dense causal attention would score for the same call. */
  readonly densePairs: number;
  /** `pairs / densePairs`. */
  readonly density: number;
  /**
   * Bytes of K and V read from memory (float32), counting each KV row once per KV head per
   * query row that reads it — for decode, the KV bytes read per step.
   */
  readonly kvBytesRead: number;
  /** Milliseconds spent choosing keys (scoring, top-k, clustering). */
  readonly selectionMs: number;
  /** Milliseconds spent in the attention itself. */
  readonly attentionMs: number;
}

/** The result of one attention call (prefill or decode step). */
export interface AttentionResult {
  /** `[batch, queryHeads, querySeq, valueDim]`. */
  readonly output: Tensor;
  /** The keys each query attended to, when the method selects keys. */
  readonly selection?: import('./selection.js').Selection;
  readonly stats: AttentionStats;
  readonly backend: BackendInfo;
  /**
   * Method-specific figures the bench reports as extra columns (e.g. `annRecall`,
   * `indexerIoU`, `kmeansShare`, `scannedShare`). Numbers only, so they serialise as-is.
   */
  readonly diagnostics?: Readonly<Record<string, number>>;
}

/** Compute backend requested by a caller. */
export type BackendName = 'cpu' | 'gpu';
