/**
 * Landmark Attention's RoPE slot layout at inference (spec landmark.md §4.1 steps 2 and 4, the
 * reference's `LlamaAttention.forward` with `mem_freq`): the cache keeps keys without RoPE, and
 * each call rotates them at positions that depend on how many blocks are cached, not on where
 * the blocks really are. For a query whose own block is preceded by `blocks` complete blocks of
 * span ℓ+1, with `k = min(topK, blocks)` retrieved blocks and
 * `prefix = blocks·(ℓ+1) − (k+1)·(ℓ+1)`:
 *
 * - landmark of block b, when scored: the `k` most recent blocks at `prefix + s·(ℓ+1) + ℓ`
 *   (s = 1..k, i.e. their true positions), every older block at slot 0's `prefix + ℓ`;
 * - retrieved block b in slot s (blocks sorted by index): its token j at
 *   `prefix + s·(ℓ+1) + j`, plus ℓ+1 when b is one of the `k` most recent blocks;
 * - the query's own block and the query itself: true positions.
 *
 * With `k = blocks` (every block retrieved) every position is the true one.
 */
import { ConfigError } from '@sparse-attn/core';

/** Blocks a query retrieves when `blocks` complete blocks precede its own: `min(topK, blocks)`; `topK` 0 reads every block. */
export function retrievedBlockCount(blocks: number, topK: number): number {
  return topK === 0 || blocks <= topK ? blocks : topK;
}

/** The reference's `prefix_len`: `blocks·(ℓ+1) − (retrieved+1)·(ℓ+1)` (−(ℓ+1) when every block is retrieved). */
function prefixLength(blocks: number, retrieved: number, blockLength: number): number {
  return (blocks - retrieved - 1) * (blockLength + 1);
}

/** Position at which block `block`'s landmark key is rotated to be scored (spec §4.1 step 2). */
export function landmarkScoringPosition(block: number, blocks: number, retrieved: number, blockLength: number): number {
  const recent = block - (blocks - retrieved); // ≥ 0 for the `retrieved` most recent blocks
  return prefixLength(blocks, retrieved, blockLength) + (recent >= 0 ? recent + 1 : 0) * (blockLength + 1) + blockLength;
}

/** Position of the first token of block `block` when retrieved into slot `slot` (spec §4.1 step 4). */
export function retrievedBlockStart(slot: number, block: number, blocks: number, retrieved: number, blockLength: number): number {
  const shift = block >= blocks - retrieved ? blockLength + 1 : 0;
  return prefixLength(blocks, retrieved, blockLength) + slot * (blockLength + 1) + shift;
}

/** Positions Landmark Attention's LLaMA path gives one query's keys; see {@link landmarkSlotPositions}. */
export interface LandmarkSlotPositions {
  /** Blocks retrieved, `min(topK, blocks)`. */
  readonly retrieved: number;
  /** Scoring position of every earlier block's landmark, by block index. */
  readonly landmarkScoring: readonly number[];
  /** For each retrieved block in text order: its index and the positions of its ℓ+1 keys (landmark last). */
  readonly retrievedBlocks: readonly { readonly block: number; readonly positions: readonly number[] }[];
}

/**
 * The positions a query preceded by `blocks` complete blocks gives the landmarks it scores and
 * the blocks it retrieved (`selected`, any order; sorted here as the reference sorts them).
 * The kernel computes the same numbers inline; this spells them out for tests and callers.
 */
export function landmarkSlotPositions(blocks: number, selected: readonly number[], options: { readonly blockLength: number; readonly topK: number }): LandmarkSlotPositions {
  const { blockLength, topK } = options;
  const retrieved = retrievedBlockCount(blocks, topK);
  const sorted = [...selected].sort((a, b) => a - b);
  if (sorted.length !== retrieved || sorted.some((b, i) => !(Number.isInteger(b) && b >= 0 && b < blocks && (i === 0 || b > sorted[i - 1]!)))) {
    throw new ConfigError(`landmarkSlotPositions: expected ${retrieved} distinct blocks in [0, ${blocks}), got [${selected.join(', ')}]`);
  }
  return {
    retrieved,
    landmarkScoring: Array.from({ length: blocks }, (_, b) => landmarkScoringPosition(b, blocks, retrieved, blockLength)),
    retrievedBlocks: sorted.map((block, slot) => {
      const start = retrievedBlockStart(slot, block, blocks, retrieved, blockLength);
      return { block, positions: Array.from({ length: blockLength + 1 }, (_, j) => start + j) };
    }),
  };
}
