/**
 * Kernel: NSA's compression-branch scoring and top-n block selection (arXiv:2502.11089 Eq. 8–10,
 * spec §3.3 and the §3.7 pseudo-code, FLA semantics plus the paper's forced blocks).
 *
 *   visible windows  NC(t) = floor((t + 1 − l) / d) + 1   (window i = [i·d, i·d + l) ends at or before t)
 *   Eq. 8            p_t^{cmp,h} = softmax_i(scale · q_t^h · k̃_i),  i < NC(t)        (per query head h)
 *   Eq. 9 (overlap)  p_t^slc[j]  = Σ_{i : window i overlaps block j} p_t^cmp[i]    (= p^cmp when l = l' = d)
 *   Eq. 10 (GQA)     P_t[j]      = Σ_{h ∈ group} p_t^{slc,h}[j]
 *   forced           P_t[0] = P_t[IC] = P_t[IC − 1] = +∞   (IC = floor(t / l'); 1 initial + 2 local by default)
 *   selection        I_t = top-n_{j ≤ IC} P_t[j],  n' = min(n, IC + 1)
 *
 * Eq. 9 as printed does not coincide with the windows that spatially overlap block j (spec §3.3);
 * we sum the probabilities of exactly those windows, each counted once. The logits come from
 * {@link CompressedLogits} (a chunk of queries at a time): O(NC · G · D) per query and KV head,
 * i.e. block scoring, never token scoring. The scratch is sized once per call and reused.
 */
import { TopKSelector } from './select-top-k.js';

/** The block geometry of NSA (paper symbols in brackets). */
export interface NsaGeometry {
  /** Compression window length [l]. */
  readonly compressionBlock: number;
  /** Compression stride [d]. */
  readonly compressionStride: number;
  /** Selection block length [l′]. */
  readonly selectionBlock: number;
  /** Selected blocks per query and KV head, forced ones included [n]. */
  readonly selectedBlocks: number;
  /** Sliding window [w] (keys `t − w + 1 … t`). */
  readonly window: number;
  /** Always select the first block. */
  readonly forceInitial: boolean;
  /** Always select the current block and the `forceLocal − 1` blocks before it. */
  readonly forceLocal: number;
}

/** Compression windows visible to the query at absolute position `t` (complete and ending at or before t). */
export function visibleWindows(t: number, length: number, stride: number): number {
  return t + 1 >= length ? Math.floor((t + 1 - length) / stride) + 1 : 0;
}

/** Scores the compression branch and picks the top-n selection blocks for one query at a time. */
export class NsaBlockSelector {
  /** Selected block indices of the last {@link select} call, ascending. */
  readonly blocks: Int32Array;
  /** Selected blocks merged with the sliding window's blocks (last {@link unionWithWindow} call). */
  readonly merged: Int32Array;
  /** Group-summed compression probabilities of the last {@link scoreWindows} call (Eq. 8 + 10 over windows). */
  readonly windowProbabilities: Float64Array;
  private readonly g: NsaGeometry;
  private readonly groupSize: number;
  private readonly scores: Float64Array;
  private readonly importance: Float64Array;
  private readonly topK: TopKSelector;

  /** Sized for `keySeq` keys; one selector serves every query of a call. */
  constructor(geometry: NsaGeometry, groupSize: number, keySeq: number) {
    this.g = geometry;
    this.groupSize = groupSize;
    const windows = Math.max(1, visibleWindows(keySeq - 1, geometry.compressionBlock, geometry.compressionStride));
    const blocks = Math.max(1, Math.ceil(keySeq / geometry.selectionBlock));
    this.scores = new Float64Array(windows);
    this.windowProbabilities = new Float64Array(windows);
    this.importance = new Float64Array(blocks);
    this.blocks = new Int32Array(blocks);
    this.merged = new Int32Array(blocks);
    this.topK = new TopKSelector(blocks);
  }

  /**
   * Fills {@link windowProbabilities}`[0..nc)` with Σ_{h ∈ group} softmax_i(scale · logit_{h,i}) for
   * one query: its group's G logit rows start at row `firstRow` of `logits` (row stride `stride`),
   * as {@link CompressedLogits} lays them out. The softmax runs in float64.
   */
  scoreWindows(logits: Float32Array, firstRow: number, stride: number, nc: number, scale: number): void {
    const G = this.groupSize;
    const scores = this.scores;
    const probs = this.windowProbabilities;
    probs.fill(0, 0, nc);
    for (let g = 0; g < G; g++) {
      const base = (firstRow + g) * stride;
      let max = -Infinity;
      for (let i = 0; i < nc; i++) {
        const s = logits[base + i]! * scale;
        scores[i] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let i = 0; i < nc; i++) {
        const e = Math.exp(scores[i]! - max);
        scores[i] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let i = 0; i < nc; i++) probs[i]! += scores[i]! * inv;
    }
  }

  /**
   * Maps the last window probabilities (`nc` of them; 0 when no window is visible) onto selection
   * blocks 0..IC, forces the initial and local blocks and writes the top-n' blocks to
   * {@link blocks}. Returns how many were selected.
   */
  select(t: number, nc: number): number {
    const { compressionBlock: l, compressionStride: d, selectionBlock: lp } = this.g;
    const current = Math.floor(t / lp);
    const imp = this.importance;
    imp.fill(0, 0, current + 1);
    const probs = this.windowProbabilities;
    if (l === lp && d === lp) {
      for (let i = 0; i < nc; i++) imp[i]! += probs[i]!;
    } else {
      for (let i = 0; i < nc; i++) {
        const start = i * d;
        const last = Math.floor((start + l - 1) / lp);
        for (let j = Math.floor(start / lp); j <= last; j++) imp[j]! += probs[i]!;
      }
    }
    if (this.g.forceInitial) imp[0] = Infinity;
    for (let f = 0; f < this.g.forceLocal && current - f >= 0; f++) imp[current - f] = Infinity;
    return this.topK.select(imp, current + 1, Math.min(this.g.selectedBlocks, current + 1), this.blocks);
  }

  /**
   * Union of the first `count` selected blocks with the blocks the sliding window touches
   * (`floor((t − w + 1) / l′) … IC`), written to {@link merged}; returns its length. Used by the
   * `union` combination, whose selection is block-level, so the window is widened to whole
   * blocks (at most l′ − 1 extra keys).
   */
  unionWithWindow(t: number, count: number): number {
    const lp = this.g.selectionBlock;
    const current = Math.floor(t / lp);
    if (this.g.window <= 0) {
      this.merged.set(this.blocks.subarray(0, count));
      return count;
    }
    const first = Math.floor(Math.max(0, t - this.g.window + 1) / lp);
    let m = 0;
    for (let s = 0; s < count && this.blocks[s]! < first; s++) this.merged[m++] = this.blocks[s]!;
    for (let j = first; j <= current; j++) this.merged[m++] = j;
    return m;
  }
}
