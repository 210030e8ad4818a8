/**
 * SpecKV on a model pair (spec §2): the draft writes a greedy lookahead `y` (L tokens); the
 * target prefills `[x ‖ y]`; in every layer the last `w + 1` prompt queries and the `L` lookahead
 * queries score the older keys (softmax over all keys, max over the GQA group and the observers,
 * max-pooled), each KV head keeps its top `C − w` plus the `w + L + 1` window; the cache is then
 * cropped to its first `C` entries (dropping `x[N−1]` and the lookahead), `x[N−1]` is fed again at
 * position `N − 1` and decoding continues at the original positions `N, N + 1, …`.
 *
 * Optional sparse prefill (§2.3): the target's `[x ‖ y]` prefill attends, per KV head, the top
 * `Vpre` keys of the same scores plus a `Wpre`-token local band (64-query blocks), through core's
 * `sparseAttention`, instead of dense attention.
 */
import { z } from 'zod';
import { ConfigError, SelectionBuilder, ShapeError, parseConfig, type Selection } from '@sparse-attn/core';
import type { LayerPolicy, LlamaModel } from '@sparse-attn/model';
import type { DraftModel } from './draft-model.js';
import { scoreKeys } from './kv-scorers.js';
import { poolScores } from './pool-scores.js';
import { decodeTokens, denseKvBytes, sessionKvBytes, type CompressedRun, type DecodeOptions } from './press-policy.js';
import { selectKeptEntries, topIndices } from './select-kept-entries.js';

/** SpecKV options; defaults from the reference's paper configs (`cfg/paper/speckv/**`). */
export const specKvConfigSchema = z
  .object({
    capacity: z.number().int().min(1).default(1024).describe('KV entries kept per head and layer (C, max_capacity_prompt; paper sweeps 256 / 512 / 1024).'),
    window: z.number().int().min(0).default(32).describe('Last prompt tokens kept and observing (w; paper 32).'),
    kernel: z.number().int().min(1).refine((k) => k % 2 === 1, 'kernel must be odd (the reference asserts it)').default(7).describe('Pooling kernel (odd; paper 7).'),
    pooling: z.enum(['max', 'avg']).default('max').describe('Score pooling (pool_type).'),
    reduction: z.enum(['max', 'mean']).default('max').describe('Reduction over the GQA group and observers (reduction_type).'),
    lookahead: z.number().int().min(0).nullable().default(null).describe('Draft tokens generated as the lookahead (L); null = the whole answer length (max new tokens), the reference default.'),
    sparsePrefill: z.boolean().default(false).describe("Run the target's [prompt ‖ lookahead] prefill with vertical-slash sparse attention when it is longer than Vpre + Wpre."),
    prefillWindow: z.number().int().min(64).refine((x) => x % 64 === 0, 'prefillWindow must be a multiple of 64').default(2048).describe('Local band of the sparse prefill (Wpre, multiple of 64).'),
    prefillVertical: z.number().int().min(1).default(2048).describe('Top-scored keys every query attends in the sparse prefill (Vpre).'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.capacity < c.window) ctx.addIssue({ code: 'custom', path: ['capacity'], message: `capacity ${c.capacity} is smaller than the window ${c.window}` });
    if (c.capacity > c.prefillWindow + c.prefillVertical) ctx.addIssue({ code: 'custom', path: ['capacity'], message: `capacity ${c.capacity} exceeds prefillWindow + prefillVertical (asserted by the reference)` });
  });

/** SpecKV options as accepted (defaults optional). */
export type SpecKvConfigInput = z.input<typeof specKvConfigSchema>;
/** SpecKV options with defaults filled in. */
export type SpecKvConfig = z.output<typeof specKvConfigSchema>;

/** A SpecKV run: the compressed generation plus the draft's lookahead. */
export interface SpecKvRun extends CompressedRun {
  /** The lookahead tokens the target observed. */
  readonly lookahead: Int32Array;
  /** Whether the prompt was long enough to compress (N > C). */
  readonly compressed: boolean;
  /** Whether the vertical-slash sparse prefill ran. */
  readonly sparsePrefill: boolean;
}

/**
 * SpecKV: draft lookahead, target prefill on `[prompt ‖ lookahead]` with per-layer compression,
 * crop to `C`, greedy decoding at the original positions.
 *
 * @see arXiv:2506.08373 §3.1
 */
export function specKvGenerate(target: LlamaModel, draft: DraftModel, prompt: ArrayLike<number>, maxNewTokens: number, config: SpecKvConfigInput = {}, decode: DecodeOptions = {}): SpecKvRun {
  draft.checkPairedWith(target);
  const c = parseConfig('speckv', specKvConfigSchema, config);
  const lookahead = c.lookahead ?? maxNewTokens;
  const drafted = lookahead > 0 && prompt.length > c.capacity ? draft.generate(prompt, lookahead) : { tokens: new Int32Array(0), draftMs: 0 };
  return specKvFromLookahead(target, prompt, drafted.tokens, maxNewTokens, c, drafted.draftMs, decode);
}

/**
 * SpecKV's target side given a lookahead (the reference's `speckv_generate_from_lookahead_ids`;
 * SpecKV-PC reuses the draft output of SpecPC here). `config` is parsed again.
 */
