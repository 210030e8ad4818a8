/**
 * Tiny seeded target/draft pairs for tests and quick benchmarks: a 3-layer GQA target and a
 * 2-layer draft sharing a 128-token vocabulary (random weights: plumbing and invariants, not quality).
 */
import { createRandomModel, type LlamaConfigInput, type LlamaModel } from '@sparse-attn/model';
import { DraftModel } from './draft-model.js';

/** The tiny target's config. */
export const tinyTargetConfig: LlamaConfigInput = {
  num_hidden_layers: 3,
  hidden_size: 64,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 128,
  vocab_size: 128,
  tie_word_embeddings: true,
};

/** The tiny draft's config (same vocabulary). */
export const tinyDraftConfig: LlamaConfigInput = {
  num_hidden_layers: 2,
  hidden_size: 32,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  intermediate_size: 64,
  vocab_size: 128,
  tie_word_embeddings: true,
};

/** A seeded tiny target and draft. `std` 0.2 gives random models peaked enough attention for selection to matter. */
export function tinyPair(seed = 1, std = 0.2): { target: LlamaModel; draft: DraftModel } {
  return {
    target: createRandomModel(tinyTargetConfig, { seed, std }),
    draft: new DraftModel(createRandomModel(tinyDraftConfig, { seed: seed + 1000, std })),
  };
}

/** A seeded prompt of `length` tokens. */
export function tinyPrompt(length: number, seed = 7, vocab = 128): Int32Array {
  let s = seed >>> 0;
  return Int32Array.from({ length }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % vocab;
  });
}
