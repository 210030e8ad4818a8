/**
 * `@sparse-attn/model`: a small float32 Llama-style decoder runtime whose layers host any
 * `AttentionMethod` from core, with a layer-policy hook (DELTA, TidalDecode, HyLRA plans),
 * observers (per-layer q/k/v/outputs), editable per-layer KV caches (KV-dropping methods) and
 * explicit RoPE positions.
 */
import type { MethodDefinition } from '@sparse-attn/core';

export * from './llama-config.js';
export * from './model-weights.js';
export * from './random-weights.js';
export * from './rotary-embedding.js';
export * from './rms-norm.js';
export * from './layer-kv-cache.js';
export * from './hooks.js';
export * from './attention-scores.js';
export * from './model-session.js';
export * from './llama-model.js';
export * from './model-safetensors.js';
export * from './measure-ort-matmul.js';
export * from './benchmarks.js';

/**
 * Registrable attention methods of this package: none. The model runtime hosts the methods of
 * the other families (one per layer) rather than defining its own; the array exists so
 * apps/bench can treat every package alike.
 */
export const methods: readonly MethodDefinition[] = [];
