import { Rng } from '@sparse-attn/core';
import { parseLlamaConfig, type LlamaConfig, type LlamaConfigInput } from './llama-config.js';
import { LlamaModel } from './llama-model.js';
import { weightsFromSpecs, type ModelWeights } from './model-weights.js';

/** Options of the random-weight generator. */
export interface RandomWeightsOptions {
  /** Seed of core's `Rng`: the same config and seed give bit-identical weights on any machine. */
  readonly seed?: number;
  /** Standard deviation of the normal init; default the config's `initializer_range` (HF: 0.02). */
  readonly std?: number;
}

/**
 * Seeded random weights for any config, initialised as HF `LlamaPreTrainedModel._init_weights`
 * does: linear and embedding weights ~ N(0, std²), RMSNorm gains 1, biases 0. Tensors are drawn
 * in the Hugging Face parameter order, so a weight depends only on the config and the seed.
 */
export function randomWeights(config: LlamaConfig | LlamaConfigInput, options: RandomWeightsOptions = {}): ModelWeights {
  const c = parseLlamaConfig(config);
  const rng = new Rng(options.seed ?? 0);
  const std = options.std ?? c.initializer_range;
  return weightsFromSpecs(c, (spec) => {
    const data = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
    if (spec.init === 'ones') data.fill(1);
    else if (spec.init === 'normal') rng.fillNormal(data, std);
    return data;
  });
}

/** A model with {@link randomWeights}: tests, benchmarks, and drafts of any size. */
export function createRandomModel(config: LlamaConfig | LlamaConfigInput, options: RandomWeightsOptions = {}): LlamaModel {
  return new LlamaModel(config, randomWeights(config, options));
}
