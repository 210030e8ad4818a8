/**
 * SpecPC on a model pair (spec §3): the draft reads the prompt (its last `W` queries, linearly
 * weighted, in layers ≥ the starting layer, plus its lookahead tokens' queries); the per-token
 * scores are center-pooled; the tail window and each top token with its nearest neighbours are
 * kept up to `C`; the target then runs ordinary generation on the shorter prompt, at re-indexed
 * positions `0..C−1` (the reference) or at the kept tokens' original positions.
 */
import { z } from 'zod';
import { ConfigError, ShapeError, parseConfig } from '@sparse-attn/core';
import type { LlamaModel } from '@sparse-attn/model';
import type { DraftModel, DraftObservation } from './draft-model.js';
import { decodeTokens, denseKvBytes, sessionKvBytes, type CompressedRun, type DecodeOptions } from './press-policy.js';
import { selectPromptTokens } from './select-prompt-tokens.js';

/** SpecPC options; defaults from the reference (`SpecPCConfig`, paper configs). */
export const specPcConfigSchema = z
  .object({
    capacity: z.number().int().min(1).default(1024).describe('Prompt tokens kept (C; paper 1024 / 2048 / 3072).'),
    window: z.number().int().min(1).default(64).describe('Protected tail window, also the observing draft queries (W).'),
    kernel: z.number().int().min(1).default(32).describe('Center-pool kernel (32 for the Llama pair, 64 for Qwen).'),
    neighbors: z.number().int().min(0).nullable().default(null).describe('Neighbours kept with each top token (itself included); null = kernel.'),
    pooling: z.enum(['max', 'avg', 'none']).default('max').describe('Score pooling (pool_type).'),
    reduction: z.enum(['max', 'mean']).default('max').describe('Reduction over heads, queries, layers and steps (mean is a sum, as in the reference).'),
    lookahead: z.number().int().min(1).nullable().default(1).describe('Draft tokens generated (1 in the paper; null = max new tokens).'),
    startLayer: z.number().int().min(0).default(8).describe("First draft layer whose attention counts (paper 8); clamped to the draft's last layer."),
    weightedQueries: z.boolean().default(true).describe('Weight the window queries linearly from 0 (oldest) to 1 (last).'),
    positions: z.enum(['reindexed', 'original']).default('reindexed').describe('RoPE positions of the kept tokens in the target: re-indexed 0..C−1 (reference) or their original positions.'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.capacity < c.window) ctx.addIssue({ code: 'custom', path: ['capacity'], message: `capacity ${c.capacity} is smaller than the window ${c.window}` });
  });

/** SpecPC options as accepted. */
export type SpecPcConfigInput = z.input<typeof specPcConfigSchema>;
/** SpecPC options with defaults. */
export type SpecPcConfig = z.output<typeof specPcConfigSchema>;

/** The draft's choice of prompt tokens. */
export interface PromptCompression {
  /** Sorted indices of the kept prompt tokens. */
  readonly indices: Int32Array;
  /** The draft's observation (scores, generated tokens, time), absent when nothing needed compressing. */
  readonly observation?: DraftObservation;
  /** Selection time after the draft run, ms. */
  readonly selectMs: number;
}

/**
 * Chooses the prompt tokens SpecPC keeps. `force` runs the draft even when the prompt fits (SpecKV-PC
 * needs its lookahead).
 */
export function specPcCompress(draft: DraftModel, prompt: ArrayLike<number>, maxNewTokens: number, config: SpecPcConfigInput = {}, force = false): PromptCompression {
  const c = parseConfig('specpc', specPcConfigSchema, config);
  const n = prompt.length;
  if (n === 0) throw new ShapeError('specpc: the prompt is empty');
  if (n <= c.capacity && !force) return { indices: Int32Array.from({ length: n }, (_, i) => i), selectMs: 0 };
  const observation = draft.observe(prompt, c.lookahead ?? maxNewTokens, {
    window: Math.min(c.window, n),
    fromLayer: c.startLayer,
    weighted: c.weightedQueries,
    reduction: c.reduction,
  });
  const started = performance.now();
  const indices = selectPromptTokens(observation.scores, n, { capacity: c.capacity, window: Math.min(c.window, n), kernel: c.kernel, neighbors: c.neighbors, pooling: c.pooling });
  return { indices, observation, selectMs: performance.now() - started };
}

/** A SpecPC run. */
export interface SpecPcRun extends CompressedRun {
  /** Sorted indices of the prompt tokens the target saw. */
  readonly keptIndices: Int32Array;
}

/**
 * SpecPC: draft-scored prompt compression, then greedy target generation on the kept tokens.
 * Time to first token includes the draft run and the selection.
 *
 * @see arXiv:2506.08373 §3.2
 */
export function specPcGenerate(target: LlamaModel, draft: DraftModel, prompt: ArrayLike<number>, maxNewTokens: number, config: SpecPcConfigInput = {}, decode: DecodeOptions = {}): SpecPcRun {
  draft.checkPairedWith(target);
  const c = parseConfig('specpc', specPcConfigSchema, config);
  if (!(Number.isInteger(maxNewTokens) && maxNewTokens >= 1)) throw new ConfigError(`specpc: maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  const started = performance.now();
  const compression = specPcCompress(draft, prompt, maxNewTokens, c);
  const kept = Int32Array.from(compression.indices, (i) => prompt[i]!);
  const session = target.createSession();
  session.forward(kept, { positions: c.positions === 'original' ? compression.indices : undefined });
  const timeToFirstTokenMs = performance.now() - started;
  const generated = decodeTokens(session, maxNewTokens, decode);
  return {
    tokens: generated.tokens,
    session,
    keptPerLayer: session.layers.map(() => kept.length),
    kvBytes: sessionKvBytes(session),
    denseKvBytes: denseKvBytes(target, prompt.length + maxNewTokens - 1),
    timeToFirstTokenMs,
    decodeMs: generated.decodeMs,
    draftMs: compression.observation?.draftMs ?? 0,
    positionMode: c.positions === 'original' ? 'original' : 'reindexed',
    keptIndices: compression.indices,
  };
}
