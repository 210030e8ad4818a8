import { z } from 'zod';
import { ShapeError, defineMethod, dims4, rowOffset, type DecoderShape, type Tensor } from '@sparse-attn/core';
import { createCachedDecoder, type CachedDecoder } from './cached-decoder.js';
import { landmarkGroupedAttention, type LandmarkAttentionOptions } from './grouped-softmax-attention.js';
import { RopeRotation } from './rope-rotation.js';
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
    positions: z
      .enum(['absolute', 'slot'])
      .default('absolute')
      .describe(
        "'absolute': q/k arrive with their positional encoding applied, every key keeps its position. 'slot': q/k arrive before RoPE and the method applies RoPE as the reference LLaMA path does (spec §4.1): retrieved blocks at contiguous slot positions before the current block, older landmarks scored at slot 0's position, the current block at true positions.",
      ),
    ropeTheta: z.number().positive().finite().default(10000).describe("RoPE base θ (`rope_theta`; LLaMA 10000) for positions 'slot'."),
    rotaryDims: z
      .number()
      .int()
      .min(0)
      .refine((x) => x % 2 === 0, 'rotaryDims must be even (rotate-half pairs channel i with i + rotaryDims/2)')
      .nullable()
      .default(null)
      .describe("Leading channels of each head that RoPE rotates (partial rotary, rotate-half within them) for positions 'slot'; null rotates the whole head (Hugging Face Llama); 0 rotates none (no positional encoding)."),
  })
  .strict()
  .superRefine((config, context) => {
    if (config.positions === 'slot') return;
    for (const [key, fallback] of [['ropeTheta', 10000], ['rotaryDims', null]] as const) {
      if (config[key] !== fallback) context.addIssue({ code: 'custom', path: [key], message: `${key} applies only to positions 'slot' (positions is 'absolute': q/k already carry their encoding)` });
    }
  });

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
 * Positions: by default (`positions: 'absolute'`) q/k arrive already encoded and every key keeps
 * its position; with `positions: 'slot'` they arrive before RoPE and the method applies RoPE at
 * the reference LLaMA path's positions (spec §4.1 steps 2 and 4: retrieved blocks laid out at
 * contiguous slot positions, older landmarks scored at slot 0's position, the current block and
 * the query at true positions), per query as in a one-token decode step.
 *
 * @see arXiv:2305.16300 §3.2 (grouped softmax), §4 (inference with retrieval)
 */
export const landmarkMethod = defineMethod({
  id: 'landmark',
  family: 'landmark',
  description: 'Landmark Attention (needs trained landmark tokens every ℓ tokens; on untrained inputs its gates are random and its error/needle figures measure cost only): grouped softmax over the current block and landmark-gated earlier blocks, top-k block retrieval per query and head; positions \'slot\' takes pre-RoPE q/k and applies RoPE at the reference\'s slot positions of retrieved blocks.',
  paper: 'arXiv:2305.16300',
  configSchema: landmarkConfigSchema,
  budgets: (sequenceLength) => blockBudgets(sequenceLength, 51, { topK: 0 }),
  build: (config) => {
    const rope = config.positions === 'slot' ? new RopeRotation({ theta: config.ropeTheta, rotaryDims: config.rotaryDims }) : undefined;
    const options: LandmarkAttentionOptions = { blockLength: config.blockLength, topK: config.topK, positions: config.positions, ...(rope ? { rope } : {}) };
    return {
      // The selection is the blocks each query read; its weights are the grouped softmax, not one softmax over them.
      capabilities: { causalConsistent: true, supportsNonCausal: false, selection: 'block', sharesSelectionAcrossGroup: false, selectionWeighting: 'grouped' },
      prefill: (input) => landmarkGroupedAttention(input, options),
      createDecoder(shape: DecoderShape): CachedDecoder {
        // Landmark keys are cache rows; with slot positions the decoder also keeps the cache's keys
        // rotated at their true positions, so a step rotates only its new keys.
        const rotated = rope ? new RotatedKeyCache(rope, shape) : undefined;
        return createCachedDecoder(shape, {
          afterAppend(cache, previousLength) {
            rotated?.extend(cache.keys(), previousLength);
          },
          attend: (q, cache) =>
            landmarkGroupedAttention(
              { q, k: cache.keys(), v: cache.values(), scale: shape.scale },
              { ...options, checkFinite: false, ...(rotated ? { rotatedKeys: rotated.keys() } : {}) },
            ),
          reset() {
            rotated?.reset();
          },
        });
      },
    };
  },
});

/** A growable copy of a KV cache's keys rotated at their true positions (`[B, Hkv, T, D]` with spare capacity). */
class RotatedKeyCache {
  private readonly rope: RopeRotation;
  private readonly batch: number;
  private readonly kvHeads: number;
  private readonly headDim: number;
  private data = new Float32Array(0);
  private capacity = 0;
  private length = 0;

  constructor(rope: RopeRotation, shape: DecoderShape) {
    this.rope = rope;
    this.batch = shape.batch;
    this.kvHeads = shape.kvHeads;
    this.headDim = shape.headDim;
  }

  /** Rotates the cache's keys from `previousLength` on (the rows appended since the last call). */
  extend(keys: Tensor, previousLength: number): void {
    const d = dims4(keys, 'keys');
    if (previousLength !== this.length) throw new ShapeError(`landmark decoder: rotated keys hold ${this.length} rows, the cache grew from ${previousLength}`);
    if (d.seq > this.capacity) {
      const capacity = Math.max(d.seq, 2 * this.capacity, 64);
      const grown = new Float32Array(this.batch * this.kvHeads * capacity * this.headDim);
      for (let bh = 0; bh < this.batch * this.kvHeads; bh++) {
        grown.set(this.data.subarray(bh * this.capacity * this.headDim, (bh * this.capacity + this.length) * this.headDim), bh * capacity * this.headDim);
      }
      this.data = grown;
      this.capacity = capacity;
    }
    for (let b = 0; b < this.batch; b++) {
      for (let h = 0; h < this.kvHeads; h++) {
        const base = (b * this.kvHeads + h) * this.capacity;
        for (let t = previousLength; t < d.seq; t++) this.rope.rotate(keys.data, rowOffset(d, b, h, t), this.data, (base + t) * this.headDim, this.headDim, t);
      }
    }
    this.length = d.seq;
  }

  /** The rotated keys as a zero-copy view (valid until the next `extend`). */
  keys(): Tensor {
    return { data: this.data, shape: [this.batch, this.kvHeads, this.length, this.headDim], seqCapacity: this.capacity };
  }

  reset(): void {
    this.length = 0;
  }
}
