/**
 * Kernel: Landmark Attention's grouped softmax (arXiv:2305.16300 §3.2; spec landmark.md §3.2, §4).
 *
 * The sequence carries a landmark token after every ℓ ordinary tokens (block = ℓ+1 positions,
 * landmark in the last slot). For a query at position t in block c:
 *
 *   main  = softmax over { s_t,j : j in block c, j ≤ t, j not a landmark } ∪ { s_t,L_b : b ∈ R }
 *   w_t,j = main(j)                                                  j in block c
 *   w_t,j = main(L_b) · softmax_{j' ∈ block b \ L_b}(s_t,j')[j]       j in block b ∈ R
 *   o_t   = Σ_j w_t,j v_j                  (landmark values are never read: their weight is 0)
 *
 * R is every earlier block (training / full-context form) or the top-k earlier blocks by
 * s_t,L_b per query and head (retrieval inference, §4).
 *
 * How it is computed without a softmax loop of our own: o_t is a log-sum-exp merge of exact
 * partial attentions. The current block's partial (o_c, lse_c) comes from core's executor; each
 * retrieved block's partial o_b (its within-block softmax) also comes from the executor, and is
 * merged with weight e^{s_t,L_b} in place of its own lse: e^{lse_c} o_c + Σ_b e^{s_L_b} o_b over
 * e^{lse_c} + Σ_b e^{s_L_b} is exactly the closed form above. Empty groups carry lse = −∞ and
 * drop out of the merge, so they never produce NaN.
 *
 * Positions (`positions: 'slot'`, spec §4.1): q and k arrive before RoPE and every score is
 * s = rope(q, p_q) · rope(k, p_k) at the positions of `landmark-slot-positions.ts` (queries and
 * their own block at true positions, older landmarks scored at slot 0's position, retrieved
 * blocks at contiguous slot positions). Since rope(q, a) · rope(k, b) depends on b − a only, the
 * keys are rotated once at their true positions and a block moved by δ = slot − true position
 * is read with the query rotated at p_q − δ; older landmarks, which all share slot 0's position
 * X, are scored as rope(q, p_q − X) · k (unrotated). The gate of a retrieved block is its
 * landmark at the slot position, which differs from its scoring position for older blocks.
 */
import {
  ConfigError,
  SelectionBuilder,
  ShapeError,
  dims4,
  formatShape,
  mergeAttention,
  rowOffset,
  sparseAttention,
  sparseStats,
  tensor,
  validateAttentionInput,
  type AttentionDims,
  type AttentionInput,
  type AttentionResult,
  type Dims4,
  type Selection,
  type Tensor,
} from '@sparse-attn/core';
import { landmarkScoringPosition, retrievedBlockCount, retrievedBlockStart } from './landmark-slot-positions.js';
import type { RopeRotation } from './rope-rotation.js';
import { TopKScratch, topKIndices } from './top-k.js';

/** How {@link landmarkGroupedAttention} treats positions. */
export type LandmarkPositions = 'absolute' | 'slot';

/** Options of {@link landmarkGroupedAttention}. */
export interface LandmarkAttentionOptions {
  /** Ordinary tokens per block, ℓ (a landmark follows every ℓ tokens, so blocks span ℓ+1 positions). */
  readonly blockLength: number;
  /** Earlier blocks retrieved per query and head by landmark score; 0 reads every earlier block. */
  readonly topK: number;
  /** Skip the NaN/Infinity scan when the caller already validated the tensors. */
  readonly checkFinite?: boolean;
  /**
   * `absolute` (default): q and k already carry their positional encoding (or none), so every
   * key keeps the position it was encoded at. `slot`: q and k arrive before RoPE and the kernel
   * applies {@link rope} itself at the reference LLaMA path's positions (spec §4.1): retrieved
   * blocks at contiguous slot positions, older landmarks scored at slot 0's position, the
   * query's own block at true positions.
   */
  readonly positions?: LandmarkPositions;
  /** The RoPE to apply with `positions: 'slot'` (required there, unused otherwise). */
  readonly rope?: RopeRotation;
  /**
   * With `positions: 'slot'`: `k` already rotated at its true positions (same shape as `k`), as
   * a decoder keeps it incrementally so that a step does not rotate the whole cache again.
   * Computed from `k` when absent.
   */
  readonly rotatedKeys?: Tensor;
}

