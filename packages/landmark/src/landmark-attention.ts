import { z } from 'zod';
import { defineMethod, type DecoderShape } from '@sparse-attn/core';
import { createCachedDecoder, type CachedDecoder } from './cached-decoder.js';
import { landmarkGroupedAttention } from './grouped-softmax-attention.js';
import { blockBudgets } from './budget-sweep.js';

/** Config of the paper's Landmark Attention. */
export const landmarkConfigSchema = z
  .object({
    blockLength: z
      .number()
      .int()
      .min(1)
      .default(50)
      .describe('Ordinary tokens per block, ℓ (`mem_freq`); the input carries a landmark token after every ℓ tokens, so a block spans ℓ+1 positions.'),
    topK: z
      .number()
      .int()
      .min(0)
      .default(4)
      .describe('Earlier blocks retrieved per query and head by landmark score (`cache_top_k`); 0 reads every earlier block (the training-time grouped softmax).'),
  })
  .strict();

/** Resolved config of {@link landmarkMethod}. */
export type LandmarkConfig = z.output<typeof landmarkConfigSchema>;

/**
 * Landmark Attention as the paper defines it: the input sequence carries a (trained) landmark
 * token after every ℓ ordinary tokens; each query reads its own block directly and earlier blocks
 * only through their landmark keys with the grouped softmax, optionally retrieving only the top-k
 * blocks per query and head (retrieval inference). Prefill, chunked prefill and token decode run
 * the same function over the cache, so decode equals prefill.
 *
 * Needs a model trained with landmark tokens: on untrained keys (every bench workload: its
 * landmark slots hold ordinary tokens' keys) the landmark scores are random gates, so the output
 * is not an approximation of dense attention (relative error ≈ 1–2 however many blocks it
 * reads) and a needle's value never dominates — the grouped softmax itself is exact (tested
 * against a float64 implementation of the spec). It reports the blocks each query read as a
 * block selection (blocks of ℓ+1 positions, per query head), flagged `selectionWeighting:
 * 'grouped'`: the weights are the grouped softmax, not one softmax over those keys.
 * Deviation: our attention contract receives q/k after positional encoding, so the reference's
 * RoPE slot remapping of retrieved blocks (§4.1 step 2/4) belongs to the caller.
 *
 * @see arXiv:2305.16300 §3.2 (grouped softmax), §4 (inference with retrieval)
 */
export const landmarkMethod = defineMethod({
  id: 'landmark',
  family: 'landmark',
  description: 'Landmark Attention (needs trained landmark tokens every ℓ tokens; on untrained inputs its gates are random and its error/needle figures measure cost only): grouped softmax over the current block and landmark-gated earlier blocks, top-k block retrieval per query and head.',
  paper: 'arXiv:2305.16300',
  configSchema: landmarkConfigSchema,
  budgets: (sequenceLength) => blockBudgets(sequenceLength, 51, { topK: 0 }),
  build: (config) => ({
    // The selection is the blocks each query read; its weights are the grouped softmax, not one softmax over them.
    capabilities: { causalConsistent: true, supportsNonCausal: false, selection: 'block', sharesSelectionAcrossGroup: false, selectionWeighting: 'grouped' },
    prefill: (input) => landmarkGroupedAttention(input, config),
    createDecoder(shape: DecoderShape): CachedDecoder {
      // Landmark keys are cache rows: nothing to summarise when tokens arrive.
      return createCachedDecoder(shape, {
        afterAppend() {},
        attend: (q, cache) => landmarkGroupedAttention({ q, k: cache.keys(), v: cache.values(), scale: shape.scale }, { ...config, checkFinite: false }),
        reset() {},
      });
    },
  }),
});
