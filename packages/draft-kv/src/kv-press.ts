/**
 * Model-level presses (kvpress's `BasePress` layout): a press says how each layer of a model
 * compresses its KV cache after the prefill and, for the continuous methods, how it evicts during
 * decode. {@link createPressPolicy} applies one to a model session; `generateWithPress` runs it.
 *
 * Every press keeps the kept entries' original RoPE positions (decode continues at `N + t`) and
 * records whether it is query-aware (the question is inside the observation window).
 */
import { z } from 'zod';
import { parseConfig } from '@sparse-attn/core';
import type { LayerCompression } from './compress-layer.js';
import type { EvictionPolicy } from './eviction-tracker.js';
import type { KvScorerName } from './kv-scorers.js';
import { pyramidBudgets, resolveCapacity, type KvBudget } from './select-kept-entries.js';

/** A model-level KV compression method. */
export interface KvPress {
  readonly id: string;
  /** The window's queries include the question, so the kept set depends on it (kvpress's `query_aware`). */
  readonly queryAware: boolean;
  /** RoPE positions of kept entries: always the originals here. */
  readonly positionMode: 'original';
  /** How layer `layer` of `layers` compresses a prefill that left `length` cache entries, `querySeq` of them new. */
  plan(layer: number, layers: number, length: number, querySeq: number): LayerCompression;
  /** Continuous eviction during decode for a prompt of `promptLength` tokens (H2O, StreamingLLM); the cache never exceeds its capacity. */
  decodeEviction?(promptLength: number): EvictionPolicy;
}

/** How the per-layer budgets are spread (kvpress wrappers). */
export type LayerBudgetMode = 'uniform' | 'pyramid';

/** Options of {@link scorerPress}: one scorer through the budget wrappers. */
export interface ScorerPressOptions extends KvBudget {
  readonly id?: string;
  readonly scorer: KvScorerName;
  readonly window: number;
  readonly kernel?: number;
  readonly pooling?: 'max' | 'avg' | 'none';
  readonly reduction?: 'max' | 'mean' | 'sum';
  /** `pyramid`: PyramidKV's linearly falling per-layer budgets (sum = layers · C). Default `uniform`. */
  readonly layerBudgets?: LayerBudgetMode;
  /** PyramidKV's β. Default 20. */
  readonly beta?: number;
  readonly sinks?: number;
  readonly seed?: number;
}

/**
 * Any scorer with any budget form: an absolute capacity or a keep ratio, uniform or pyramid
 * per-layer budgets — the press × wrapper grid of kvpress's tests.
 */
export function scorerPress(options: ScorerPressOptions): KvPress {
  const window = options.window;
  return {
    id: options.id ?? options.scorer,
    queryAware: options.scorer === 'observed-attention' || options.scorer === 'last-query' || options.scorer === 'accumulated-attention',
    positionMode: 'original',
    plan(layer, layers, length, querySeq) {
      const total = resolveCapacity(options, length, window);
      const capacity = options.layerBudgets === 'pyramid' ? pyramidBudgets(length, total, window, layers, options.beta ?? 20)[layer]! : total;
      const observerCount = Math.max(1, Math.min(querySeq, window));
      return {
        scorer: options.scorer,
        window,
        capacity,
        kernel: options.kernel ?? 1,
        pooling: options.pooling ?? 'none',
        reduction: options.reduction ?? 'mean',
        observers: Int32Array.from({ length: observerCount }, (_, i) => querySeq - observerCount + i),
        sinks: options.sinks,
        seed: options.seed,
      };
    },
  };
}

const budget = {
  capacity: z.number().int().min(1).default(1024).describe('Entries kept per KV head and layer, window included (C). Ignored when keepRatio is set.'),
  keepRatio: z.number().gt(0).max(1).nullable().default(null).describe('Share of the prompt kept per KV head, in (0, 1]; overrides capacity.'),
};

/** SnapKV press options (paper LongBench configs). */
export const snapKvPressSchema = z
  .object({
    ...budget,
    window: z.number().int().min(0).default(32).describe('Observation window w: the last prompt tokens, always kept.'),
    kernel: z.number().int().min(1).default(7).describe('Odd max-pool kernel.'),
    pooling: z.enum(['max', 'avg', 'none']).default('max').describe('Score smoothing.'),
  })
  .strict();

/** SnapKV on a model: each layer keeps its top `C − w` entries by window attention plus the window. @see arXiv:2404.14469 */
export function snapKvPress(config: z.input<typeof snapKvPressSchema> = {}): KvPress {
  const c = parseConfig('snapkv press', snapKvPressSchema, config);
  return scorerPress({ id: 'snapkv', scorer: 'observed-attention', ...c, reduction: 'mean' });
}

