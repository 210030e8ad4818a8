import { ConfigError } from '@sparse-attn/core';
import { z } from 'zod';

/**
 * The model configuration, field for field a Hugging Face `config.json` of a Llama / Qwen2 /
 * SmolLM-style decoder, so a real `config.json` parses as-is. Fields the runtime does not use
 * (`architectures`, `torch_dtype`, `bos_token_id`, …) are dropped on parse rather than rejected,
 * because every real checkpoint carries dozens of them; fields that would change the maths and
 * that we do not implement (`rope_scaling`, a non-SiLU `hidden_act`) are rejected with a
 * `ConfigError` instead of being silently ignored.
 */
export const llamaConfigSchema = z.object({
  model_type: z.string().default('llama').describe('HF model family; `qwen2` implies q/k/v projection biases when `attention_bias` is absent.'),
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
});

/** A config as written in `config.json` (optional fields may be missing). */
export type LlamaConfigInput = z.input<typeof llamaConfigSchema>;

/**
 * A validated config with every HF default resolved (`num_key_value_heads`, `head_dim`,
 * `attention_bias` are always present), so the runtime never re-derives them.
 */
export interface LlamaConfig extends Omit<z.output<typeof llamaConfigSchema>, 'num_key_value_heads' | 'head_dim' | 'attention_bias' | 'rope_scaling'> {
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
  const result = llamaConfigSchema.safeParse(input ?? {});
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
  const { rope_scaling: _unused, ...rest } = c;
  return {
    ...rest,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    attention_bias: c.attention_bias ?? c.model_type === 'qwen2',
  };
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
