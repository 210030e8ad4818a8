import { FormatError, ShapeError, formatShape } from '@sparse-attn/core';
import { modelDims, type LlamaConfig } from './llama-config.js';

/**
 * One decoder layer's parameters, row-major float32 in the Hugging Face layout: a `Linear`
 * weight is `[out, in]` and is used as `y = x·Wᵀ` (core's `matmul` with `transposeB`), so
 * tensors read from safetensors are used without a transpose copy.
 */
export interface LayerWeights {
  /** `[hidden]`: RMSNorm gain before attention (`input_layernorm`). */
  readonly inputLayernorm: Float32Array;
  /** `[queryHeads·headDim, hidden]`. */
  readonly qProj: Float32Array;
  /** `[kvHeads·headDim, hidden]`. */
  readonly kProj: Float32Array;
  /** `[kvHeads·headDim, hidden]`. */
  readonly vProj: Float32Array;
  /** `[hidden, queryHeads·headDim]`. */
  readonly oProj: Float32Array;
  /** `[queryHeads·headDim]`, present when the config has `attention_bias`. */
  readonly qBias?: Float32Array;
  /** `[kvHeads·headDim]`, present when the config has `attention_bias`. */
  readonly kBias?: Float32Array;
  /** `[kvHeads·headDim]`, present when the config has `attention_bias`. */
  readonly vBias?: Float32Array;
  /** `[hidden]`: Llama's `attention_bias` also biases `o_proj`; Qwen2 does not. */
  readonly oBias?: Float32Array;
  /** `[hidden]`: RMSNorm gain before the MLP (`post_attention_layernorm`). */
  readonly postAttentionLayernorm: Float32Array;
  /** `[intermediate, hidden]`. */
  readonly gateProj: Float32Array;
  /** `[intermediate, hidden]`. */
  readonly upProj: Float32Array;
  /** `[hidden, intermediate]`. */
  readonly downProj: Float32Array;
}

/** Every parameter of a model. With tied embeddings `lmHead` is the same array as `embedTokens`. */
export interface ModelWeights {
  /** `[vocab, hidden]`. */
  readonly embedTokens: Float32Array;
  readonly layers: readonly LayerWeights[];
  /** `[hidden]`: final RMSNorm gain. */
  readonly norm: Float32Array;
  /** `[vocab, hidden]`. */
  readonly lmHead: Float32Array;
}

/** One named parameter: its Hugging Face name, shape, and where it lives in {@link ModelWeights}. */
export interface WeightSpec {
  /** Hugging Face parameter name, e.g. `model.layers.3.self_attn.q_proj.weight`. */
  readonly name: string;
  readonly shape: readonly number[];
  /** Layer index, or `undefined` for the embedding, final norm and LM head. */
  readonly layer?: number;
  /** Field of {@link LayerWeights} (for layer tensors) or of {@link ModelWeights}. */
  readonly field: keyof LayerWeights | 'embedTokens' | 'norm' | 'lmHead';
  /** What the random-weight generator fills it with: a normal init, or the RMSNorm gain 1. */
  readonly init: 'normal' | 'ones' | 'zeros';
}

const layerFields: readonly { suffix: string; field: keyof LayerWeights; init: WeightSpec['init']; shape: (d: ReturnType<typeof modelDims>) => number[] }[] = [
  { suffix: 'input_layernorm.weight', field: 'inputLayernorm', init: 'ones', shape: (d) => [d.hidden] },
  { suffix: 'self_attn.q_proj.weight', field: 'qProj', init: 'normal', shape: (d) => [d.queryWidth, d.hidden] },
  { suffix: 'self_attn.k_proj.weight', field: 'kProj', init: 'normal', shape: (d) => [d.kvWidth, d.hidden] },
  { suffix: 'self_attn.v_proj.weight', field: 'vProj', init: 'normal', shape: (d) => [d.kvWidth, d.hidden] },
  { suffix: 'self_attn.o_proj.weight', field: 'oProj', init: 'normal', shape: (d) => [d.hidden, d.queryWidth] },
  { suffix: 'post_attention_layernorm.weight', field: 'postAttentionLayernorm', init: 'ones', shape: (d) => [d.hidden] },
  { suffix: 'mlp.gate_proj.weight', field: 'gateProj', init: 'normal', shape: (d) => [d.intermediate, d.hidden] },
  { suffix: 'mlp.up_proj.weight', field: 'upProj', init: 'normal', shape: (d) => [d.intermediate, d.hidden] },
  { suffix: 'mlp.down_proj.weight', field: 'downProj', init: 'normal', shape: (d) => [d.hidden, d.intermediate] },
];