/** True when absolute position `position` holds a landmark token for block length ℓ. */
export function isLandmarkPosition(position: number, blockLength: number): boolean {
  return position % (blockLength + 1) === blockLength;
}

/**
 * Grouped-softmax Landmark Attention of the queries over keys that contain landmark tokens,
 * queries aligned to the end of the keys (prefill, chunked prefill and decode alike). Causal only.
 * Returns the output plus `diagnostics.meanRetrievedBlocks` (blocks read per query and head).
 */
export function landmarkGroupedAttention(input: AttentionInput, options: LandmarkAttentionOptions): AttentionResult {
  const d = validateAttentionInput(input, { checkFinite: options.checkFinite ?? true });
  const { blockLength, topK } = options;
  const positions = options.positions ?? 'absolute';
  if (!(Number.isInteger(blockLength) && blockLength >= 1)) throw new ConfigError(`landmark: blockLength must be a positive integer, got ${blockLength}`);
  if (!(Number.isInteger(topK) && topK >= 0)) throw new ConfigError(`landmark: topK must be a non-negative integer, got ${topK}`);
  if (!d.causal) throw new ConfigError('landmark: causal must be true (the grouped softmax is defined for causal attention), got false');
  if (positions !== 'absolute' && positions !== 'slot') throw new ConfigError(`landmark: positions must be 'absolute' or 'slot', got ${String(positions)}`);
  const slot = positions === 'slot' ? slotRotation(input, d, options) : undefined;
  const span = blockLength + 1;
  const { q, k } = input;
  const rows = d.batch * d.queryHeads * d.querySeq;
  const started = performance.now();

  // Landmark scores and the retrieved blocks of every (batch, query head, query), CSR by row.
  // With slot positions the gates are scored later, at the slot positions (blockScores unused).
  const blockOffsets = new Int32Array(rows + 1);
  let blockIds = new Int32Array(Math.max(16, rows * Math.max(1, topK)));
  let blockScores = new Float64Array(blockIds.length);
  let used = 0;
  let scores = new Float64Array(16);
  let candidates = new Int32Array(0);
  const picked = new Int32Array(Math.max(1, topK));
  const scratch = new TopKScratch(topK);
  const shiftedQuery = new Float32Array(d.headDim);
  let landmarksScored = 0;
  let maxSlots = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      const kvh = Math.floor(h / d.groupSize);
      for (let i = 0; i < d.querySeq; i++) {
        const row = (b * d.queryHeads + h) * d.querySeq + i;
        const blocks = Math.floor((d.queryOffset + i) / span); // earlier blocks, all complete
        if (scores.length < blocks) {
          scores = new Float64Array(2 * blocks);
          candidates = Int32Array.from({ length: 2 * blocks }, (_, x) => x);
        } else if (candidates.length < blocks) {
          candidates = Int32Array.from({ length: scores.length }, (_, x) => x);
        }
        const keep = retrievedBlockCount(blocks, topK);
        const qo = rowOffset(d.qDims, b, h, i);
        if (!slot) {
          for (let j = 0; j < blocks; j++) {
            const ko = rowOffset(d.kDims, b, kvh, j * span + blockLength);
            let s = 0;
            for (let c = 0; c < d.headDim; c++) s += q.data[qo + c]! * k.data[ko + c]!;
            scores[j] = s * d.scale;
          }
          landmarksScored += blocks;
        } else if (keep < blocks) {
          // Older landmarks share slot 0's position X: rope(q, p) · rope(L, X) = rope(q, p − X) · L.
          const older = blocks - keep;
          slot.rope.rotate(q.data, qo, shiftedQuery, 0, d.headDim, d.queryOffset + i - landmarkScoringPosition(0, blocks, keep, blockLength));
          for (let j = 0; j < older; j++) {
            const ko = rowOffset(d.kDims, b, kvh, j * span + blockLength);
            let s = 0;
            for (let c = 0; c < d.headDim; c++) s += shiftedQuery[c]! * k.data[ko + c]!;
            scores[j] = s * d.scale;
          }
          // The most recent landmarks are scored at their true positions.
          const to = row * d.headDim;
          for (let j = older; j < blocks; j++) {
            const ko = rowOffset(slot.kDims, b, kvh, j * span + blockLength);
            let s = 0;
            for (let c = 0; c < d.headDim; c++) s += slot.queries[to + c]! * slot.keys.data[ko + c]!;
            scores[j] = s * d.scale;
          }
          landmarksScored += blocks;
        }
        if (used + keep > blockIds.length) {
          const grownIds = new Int32Array(2 * (used + keep));
          grownIds.set(blockIds.subarray(0, used));
          blockIds = grownIds;
          const grownScores = new Float64Array(grownIds.length);
          grownScores.set(blockScores.subarray(0, used));
          blockScores = grownScores;
        }
        if (keep === blocks) {
          for (let j = 0; j < blocks; j++) blockIds[used + j] = j;
        } else {
          topKIndices(scores, candidates, blocks, keep, picked, scratch); // ascending block index: the slot order
          blockIds.set(picked.subarray(0, keep), used);
        }
        if (!slot) for (let j = 0; j < keep; j++) blockScores[used + j] = scores[blockIds[used + j]!]!;
        used += keep;
        blockOffsets[row + 1] = used;
        if (keep > maxSlots) maxSlots = keep;
      }
    }
  }
  const attended = attendedBlocks(d, span, blockOffsets, blockIds, maxSlots);
  const selectionMs = performance.now() - started;

  // The main group's own part: the current block's ordinary tokens up to the query.
  const currentLayout = { kind: 'token' as const, headScope: 'kv' as const, batch: d.batch, heads: d.kvHeads, rows: d.querySeq, keySeq: d.keySeq };
  const current = new SelectionBuilder(currentLayout, d.batch * d.kvHeads * d.querySeq * blockLength);
  for (let bh = 0; bh < d.batch * d.kvHeads; bh++) {
    for (let i = 0; i < d.querySeq; i++) {
      const p = d.queryOffset + i;
      const start = Math.floor(p / span) * span;
      current.pushRange(start, Math.min(p + 1, start + blockLength));
    }
  }
  const queryShape = [d.batch, d.queryHeads, d.querySeq, d.headDim];
  const rotated = slot ? { ...input, q: tensor(queryShape, slot.queries), k: slot.keys } : input;
  const base = sparseAttention(rotated, current.finish(), { checkFinite: false, validateSelection: false });
  let pairs = base.stats.pairs + landmarksScored;
  let merged = { output: base.output.data, lse: base.lse };

  // Each slot holds, per row, one retrieved block's within-block attention, weighted by its landmark score.
  const slotLayout = { kind: 'token' as const, headScope: 'query' as const, batch: d.batch, heads: d.queryHeads, rows: d.querySeq, keySeq: d.keySeq };
  const slotQueries = slot ? new Float32Array(rows * d.headDim) : undefined;
  for (let slotIndex = 0; slotIndex < maxSlots; slotIndex++) {
    const builder = new SelectionBuilder(slotLayout, rows * blockLength);
    const weights = new Float32Array(rows).fill(-Infinity);
    for (let row = 0; row < rows; row++) {
      const at = blockOffsets[row]! + slotIndex;
      if (at >= blockOffsets[row + 1]!) {
        builder.pushRange(0, 0);
        continue;
      }
      const block = blockIds[at]!;
      const start = block * span;
      builder.pushRange(start, start + blockLength);
      if (!slot || !slotQueries) {
        weights[row] = blockScores[at]!;
        continue;
      }
      // Read the block at its slot position: rotate the query back by the block's shift δ, and gate
      // it by its landmark at the slot position, rope(q, p) · rope(L, slot landmark position).
      const i = row % d.querySeq;
      const bh = (row - i) / d.querySeq;
      const p = d.queryOffset + i;
      const blocks = Math.floor(p / span);
      const shift = retrievedBlockStart(slotIndex, block, blocks, blockOffsets[row + 1]! - blockOffsets[row]!, blockLength) - start;
      slot.rope.rotate(q.data, rowOffset(d.qDims, Math.floor(bh / d.queryHeads), bh % d.queryHeads, i), slotQueries, row * d.headDim, d.headDim, p - shift);
      const ko = rowOffset(slot.kDims, Math.floor(bh / d.queryHeads), Math.floor((bh % d.queryHeads) / d.groupSize), start + blockLength);
      let s = 0;
      for (let c = 0; c < d.headDim; c++) s += slotQueries[row * d.headDim + c]! * slot.keys.data[ko + c]!;
      weights[row] = s * d.scale;
      landmarksScored++;
      pairs++;
    }
    const slotInput = slot && slotQueries ? { ...input, q: tensor(queryShape, slotQueries), k: slot.keys } : input;
    const part = sparseAttention(slotInput, builder.finish(), { checkFinite: false, validateSelection: false });
    pairs += part.stats.pairs;
    merged = mergeAttention(merged, { output: part.output.data, lse: weights }, d.valueDim);
  }
  const attentionMs = performance.now() - started - selectionMs;
  return {
    output: tensor([d.batch, d.queryHeads, d.querySeq, d.valueDim], merged.output),
    selection: attended,
    stats: sparseStats(d, pairs, false, selectionMs, attentionMs),
    backend: { ...base.backend, kernel: `${base.backend.kernel}+landmark-lse-merge${slot ? '+slot-rope' : ''}` },
    diagnostics: {
      meanRetrievedBlocks: rows === 0 ? 0 : used / rows,
      landmarksScored,
    },
  };
}

