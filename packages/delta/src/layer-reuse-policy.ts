/**
 * The model-level executor shared by DELTA, TidalDecode and HyLRA plans: a `LayerPolicy` for
 * `@sparse-attn/model` sessions that runs a {@link LayerPlan} during decode.
 *
 * Per decode step (one token, cache length N after the append):
 *
 * - prefill calls, and decode steps where the selector is not active (N fits the budget): dense
 *   attention in every layer, no selection state;
 * - `full` layers: core dense attention;
 * - `delta` layers: core dense attention; then the selector scores the new query against the
 *   layer's keys (reusing the dense attention's log-sum-exp) and builds a selection that
 *   replaces the previous one for the layers that name this layer as their source;
 * - `sparse` layers: core's exact `sparseAttention` over their own cache restricted to their
 *   source layer's selection of this step (the most recent keys when they have no source).
 *
 * Nothing is evicted: every layer keeps its full cache.
 */
import { ShapeError, type AttentionResult, type Selection, type Tensor } from '@sparse-attn/core';
import type { LayerContext, LayerDirective, LayerPolicy, LayerRecord, LayerSummary, StepInfo } from '@sparse-attn/model';
import { validateLayerPlan, type LayerPlan } from './layer-plan.js';

/** What a selector scores at a `delta` layer: the step's query against the layer's keys. */
export interface SelectionInput {
  /** The call's queries, post-RoPE, `[1, Hq, T, D]`; the last row (the decode query) is scored. */
  readonly q: Tensor;
  /** The layer's cache keys `[1, Hkv, N, D]` (a view). */
  readonly keys: Tensor;
  /** Softmax scale of the layer's attention. */
  readonly scale: number;
  /** The dense attention's log-sum-exp of the scored query per head (`[Hq]`), when it returned one. */
  readonly lse?: Float32Array;
}

/** How a layer-reuse method selects keys at its `delta` layers. */
export interface ReuseSelector {
  /** Method id, for reports. */
  readonly name: string;
  /** Whether a decode step over `keySeq` keys sparsifies its sparse layers (the budget is smaller than the cache). */
  isActive(keySeq: number): boolean;
  /** The selection a `delta` layer hands on, from its dense attention's query and keys. */
  fromLayer(input: SelectionInput): Selection;
  /** What a sparse layer with no source attends to. */
  placeholder(keySeq: number, kvHeads: number, queryHeads: number): Selection;
}

/** What one forward call did, layer by layer. */
export interface ReuseStepReport {
  /** The model's call index. */
  readonly step: number;
  readonly phase: StepInfo['phase'];
  /** Keys in each layer's cache after the call's append (layer 0's). */
  readonly keySeq: number;
  /** Whether sparse layers attended to a subset. */
  readonly active: boolean;
  /** Per layer: the selection it attended (sparse layers) or handed on (delta layers); undefined for dense attention. */
  readonly selections: readonly (Selection | undefined)[];
  /** Per layer: keys attended per query head, averaged over query heads. */
  readonly attendedKeys: readonly number[];
  /** Per layer: KV bytes read by its attention. */
  readonly kvBytesRead: readonly number[];
  /** Per layer: milliseconds from the layer's plan to the end of its attention (a Δ-layer's scoring is in `selectionMs`). */
  readonly attentionMs: readonly number[];
  /** Per layer: milliseconds the selector spent scoring and selecting (Δ-layers only). */
  readonly selectionMs: readonly number[];
  /** Per layer: the kernel that ran its attention, as `backend:kernel`. */
  readonly kernels: readonly string[];
}

/** A layer-reuse policy with its plan and the report of the last call. */
export interface LayerReusePolicy extends LayerPolicy {
  readonly plan: LayerPlan;
  readonly selector: ReuseSelector;
  /** The report of the most recent call, once one has finished. */
  readonly lastStep: ReuseStepReport | undefined;
  /** Called with each call's report (the bench accumulates them). */
  onStep?: (report: ReuseStepReport) => void;
}