/** PyramidKV press options (kvpress defaults). */
export const pyramidKvPressSchema = z
  .object({
    ...budget,
    window: z.number().int().min(0).default(64).describe('Observation window w.'),
    kernel: z.number().int().min(1).default(5).describe('Odd avg-pool kernel.'),
    beta: z.number().gt(0).default(20).describe('Steepness β: the last layer keeps (C − w) / β older entries.'),
  })
  .strict();

/** PyramidKV on a model: SnapKV scoring, budgets falling with depth (sum = layers · C). @see arXiv:2406.02069 */
export function pyramidKvPress(config: z.input<typeof pyramidKvPressSchema> = {}): KvPress {
  const c = parseConfig('pyramidkv press', pyramidKvPressSchema, config);
  return scorerPress({ id: 'pyramidkv', scorer: 'observed-attention', ...c, pooling: 'avg', reduction: 'mean', layerBudgets: 'pyramid' });
}

/** H2O press options (reference: heavy and recent ratios 0.1 of the prompt each). */
export const h2oPressSchema = z
  .object({
    heavyRatio: z.number().min(0).max(1).default(0.1).describe('Heavy-hitter budget as a share of the prompt (heavy_ratio).'),
    recentRatio: z.number().gt(0).max(1).default(0.1).describe('Recent budget as a share of the prompt (recent_ratio).'),
    heavy: z.number().int().min(0).nullable().default(null).describe('Absolute heavy budget; overrides heavyRatio.'),
    recent: z.number().int().min(1).nullable().default(null).describe('Absolute recent budget; overrides recentRatio.'),
  })
  .strict();

/**
 * H2O on a model: after the prefill each layer keeps the entries with the largest attention
 * accumulated over every prompt query plus the most recent ones; every decode step then evicts
 * the lowest accumulated non-recent entry (accumulators keep growing with each step's attention).
 * @see arXiv:2306.14048
 */
export function h2oPress(config: z.input<typeof h2oPressSchema> = {}): KvPress {
  const c = parseConfig('h2o press', h2oPressSchema, config);
  const split = (length: number) => {
    const recent = Math.max(1, c.recent ?? Math.floor(length * c.recentRatio));
    const heavy = c.heavy ?? Math.floor(length * c.heavyRatio);
    return { recent, heavy };
  };
  return {
    id: 'h2o',
    queryAware: true,
    positionMode: 'original',
    plan(_layer, _layers, length) {
      const { recent, heavy } = split(length);
      return { scorer: 'accumulated-attention', window: recent, capacity: Math.min(length, heavy + recent), kernel: 1, pooling: 'none' };
    },
    decodeEviction(promptLength) {
      const { recent, heavy } = split(promptLength);
      return { rule: 'heavy-hitter', capacity: heavy + recent, recent, sinks: 0 };
    },
  };
}

/** StreamingLLM press options (`run_streaming_llama.py` defaults). */
export const streamingLlmPressSchema = z
  .object({
    sinks: z.number().int().min(0).default(4).describe('Attention sinks kept (start_size).'),
    recent: z.number().int().min(1).default(2000).describe('Recent tokens kept (recent_size).'),
  })
  .strict();

/**
 * StreamingLLM on a model: after the prefill keep the sinks and the last `recent` entries; each
 * decode step evicts the oldest non-sink entry so the cache stays at `sinks + recent`. Positions
 * stay original (kvpress pruning; the original re-rotates keys inside the cache).
 * @see arXiv:2309.17453
 */
export function streamingLlmPress(config: z.input<typeof streamingLlmPressSchema> = {}): KvPress {
  const c = parseConfig('streaming-llm press', streamingLlmPressSchema, config);
  return {
    id: 'streaming-llm',
    queryAware: false,
    positionMode: 'original',
    plan(_layer, _layers, length) {
      return { scorer: 'sink-recent', window: c.recent, capacity: Math.min(length, c.sinks + c.recent), kernel: 1, pooling: 'none', sinks: c.sinks };
    },
    decodeEviction() {
      return { rule: 'sink-recent', capacity: c.sinks + c.recent, recent: c.recent, sinks: c.sinks };
    },
  };
}

/** TOVA press: the last prompt query's attention (group mean); the last token kept. @see arXiv:2401.06104 */
export function tovaPress(budgetOptions: KvBudget = { capacity: 1024 }): KvPress {
  return scorerPress({ id: 'tova', scorer: 'last-query', window: 1, ...budgetOptions });
}

/** Key-norm press (kvpress KnormPress): keep the smallest-norm keys. */
export function keyNormPress(budgetOptions: KvBudget = { capacity: 1024 }): KvPress {
  return scorerPress({ id: 'key-norm', scorer: 'key-norm', window: 0, ...budgetOptions });
}

/** Random press: the floor. */
export function randomPress(budgetOptions: KvBudget & { seed?: number } = { capacity: 1024 }): KvPress {
  return scorerPress({ id: 'random', scorer: 'random', window: 0, ...budgetOptions });
}