/** Rotated inputs of the slot-position path: queries at their true positions, keys at theirs. */
interface SlotRotation {
  readonly rope: RopeRotation;
  /** Queries rotated at their true positions, dense `[B, Hq, Tq, D]`. */
  readonly queries: Float32Array;
  /** Keys rotated at their true positions. */
  readonly keys: Tensor;
  readonly kDims: Dims4;
}

/** Validates the slot-position options and rotates the queries (and, unless given, the keys) at their true positions. */
function slotRotation(input: AttentionInput, d: AttentionDims, options: LandmarkAttentionOptions): SlotRotation {
  const rope = options.rope;
  if (!rope) throw new ConfigError("landmark: positions 'slot' needs RoPE settings (rope)");
  rope.widthFor(d.headDim);
  let keys = options.rotatedKeys;
  if (keys) {
    const shape = keys.shape;
    if (shape.length !== 4 || shape.some((x, axis) => x !== input.k.shape[axis])) {
      throw new ShapeError(`landmark: rotatedKeys must have k's shape ${formatShape(input.k.shape)}, got ${formatShape(shape)}`);
    }
  } else {
    const out = new Float32Array(d.batch * d.kvHeads * d.keySeq * d.headDim);
    for (let b = 0; b < d.batch; b++) {
      for (let h = 0; h < d.kvHeads; h++) {
        for (let t = 0; t < d.keySeq; t++) rope.rotate(input.k.data, rowOffset(d.kDims, b, h, t), out, ((b * d.kvHeads + h) * d.keySeq + t) * d.headDim, d.headDim, t);
      }
    }
    keys = tensor([d.batch, d.kvHeads, d.keySeq, d.headDim], out);
  }
  const queries = new Float32Array(d.batch * d.queryHeads * d.querySeq * d.headDim);
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      for (let i = 0; i < d.querySeq; i++) {
        rope.rotate(input.q.data, rowOffset(d.qDims, b, h, i), queries, ((b * d.queryHeads + h) * d.querySeq + i) * d.headDim, d.headDim, d.queryOffset + i);
      }
    }
  }
  return { rope, queries, keys, kDims: dims4(keys, 'rotatedKeys') };
}