/** The per-head log-sum-exp core's dense attention returns with its result (one decode query), if present. */
function denseLse(result: AttentionResult, queryHeads: number): Float32Array | undefined {
  const lse = (result as AttentionResult & { lse?: unknown }).lse;
  return lse instanceof Float32Array && lse.length === queryHeads ? lse : undefined;
}

/**
 * A policy running `plan` with `selector` for a model of `plan.roles.length` layers. One policy
 * per session: it keeps the current step's selections between layers. Scores use the softmax
 * scale `1/sqrt(headDim)` of the model runtime's attention.
 */
export function createLayerReusePolicy(plan: LayerPlan, selector: ReuseSelector): LayerReusePolicy {
  validateLayerPlan(plan);
  const layers = plan.roles.length;
  let active = false;
  let selections: (Selection | undefined)[] = [];
  let planned: number[] = [];
  let attentionMs: number[] = [];
  let selectionMs: number[] = [];
  let placeholder: Selection | undefined;
  let last: ReuseStepReport | undefined;
  const policy: LayerReusePolicy = {
    plan,
    selector,
    get lastStep() {
      return last;
    },
    beginStep(step: StepInfo) {
      if (step.layers !== layers) throw new ShapeError(`layer plan has ${layers} roles, the model has ${step.layers} layers`);
      active = step.phase === 'decode' && selector.isActive(step.cacheLengthBefore + 1);
      selections = new Array(layers).fill(undefined);
      planned = new Array(layers).fill(0);
      attentionMs = new Array(layers).fill(0);
      selectionMs = new Array(layers).fill(0);
      placeholder = undefined;
    },
    planLayer(context: LayerContext): LayerDirective {
      const l = context.layer;
      planned[l] = performance.now();
      const role = plan.roles[l]!;
      if (!active || role !== 'sparse') return { kind: 'dense' };
      const source = plan.sources[l]!;
      const keySeq = context.cache.length;
      let selection: Selection;
      if (source === -1) {
        placeholder ??= selector.placeholder(keySeq, context.k.shape[1]!, context.q.shape[1]!);
        selection = placeholder;
      } else {
        const chosen = selections[source];
        if (!chosen) throw new ShapeError(`layer ${l} reuses layer ${source}, which made no selection in this step`);
        selection = chosen;
      }
      if (selection.keySeq !== keySeq) {
        throw new ShapeError(`layer ${l} holds ${keySeq} keys but its source's selection refers to ${selection.keySeq}: layer-reuse methods need every layer's cache to hold the same tokens`);
      }
      selections[l] = selection;
      return { kind: 'selection', selection };
    },
    afterAttention(context: LayerContext, record: LayerRecord) {
      const l = context.layer;
      attentionMs[l] = performance.now() - planned[l]!;
      if (!active || plan.roles[l] !== 'delta') return;
      const started = performance.now();
      const q = context.q;
      const lse = denseLse(record.result, q.shape[1]!);
      selections[l] = selector.fromLayer({ q, keys: context.cache.keys(), scale: 1 / Math.sqrt(q.shape[3]!), ...(lse ? { lse } : {}) });
      selectionMs[l] = performance.now() - started;
    },
    endStep(step: StepInfo, trace: readonly LayerSummary[]) {
      const report: ReuseStepReport = {
        step: step.index,
        phase: step.phase,
        keySeq: trace[0]?.keySeq ?? 0,
        active,
        selections,
        attendedKeys: trace.map((t) => (step.tokens.length > 0 && t.stats.densePairs > 0 ? (t.stats.pairs / t.stats.densePairs) * t.keySeq : 0)),
        kvBytesRead: trace.map((t) => t.stats.kvBytesRead),
        attentionMs,
        selectionMs,
        kernels: trace.map((t) => `${t.backend.backend}:${t.backend.kernel}`),
      };
      last = report;
      policy.onStep?.(report);
    },
  };
  return policy;
}