export function specKvFromLookahead(target: LlamaModel, prompt: ArrayLike<number>, lookahead: ArrayLike<number>, maxNewTokens: number, config: SpecKvConfigInput = {}, draftMs = 0, decode: DecodeOptions = {}): SpecKvRun {
  const c = parseConfig('speckv', specKvConfigSchema, config);
  const n = prompt.length;
  if (n === 0) throw new ShapeError('speckv: the prompt is empty');
  if (!(Number.isInteger(maxNewTokens) && maxNewTokens >= 1)) throw new ConfigError(`speckv: maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  const x = Int32Array.from(prompt);
  const y = Int32Array.from(lookahead);
  const started = performance.now();
  if (n <= c.capacity) {
    // Nothing to compress: plain dense generation (the reference returns T.generate(x)).
    const session = target.createSession();
    session.forward(x);
    const ttft = performance.now() - started + draftMs;
    const generated = decodeTokens(session, maxNewTokens, decode);
    return run(session, generated.tokens, ttft, generated.decodeMs, false, false);
  }
  const L = y.length;
  const m = n + L;
  const windowLength = Math.min(m, c.window + L + 1);
  const capacity = c.capacity + L + 1;
  const observers = Int32Array.from({ length: windowLength }, (_, i) => m - windowLength + i);
  const sparse = c.sparsePrefill && m > c.prefillVertical + c.prefillWindow;
  const pooled: Float32Array[] = [];
  const scoresOf = (layer: number, q: import('@sparse-attn/core').Tensor, keys: import('@sparse-attn/core').Tensor): Float32Array => {
    const kvHeads = keys.shape[1]!;
    pooled[layer] ??= poolScores(
      scoreKeys('observed-attention', { q, k: keys, scale: target.scale, scoredKeys: m - windowLength, observers }, { reduction: c.reduction }),
      kvHeads,
      m - windowLength,
      c.kernel,
      c.pooling,
    );
    return pooled[layer]!;
  };
  const policy: LayerPolicy = {
    planLayer({ layer, step, q, cache }) {
      if (step.phase !== 'prefill' || !sparse) return undefined;
      const began = performance.now();
      const selection = verticalSlash(scoresOf(layer, q, cache.keys()), cache.kvHeads, m, m - windowLength, c.prefillVertical, c.prefillWindow);
      return { kind: 'selection', selection, selectionMs: performance.now() - began };
    },
    afterAttention({ layer, step, q, cache }) {
      if (step.phase !== 'prefill') return;
      const scores = scoresOf(layer, q, cache.keys());
      cache.retain(selectKeptEntries(scores, cache.kvHeads, m, windowLength, capacity));
    },
  };
  const session = target.createSession({ policy });
  session.forward(Int32Array.from([...x, ...y]), { logits: 'none' });
  const kept: number[] = [];
  for (const layer of session.layers) {
    layer.cache.crop(c.capacity);
    kept.push(layer.cache.length);
  }
  // Feed x[N−1] again at its original position; decoding then continues at N, N + 1, ….
  session.forward([x[n - 1]!], { positions: [n - 1], policy: {} });
  const ttft = performance.now() - started + draftMs;
  const generated = decodeTokens(session, maxNewTokens, decode);
  return { ...run(session, generated.tokens, ttft, generated.decodeMs, true, sparse), keptPerLayer: kept };

  function run(session: import('@sparse-attn/model').ModelSession, tokens: Int32Array, ttft: number, decodeMs: number, compressed: boolean, sparsePrefill: boolean): SpecKvRun {
    return {
      tokens,
      session,
      keptPerLayer: session.layers.map((l) => l.cache.length),
      kvBytes: sessionKvBytes(session),
      denseKvBytes: denseKvBytes(target, n + maxNewTokens - 1),
      timeToFirstTokenMs: ttft,
      decodeMs,
      draftMs,
      positionMode: 'original',
      lookahead: y,
      compressed,
      sparsePrefill,
    };
  }
}

/**
 * The vertical-slash prefill selection (`vertical_slash_sparse_attention_forward`): per KV head,
 * query block `r` (64 queries) attends the top `vertical` scored keys before its end plus the
 * band `[64r − window, 64r + 64)`.
 */
export function verticalSlash(scores: Float32Array, kvHeads: number, keySeq: number, scoredKeys: number, vertical: number, window: number): Selection {
  const block = 64;
  const rows = Math.ceil(keySeq / block);
  const builder = new SelectionBuilder({ kind: 'token', headScope: 'kv', batch: 1, heads: kvHeads, rows, queryBlockSize: block, keySeq }, kvHeads * rows * (vertical + window + block));
  const merged = new Int32Array(keySeq);
  for (let g = 0; g < kvHeads; g++) {
    const columns = topIndices(scores, g * scoredKeys, scoredKeys, vertical);
    for (let r = 0; r < rows; r++) {
      const end = Math.min(keySeq, (r + 1) * block);
      const bandStart = Math.max(0, r * block - window);
      let count = 0;
      for (const j of columns) {
        if (j >= bandStart) break;
        merged[count++] = j;
      }
      for (let j = bandStart; j < end; j++) merged[count++] = j;
      builder.pushRow(merged, count);
    }
  }
  return builder.finish();
}