/**
 * The blocks (of ℓ+1 positions) each query read, as a block selection per query head and query:
 * its retrieved blocks (ordinary tokens through the within-block softmax, the landmark key as
 * the block's gate; a landmark's value is never read) and its own block up to the query. The
 * weights are the grouped softmax, not one softmax over these keys (`selectionWeighting: 'grouped'`).
 */
function attendedBlocks(d: AttentionDims, span: number, blockOffsets: Int32Array, blockIds: Int32Array, maxSlots: number): Selection {
  const rows = d.batch * d.queryHeads * d.querySeq;
  const layout = { kind: 'block' as const, blockSize: span, headScope: 'query' as const, batch: d.batch, heads: d.queryHeads, rows: d.querySeq, queryBlockSize: 1, keySeq: d.keySeq };
  const builder = new SelectionBuilder(layout, blockOffsets[rows]! + rows);
  const row = new Int32Array(maxSlots + 1);
  for (let r = 0; r < rows; r++) {
    const from = blockOffsets[r]!;
    const count = blockOffsets[r + 1]! - from;
    row.set(blockIds.subarray(from, from + count));
    row.subarray(0, count).sort(); // retrieved blocks in text order; all precede the query's own block
    row[count] = Math.floor((d.queryOffset + (r % d.querySeq)) / span);
    builder.pushRow(row, count + 1);
  }
  return builder.finish();
}