const biasFields: readonly { suffix: string; field: keyof LayerWeights; shape: (d: ReturnType<typeof modelDims>) => number[] }[] = [
  { suffix: 'self_attn.q_proj.bias', field: 'qBias', shape: (d) => [d.queryWidth] },
  { suffix: 'self_attn.k_proj.bias', field: 'kBias', shape: (d) => [d.kvWidth] },
  { suffix: 'self_attn.v_proj.bias', field: 'vBias', shape: (d) => [d.kvWidth] },
  { suffix: 'self_attn.o_proj.bias', field: 'oBias', shape: (d) => [d.hidden] },
];

/**
 * The parameter table of a config, in Hugging Face names and order (embedding, layers, final
 * norm, LM head unless tied). The loader, the saver, the random generator and the parameter
 * count all read this one table, so they cannot disagree about a name or a shape.
 */
export function weightSpecs(config: LlamaConfig): WeightSpec[] {
  const d = modelDims(config);
  const specs: WeightSpec[] = [{ name: 'model.embed_tokens.weight', shape: [d.vocab, d.hidden], field: 'embedTokens', init: 'normal' }];
  for (let layer = 0; layer < d.layers; layer++) {
    for (const f of layerFields) specs.push({ name: `model.layers.${layer}.${f.suffix}`, shape: f.shape(d), layer, field: f.field, init: f.init });
    if (config.attention_bias) {
      for (const f of biasFields) {
        // Qwen2 biases q, k and v only; Llama's attention_bias biases o_proj as well.
        if (f.field === 'oBias' && config.model_type === 'qwen2') continue;
        specs.push({ name: `model.layers.${layer}.${f.suffix}`, shape: f.shape(d), layer, field: f.field, init: 'zeros' });
      }
    }
  }
  specs.push({ name: 'model.norm.weight', shape: [d.hidden], field: 'norm', init: 'ones' });
  if (!config.tie_word_embeddings) specs.push({ name: 'lm_head.weight', shape: [d.vocab, d.hidden], field: 'lmHead', init: 'normal' });
  return specs;
}

/** Number of parameters a config describes (tied embeddings counted once). */
export function parameterCount(config: LlamaConfig): number {
  let n = 0;
  for (const s of weightSpecs(config)) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** A tensor as a weight source hands it over: float32 data and its shape. */
export interface NamedTensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

/**
 * Assembles {@link ModelWeights} from named tensors (`lookup(name)` returns the tensor or
 * `undefined`). Collects every problem before throwing: a `FormatError` lists all missing
 * tensors, a `ShapeError` every tensor whose shape differs from the config's, each with its
 * Hugging Face name, the expected and the actual shape.
 */
export function assembleWeights(config: LlamaConfig, lookup: (name: string) => NamedTensor | undefined): ModelWeights {
  const missing: string[] = [];
  const misshaped: string[] = [];
  const found = new Map<string, Float32Array>();
  for (const spec of weightSpecs(config)) {
    const t = lookup(spec.name);
    if (!t) {
      missing.push(`${spec.name} ${formatShape(spec.shape)}`);
      continue;
    }
    const expected = spec.shape.reduce((a, b) => a * b, 1);
    if (t.shape.length !== spec.shape.length || t.shape.some((x, i) => x !== spec.shape[i]) || t.data.length !== expected) {
      misshaped.push(`${spec.name}: expected ${formatShape(spec.shape)}, got ${formatShape(t.shape)} (${t.data.length} elements)`);
      continue;
    }
    found.set(spec.name, t.data);
  }
  if (missing.length > 0) throw new FormatError(`model weights: ${missing.length} tensor(s) missing: ${missing.join(', ')}`);
  if (misshaped.length > 0) throw new ShapeError(`model weights: ${misshaped.length} tensor(s) mis-shaped: ${misshaped.join('; ')}`);
  return weightsFromSpecs(config, (spec) => found.get(spec.name)!);
}

/** Builds {@link ModelWeights} by asking `data(spec)` for every tensor of the table. */
export function weightsFromSpecs(config: LlamaConfig, data: (spec: WeightSpec) => Float32Array): ModelWeights {
  const layers: Record<string, Float32Array>[] = Array.from({ length: config.num_hidden_layers }, () => ({}));
  const top: Record<string, Float32Array> = {};
  for (const spec of weightSpecs(config)) {
    const array = data(spec);
    if (spec.layer === undefined) top[spec.field] = array;
    else layers[spec.layer]![spec.field] = array;
  }
  const embedTokens = top['embedTokens']!;
  return {
    embedTokens,
    layers: layers as unknown as LayerWeights[],
    norm: top['norm']!,
    lmHead: config.tie_word_embeddings ? embedTokens : top['lmHead']!,
  };
}

/** The tensor of `spec` inside `weights` (the inverse of {@link weightsFromSpecs}). */
export function weightOf(weights: ModelWeights, spec: WeightSpec): Float32Array {
  const source = spec.layer === undefined ? (weights as unknown as Record<string, Float32Array>) : (weights.layers[spec.layer] as unknown as Record<string, Float32Array>);
  const array = source[spec.field];
  if (!array) throw new FormatError(`model weights: ${spec.name} is not set`);
  return array;
}
