import { ShapeError, denseMethod, formatShape, matmul, type AttentionMethod } from '@sparse-attn/core';
import type { ForwardResult } from './hooks.js';
import { modelDims, parseLlamaConfig, type LlamaConfig, type LlamaConfigInput, type ModelDims } from './llama-config.js';
import { ModelSession, linearOptions, type ForwardOptions, type GenerateOptions, type GenerationResult, type SessionOptions } from './model-session.js';
import { parameterCount, weightOf, weightSpecs, type ModelWeights } from './model-weights.js';
import { rmsNorm } from './rms-norm.js';
import { RotaryEmbedding } from './rotary-embedding.js';

/**
 * A float32 Llama-family decoder (Llama, Qwen2, SmolLM layouts): token embedding, per layer
 * RMSNorm → GQA attention with rotate-half RoPE → residual → RMSNorm → SwiGLU MLP → residual,
 * then a final RMSNorm and the LM head (tied or untied). Every matrix product runs through
 * core's `matmul`. The model holds only weights; per-sequence state (KV caches, attention
 * methods, hooks) lives in a {@link ModelSession}, so one model serves many sessions.
 */
export class LlamaModel {
  readonly config: LlamaConfig;
  readonly weights: ModelWeights;
  readonly dims: ModelDims;
  /** Softmax scale of every attention call: `head_dim^-0.5`, as in HF Llama. */
  readonly scale: number;
  /** Shared cos/sin tables (grown on demand). */
  readonly rope: RotaryEmbedding;

  /** Checks every weight against the config (a `ShapeError` names the first mis-sized tensor). */
  constructor(config: LlamaConfig | LlamaConfigInput, weights: ModelWeights) {
    this.config = parseLlamaConfig(config);
    this.dims = modelDims(this.config);
    if (weights.layers.length !== this.dims.layers) {
      throw new ShapeError(`model weights: ${weights.layers.length} layers, config num_hidden_layers is ${this.dims.layers}`);
    }
    for (const spec of weightSpecs(this.config)) {
      const data = weightOf(weights, spec);
      const expected = spec.shape.reduce((a, b) => a * b, 1);
      if (data.length !== expected) throw new ShapeError(`model weights: ${spec.name} must be ${formatShape(spec.shape)} (${expected} elements), has ${data.length}`);
    }
    this.weights = weights;
    this.scale = 1 / Math.sqrt(this.dims.headDim);
    this.rope = new RotaryEmbedding(this.dims.headDim, this.config.rope_theta, this.config.max_position_embeddings);
  }

  /** Parameters (tied embeddings counted once). */
  get parameterCount(): number {
    return parameterCount(this.config);
  }

  /** A fresh sequence: empty KV caches, positions from 0, the given attention methods and hooks. */
  createSession(options: SessionOptions = {}): ModelSession {
    return new ModelSession(this, options, defaultAttention);
  }

  /** One-shot prefill of `tokens` in a fresh session (logits of every token by default). */
  forward(tokens: ArrayLike<number>, options: ForwardOptions & SessionOptions = {}): ForwardResult {
    return this.createSession(options).forward(tokens, { logits: 'all', ...options });
  }

  /** Greedy generation in a fresh session. */
  generate(prompt: ArrayLike<number>, maxNewTokens: number, options: GenerateOptions & SessionOptions = {}): GenerationResult {
    return this.createSession(options).generate(prompt, maxNewTokens, options);
  }

  /**
   * Final RMSNorm and LM head for the last `rows` of the `count` rows of the residual stream
   * `x` (`[count, hidden]`): logits `[rows, vocab]`.
   */
  logitsOf(x: Float32Array, count: number, rows: number): Float32Array {
    const d = this.dims;
    if (rows === 0) return new Float32Array(0);
    const normed = new Float32Array(rows * d.hidden);
    rmsNorm(x, this.weights.norm, rows, d.hidden, this.config.rms_norm_eps, normed, (count - rows) * d.hidden, 0);
    return matmul(normed, this.weights.lmHead, rows, d.hidden, d.vocab, undefined, linearOptions(rows));
  }
}

function defaultAttention(): AttentionMethod {
  return denseMethod.create();
}
