/**
 * The draft model as a first-class object: greedy lookahead generation for SpecKV and the
 * attention readout SpecPC scores prompt tokens with, on core's model runtime. It owns one
 * reusable session whose KV cache is reset at the start of every call and can be released
 * explicitly (the llama.cpp speculative-prefill bug report was a draft cache never freed).
 */
import { ConfigError, ShapeError } from '@sparse-attn/core';
import type { LayerPolicy, LlamaModel, ModelSession } from '@sparse-attn/model';

/** How SpecPC reads the draft's attention (spec §3.1). */
export interface DraftObserveOptions {
  /** Last prompt queries that observe at prefill (W). */
  readonly window: number;
  /** First layer whose attention counts (layers below are skipped); clamped to the last layer. */
  readonly fromLayer: number;
  /** Weight window query `i` of `W` by `i / (W − 1)` (torch.linspace(0, 1, W)); off = 1 for all. */
  readonly weighted: boolean;
  /** Reduction over heads, queries, layers and steps (`mean` is implemented as `sum`, as in the reference: same top-k). */
  readonly reduction: 'max' | 'mean';
}

/** What {@link DraftModel.observe} returns. */
export interface DraftObservation {
  /** Importance of every prompt token `[N]`. */
  readonly scores: Float32Array;
  /** The draft's greedy continuation (the lookahead). */
  readonly tokens: Int32Array;
  /** Wall time of the draft run, ms. */
  readonly draftMs: number;
}

/** A (small) model that shares the target's vocabulary and drafts for it. */
export class DraftModel {
  readonly model: LlamaModel;
  private session: ModelSession | undefined;

  constructor(model: LlamaModel) {
    this.model = model;
  }

  /** Throws a `ConfigError` unless `target` has the draft's vocabulary size (token ids must mean the same). */
  checkPairedWith(target: LlamaModel): void {
    if (target.dims.vocab !== this.model.dims.vocab) {
      throw new ConfigError(`draft and target must share the vocabulary: draft has ${this.model.dims.vocab} tokens, target ${target.dims.vocab}`);
    }
  }

  /** Greedy continuation of `prompt` by `count` tokens (fresh cache). */
  generate(prompt: ArrayLike<number>, count: number): { tokens: Int32Array; draftMs: number } {
    if (prompt.length === 0) throw new ShapeError('draft.generate: the prompt is empty');
    const started = performance.now();
    const session = this.freshSession();
    const { tokens } = session.generate(prompt, count);
    return { tokens, draftMs: performance.now() - started };
  }

  /**
   * SpecPC's readout: prefill `prompt` capturing the last `window` queries of every layer ≥
   * `fromLayer`, then generate `count` tokens greedily, capturing each decode step's query; every
   * captured probability (window rows weighted) is reduced into one score per prompt token.
   * Like HF `generate`, the last generated token is never forwarded: `count = 1` is one pass.
   */
  observe(prompt: ArrayLike<number>, count: number, options: DraftObserveOptions): DraftObservation {
    const n = prompt.length;
    if (n === 0) throw new ShapeError('draft.observe: the prompt is empty');
    if (!(Number.isInteger(count) && count >= 1)) throw new ConfigError(`draft.observe: lookahead must be a positive integer, got ${count}`);
    if (!(Number.isInteger(options.window) && options.window >= 1)) throw new ConfigError(`draft.observe: window must be a positive integer, got ${options.window}`);
    if (options.window > n) throw new ConfigError(`draft.observe: window ${options.window} is longer than the prompt (${n} tokens)`);
    const started = performance.now();
    const fromLayer = Math.min(Math.max(0, options.fromLayer), this.model.dims.layers - 1);
    const windowQueries = Array.from({ length: options.window }, (_, i) => n - options.window + i);
    const useMax = options.reduction === 'max';
    const scores = new Float64Array(n).fill(useMax ? -Infinity : 0);
    const policy: LayerPolicy = {
      planLayer: ({ layer, step }) => {
        if (layer < fromLayer) return undefined;
        return { kind: 'method', capture: { queries: step.phase === 'prefill' ? windowQueries : 'last' } };
      },
      afterAttention: (_context, record) => {
        const s = record.scores;
        if (!s) return;
        const rows = s.queries.length;
        for (let h = 0; h < s.queryHeads; h++) {
          for (let r = 0; r < rows; r++) {
            const weight = rows > 1 && options.weighted ? r / (rows - 1) : 1;
            const base = (h * rows + r) * s.keySeq;
            const end = Math.min(n, s.keySeq);
            for (let j = 0; j < end; j++) {
              const p = s.probabilities[base + j]! * weight;
              if (useMax) {
                if (p > scores[j]!) scores[j] = p;
              } else {
                scores[j]! += p;
              }
            }
          }
        }
      },
    };
    const session = this.freshSession(policy);
    const { tokens } = session.generate(prompt, count);
    return { scores: Float32Array.from(scores, (x) => (x === -Infinity ? 0 : x)), tokens, draftMs: performance.now() - started };
  }

  /** Bytes of K/V the draft's cache holds now (auxiliary memory of the draft-based methods). */
  get kvBytes(): number {
    const d = this.model.dims;
    return (this.session?.layers ?? []).reduce((a, l) => a + l.cache.length * d.kvHeads * d.headDim * 2 * 4, 0);
  }

  /** Empties the draft's KV cache (keeps the allocation for the next call). */
  reset(): void {
    this.session?.reset();
  }

  /** Drops the draft's session and its KV buffers entirely. */
  release(): void {
    this.session = undefined;
  }

  private freshSession(policy?: LayerPolicy): ModelSession {
    // A policy is bound at session creation, so observation runs get their own session.
    if (policy) {
      this.session = this.model.createSession({ policy });
      return this.session;
    }
    this.session ??= this.model.createSession();
    this.session.reset();
    return this.session;
  }
}