/**
 * A copy of keys `[B, Hkv, T, D]` whose landmark slot in the block of `position` holds the key at
 * `position` (every KV head): the landmark key a trained model would give a block whose content
 * that key stands for. Untrained inputs have an ordinary token's key in the slot, so its gate is
 * random; tests and the benchmark use this to show the grouped softmax retrieves a block once its
 * landmark points at it.
 */
export function pointLandmarkAt(k: Tensor, position: number, blockLength: number): Tensor {
  const [batch, heads, seq, dim] = k.shape as [number, number, number, number];
  const landmark = Math.floor(position / (blockLength + 1)) * (blockLength + 1) + blockLength;
  if (isLandmarkPosition(position, blockLength) || landmark >= seq) throw new ConfigError(`pointLandmarkAt: position ${position} must be an ordinary token of a complete block (ℓ = ${blockLength}, ${seq} keys)`);
  const stride = k.seqCapacity ?? seq;
  const out = new Float32Array(batch * heads * seq * dim);
  for (let bh = 0; bh < batch * heads; bh++) {
    out.set(k.data.subarray(bh * stride * dim, (bh * stride + seq) * dim), bh * seq * dim);
    out.copyWithin((bh * seq + landmark) * dim, (bh * seq + position) * dim, (bh * seq + position + 1) * dim);
  }
  return tensor([batch, heads, seq, dim], out);
}

/**
 * Inserts a landmark row after every `blockLength` rows of a `[B, H, T, D]` tensor (the
 * reference's `auto_insert_landmarks`): `landmark` holds one `D`-vector per head (`[H·D]`).
 * A trailing incomplete block gets no landmark, as in generation.
 */
export function insertLandmarks(t: Tensor, landmark: Float32Array, blockLength: number): Tensor {
  const [batch, heads, seq, dim] = t.shape as [number, number, number, number];
  if (landmark.length !== heads * dim) throw new ConfigError(`insertLandmarks: landmark must hold heads × dim = ${heads * dim} values, got ${landmark.length}`);
  const outSeq = seq + Math.floor(seq / blockLength);
  const out = new Float32Array(batch * heads * outSeq * dim);
  const stride = t.seqCapacity ?? seq;
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      let at = 0;
      for (let s = 0; s < seq; s++) {
        const src = ((b * heads + h) * stride + s) * dim;
        out.set(t.data.subarray(src, src + dim), ((b * heads + h) * outSeq + at++) * dim);
        if ((s + 1) % blockLength === 0) out.set(landmark.subarray(h * dim, (h + 1) * dim), ((b * heads + h) * outSeq + at++) * dim);
      }
    }
  }
  return tensor([batch, heads, outSeq, dim], out);
}

/** Drops the rows at landmark positions of a `[B, H, T', D]` output (the reference's `get_final_logits`). */
export function removeLandmarkRows(t: Tensor, blockLength: number): Tensor {
  const [batch, heads, seq, dim] = t.shape as [number, number, number, number];
  let kept = 0;
  for (let s = 0; s < seq; s++) if (!isLandmarkPosition(s, blockLength)) kept++;
  const out = new Float32Array(batch * heads * kept * dim);
  const stride = t.seqCapacity ?? seq;
  for (let bh = 0; bh < batch * heads; bh++) {
    let at = 0;
    for (let s = 0; s < seq; s++) {
      if (isLandmarkPosition(s, blockLength)) continue;
      out.set(t.data.subarray((bh * stride + s) * dim, (bh * stride + s + 1) * dim), (bh * kept + at++) * dim);
    }
  }
  return tensor([batch, heads, kept, dim], out);
}
