import { z } from 'zod';
import { denseAttention } from './dense-attention.js';
import { KVCache } from './kv-cache.js';
import { defineMethod, validateDecoderStep, type AttentionDecoder, type DecoderShape } from './method.js';
import { validateAttentionInput } from './attention.js';

/** Dense attention as a method: the baseline row of every benchmark. */
export const denseMethod = defineMethod({
  id: 'dense',
  family: 'core',
  description: 'Exact dense attention (fast CPU kernel); the baseline every sparse method is compared to.',
  configSchema: z.object({}).strict(),
  build: () => ({
    capabilities: { causalConsistent: true, supportsNonCausal: true, selection: 'none', sharesSelectionAcrossGroup: true },
    prefill: (input) => {
      validateAttentionInput(input);
      return denseAttention(input, { checkFinite: false });
    },
    createDecoder: (shape: DecoderShape): AttentionDecoder => {
      // Kernel memory: each step reads the cache in place instead of copying it in.
      const cache = new KVCache({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim: shape.valueDim ?? shape.headDim, storage: 'kernel' });
      return {
        get length() {
          return cache.length;
        },
        step(input) {
          validateDecoderStep(shape, input, cache.length);
          cache.append(input.k, input.v);
          return denseAttention({ q: input.q, k: cache.keys(), v: cache.values(), causal: true, scale: shape.scale }, { checkFinite: false });
        },
        reset: () => cache.reset(),
      };
    },
  }),
});
