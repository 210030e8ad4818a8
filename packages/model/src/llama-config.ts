import { ConfigError } from '@sparse-attn/core';
import { z } from 'zod';

/**
 * The model configuration, field for field a Hugging Face `config.json` of a Llama / Qwen2 /
 * SmolLM-style decoder, so a real `config.json` parses as-is. Fields the runtime does not use
 * (`architectures`, `torch_dtype`, `bos_token_id`, …) are dropped on parse rather than rejected,
 * because every real checkpoint carries dozens of them; fields that would change the maths and
 * that we do not implement (`rope_scaling`, a non-default `rope_parameters.rope_type`, a non-SiLU
 * `hidden_act`, `mlp_bias`, sliding-window layers) are rejected with a `ConfigError` instead of
 * being silently ignored. Both the transformers 4 (`rope_theta`) and 5 (`rope_parameters`)
 * layouts of RoPE settings are read.
 */
export const llamaConfigSchema = z.object({
  model_type: z
    .enum(['llama', 'qwen2', 'mistral'])
    .default('llama')
    .describe(
      'HF model family: the layouts this runtime computes exactly (SmolLM checkpoints say `llama`). `qwen2` implies q/k/v biases when `attention_bias` is absent. Others (qwen3 q/k norms, gemma, phi, …) are refused rather than run with their extra tensors ignored.',
    ),
  sliding_window: z.number().int().positive().nullable().optional().describe('Mistral/Qwen2 window; for `mistral` it must be null (sliding-window attention is not implemented); Qwen2 uses it only with `use_sliding_window`.'),
  num_hidden_layers: z.number().int().positive().describe('Decoder layers.'),
  hidden_size: z.number().int().positive().describe('Width of the residual stream.'),
  num_attention_heads: z.number().int().positive().describe('Query heads per layer.'),
  num_key_value_heads: z.number().int().positive().optional().describe('KV heads per layer (GQA); defaults to `num_attention_heads` as in HF.'),
  head_dim: z.number().int().positive().optional().describe('Per-head width; defaults to `hidden_size / num_attention_heads` as in HF.'),
  intermediate_size: z.number().int().positive().describe('Width of the SwiGLU MLP.'),
  vocab_size: z.number().int().positive().describe('Token vocabulary size (rows of the embedding and LM head).'),
  rope_theta: z.number().positive().default(10000).describe('RoPE base θ: frequencies θ^(−2i/headDim).'),
  rms_norm_eps: z.number().positive().default(1e-6).describe('ε inside every RMSNorm.'),
  tie_word_embeddings: z.boolean().default(false).describe('LM head shares the token-embedding matrix (no `lm_head.weight` tensor).'),
  attention_bias: z.boolean().optional().describe('q/k/v (and for Llama o) projections carry biases; defaults to true for `qwen2`, false otherwise.'),
  hidden_act: z.enum(['silu', 'swish']).default('silu').describe('MLP activation; only SiLU (SwiGLU) is implemented.'),
  initializer_range: z.number().positive().default(0.02).describe('Standard deviation of the random-weight generator (HF `initializer_range`).'),
  max_position_embeddings: z.number().int().positive().default(131072).describe('Largest position the model accepts (RoPE tables grow on demand up to it).'),
  rope_scaling: z.null().optional().describe('Must be absent or null: RoPE scaling variants (llama3, yarn, …) are not implemented.'),
  rope_parameters: z
    .object({
      rope_type: z.literal('default').default('default').describe("Only 'default' RoPE is implemented (llama3, yarn, linear, dynamic scaling are rejected)."),
      rope_theta: z.number().positive().optional().describe('RoPE base θ; wins over a top-level `rope_theta` absent, must agree with one present.'),
    })
    .passthrough()
    .optional()
    .describe('transformers ≥ 5 writes RoPE settings here (`{ rope_type, rope_theta }`) instead of top-level `rope_theta` / `rope_scaling`.'),
  mlp_bias: z.literal(false).optional().describe('Llama `mlp_bias`: must be absent or false (MLP biases are not implemented).'),
  use_sliding_window: z.literal(false).optional().describe('Qwen2 sliding-window attention: must be absent or false (not implemented; every layer attends to its whole cache).'),
  layer_types: z.array(z.literal('full_attention')).optional().describe("transformers ≥ 5 per-layer attention kinds: every entry must be 'full_attention'."),
});

/** A config as written in `config.json` (optional fields may be missing). */
export type LlamaConfigInput = z.input<typeof llamaConfigSchema>;

