/**
 * H2O and StreamingLLM as registrable attention methods: continuous eviction (see
 * {@link EvictionTracker}), each query attending its KV head's kept entries through core's
 * `sparseAttention` (a `headScope: 'kv'` selection, one row per query). The decoder keeps a real
 * KV cache of at most `capacity` entries per head; prefill simulates the same process, so decode
 * equals prefill.
 */
import { z } from 'zod';
import {
  ConfigError,
  SelectionBuilder,
  defineMethod,
  dims4,
  sparseAttention,
  validateAttentionInput,
  type AttentionInput,
  type AttentionResult,
  type DecoderShape,
  type MethodDefinition,
} from '@sparse-attn/core';
import { createEvictingDecoder, type EvictingDecoder } from './compressed-attention.js';
import { EvictionTracker, type EvictionPolicy } from './eviction-tracker.js';

/**
 * Runs the trackers (one per batch · KV head) over the call's queries in order and attends each
 * query over its head's kept entries. Trackers keep their state (the decoder's cache).
 */
function evictingAttention(input: AttentionInput, trackers: readonly EvictionTracker[], scale: number, willEvict = true): AttentionResult {
  const started = performance.now();
  const qd = dims4(input.q, 'q');
  const kd = dims4(input.k, 'k');
  const group = qd.heads / kd.heads;
  const builder = new SelectionBuilder({ kind: 'token', headScope: 'kv', batch: qd.batch, heads: kd.heads, rows: qd.seq, keySeq: kd.seq });
  for (let b = 0; b < qd.batch; b++) {
    for (let g = 0; g < kd.heads; g++) {
      const tracker = trackers[b * kd.heads + g]!;
      const heads = Array.from({ length: group }, (_, r) => g * group + r);
      for (let i = 0; i < qd.seq; i++) {
        tracker.admitUpTo(kd.seq - qd.seq + i + 1);
        builder.pushRow(tracker.slots);
        if (willEvict) tracker.accumulate(input.q.data, qd, b, heads, i, input.k.data, kd, g, scale);
      }
    }
  }
  const selection = builder.finish();
  const result = sparseAttention({ ...input, causal: true, scale }, selection, { checkFinite: false, validateSelection: false, selectionMs: performance.now() - started });
  return { output: result.output, selection, stats: result.stats, backend: result.backend, diagnostics: { keptPerHead: trackers[0]?.slots.length ?? 0 } };
}

function evictionMethod<S extends z.ZodType>(definition: { id: string; description: string; paper: string; schema: S; policy: (config: z.output<S>) => EvictionPolicy; budgets: MethodDefinition['budgets'] }): MethodDefinition<S> {
  return defineMethod({
    id: definition.id,
    family: 'draft-kv',
    description: definition.description,
    paper: definition.paper,
    configSchema: definition.schema,
    budgets: definition.budgets,
    build: (config) => {
      const policy = definition.policy(config);
      return {
        capabilities: { causalConsistent: true, supportsNonCausal: false, selection: 'token', sharesSelectionAcrossGroup: true },
        prefill(input) {
          const d = validateAttentionInput(input);
          if (!d.causal) throw new ConfigError(`${definition.id} evicts as tokens arrive: causal: false is not supported`);
          const trackers = Array.from({ length: d.batch * d.kvHeads }, () => new EvictionTracker(policy));
          // A prefill that fits the budget never evicts: skip the O(N·C·d) accumulation.
          return evictingAttention(input, trackers, d.scale, policy.capacity < d.keySeq);
        },
        createDecoder(shape: DecoderShape): EvictingDecoder {
          let trackers = Array.from({ length: shape.batch * shape.kvHeads }, () => new EvictionTracker(policy));
          return createEvictingDecoder(
            shape,
            (input, cache, scale) => {
              const result = evictingAttention({ q: input.q, k: cache.keys(), v: cache.values() }, trackers, scale);
              if (trackers[0]!.slots.length < cache.length) {
                cache.retain(trackers.map((t) => t.slots));
                for (const t of trackers) t.compacted();
              }
              return result;
            },
            () => {
              trackers = Array.from({ length: shape.batch * shape.kvHeads }, () => new EvictionTracker(policy));
            },
          );
        },
      };
    },
  });
}

const h2oSchema = z
  .object({
    heavy: z.number().int().min(0).default(128).describe('Heavy-hitter entries kept per KV head: the largest accumulated attention (H2O heavy budget).'),
    recent: z.number().int().min(1).default(128).describe('Most recent entries always kept per KV head (H2O recent budget).'),
  })
  .strict();

/**
 * H2O (heavy-hitter oracle): per KV head keep the `heavy` entries with the largest attention
 * accumulated over every query so far plus the `recent` newest, evicting as each token arrives.
 * The reference's defaults are ratios (0.1 + 0.1 of the prompt); this attention-level method takes
 * counts, the model-level press ({@link h2oPress}) takes either.
 *
 * @see arXiv:2306.14048
 */
export const h2oMethod = evictionMethod({
  id: 'h2o',
  description: 'H2O: keep heavy hitters (largest accumulated attention) plus the most recent tokens per KV head, evicting continuously.',
  paper: 'arXiv:2306.14048',
  schema: h2oSchema,
  policy: (c) => ({ rule: 'heavy-hitter', capacity: Math.max(1, c.heavy + c.recent), recent: c.recent, sinks: 0 }),
  budgets: (n) => {
    const points = [32, 64, 128, 256, 512, 1024].filter((h) => 2 * h < n).map((h) => ({ label: `C=${2 * h}`, config: { heavy: h, recent: h } }));
    return [...points, { label: `C=${n} (full)`, config: { heavy: 0, recent: Math.max(1, n) } }];
  },
});

const streamingSchema = z
  .object({
    sinks: z.number().int().min(0).default(4).describe('First tokens always kept: the attention sinks (start_size).'),
    recent: z.number().int().min(1).default(2000).describe('Most recent tokens kept (recent_size).'),
  })
  .strict();

/**
 * StreamingLLM: keep the first `sinks` tokens and the last `recent` (defaults 4 and 2000 from
 * `run_streaming_llama.py`), evicting the oldest non-sink entry as tokens arrive. Keys keep their
 * original RoPE positions (kvpress-style pruning, not the original's in-cache re-rotation).
 *
 * @see arXiv:2309.17453
 */
export const streamingLlmMethod = evictionMethod({
  id: 'streaming-llm',
  description: 'StreamingLLM: attention sinks (first tokens) plus a window of recent tokens; everything else evicted.',
  paper: 'arXiv:2309.17453',
  schema: streamingSchema,
  policy: (c) => ({ rule: 'sink-recent', capacity: c.sinks + c.recent, recent: c.recent, sinks: c.sinks }),
  budgets: (n) => {
    const points = [60, 124, 252, 508, 1020, 2044].filter((r) => r + 4 < n).map((r) => ({ label: `C=${r + 4}`, config: { sinks: 4, recent: r } }));
    return [...points, { label: `C=${n} (full)`, config: { sinks: 4, recent: Math.max(1, n) } }];
  },
});