/**
 * A validated config with every HF default resolved (`num_key_value_heads`, `head_dim`,
 * `attention_bias` are always present), so the runtime never re-derives them.
 */
export interface LlamaConfig
  extends Omit<z.output<typeof llamaConfigSchema>, 'num_key_value_heads' | 'head_dim' | 'attention_bias' | 'rope_scaling' | 'rope_parameters' | 'mlp_bias' | 'use_sliding_window' | 'sliding_window' | 'layer_types'> {
  readonly num_key_value_heads: number;
  readonly head_dim: number;
  readonly attention_bias: boolean;
}

/**
 * Parses and cross-checks a config (a parsed `config.json` or a literal). Throws one
 * `ConfigError` naming every bad field, or the inconsistency between fields (heads not a
 * multiple of KV heads, odd head dim, hidden size not divisible by the head count).
 */
export function parseLlamaConfig(input: unknown): LlamaConfig {
  const result = llamaConfigSchema.safeParse(withRopeTheta(input));
  if (!result.success) {
    const detail = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ConfigError(`model config: ${detail}`);
  }
  const c = result.data;
  const kvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % kvHeads !== 0) {
    throw new ConfigError(`model config: num_attention_heads (${c.num_attention_heads}) must be a multiple of num_key_value_heads (${kvHeads})`);
  }
  if (c.head_dim === undefined && c.hidden_size % c.num_attention_heads !== 0) {
    throw new ConfigError(`model config: hidden_size (${c.hidden_size}) must be divisible by num_attention_heads (${c.num_attention_heads}) when head_dim is not given`);
  }
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (headDim % 2 !== 0) throw new ConfigError(`model config: head_dim must be even for rotate-half RoPE, got ${headDim}`);
  if (c.model_type === 'mistral' && c.sliding_window !== undefined && c.sliding_window !== null) {
    throw new ConfigError(`model config: mistral sliding_window = ${c.sliding_window} is not implemented (sliding-window attention); only null is accepted`);
  }
  if (c.layer_types !== undefined && c.layer_types.length !== c.num_hidden_layers) {
    throw new ConfigError(`model config: layer_types lists ${c.layer_types.length} layers, num_hidden_layers is ${c.num_hidden_layers}`);
  }
  const { rope_scaling: _scaling, rope_parameters: _parameters, mlp_bias: _mlpBias, use_sliding_window: _sliding, sliding_window: _window, layer_types: _layerTypes, ...rest } = c;
  return {
    ...rest,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    attention_bias: c.attention_bias ?? c.model_type === 'qwen2',
  };
}

/**
 * Moves `rope_parameters.rope_theta` (transformers ≥ 5) to the top-level `rope_theta` the
 * runtime reads, so a v5 `config.json` gets its real θ instead of the 10000 default. A config
 * that states both with different values is a `ConfigError`.
 */
function withRopeTheta(input: unknown): unknown {
  if (input === null || input === undefined) return {};
  if (typeof input !== 'object') return input;
  const record = input as Record<string, unknown>;
  const parameters = record['rope_parameters'];
  if (parameters === null || typeof parameters !== 'object') return input;
  const theta = (parameters as Record<string, unknown>)['rope_theta'];
  if (theta === undefined) return input;
  const top = record['rope_theta'];
  if (top !== undefined && top !== theta) {
    throw new ConfigError(`model config: rope_theta (${String(top)}) disagrees with rope_parameters.rope_theta (${String(theta)})`);
  }
  return { ...record, rope_theta: theta };
}

/** The dimensions the runtime works with, spelled out once. */
export interface ModelDims {
  readonly layers: number;
  readonly hidden: number;
  readonly queryHeads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** `queryHeads * headDim`: width of q and of the attention output. */
  readonly queryWidth: number;
  /** `kvHeads * headDim`: width of k and v. */
  readonly kvWidth: number;
  readonly intermediate: number;
  readonly vocab: number;
}

/** Dimensions of a parsed config. */
export function modelDims(c: LlamaConfig): ModelDims {
  return {
    layers: c.num_hidden_layers,
    hidden: c.hidden_size,
    queryHeads: c.num_attention_heads,
    kvHeads: c.num_key_value_heads,
    headDim: c.head_dim,
    queryWidth: c.num_attention_heads * c.head_dim,
    kvWidth: c.num_key_value_heads * c.head_dim,
    intermediate: c.intermediate_size,
    vocab: c.vocab_size,
  };
}
