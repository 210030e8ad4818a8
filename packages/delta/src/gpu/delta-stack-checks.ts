/**
 * GPU checks of DELTA's layer-stack decode (`gpu-delta-stack.ts`) against the CPU: the
 * model-level policy (`createDeltaPolicy`, driven layer by layer as the model session drives it)
 * for batch 1, and for batch 2 the attention-level pieces the policy composes per sequence (core's
 * dense attention, DELTA's selector on the Δ-layer's query and keys with its lse, core's
 * `sparseAttention` over the source layer's pages). Every layer: same pages, output and lse
 * within 1e-4.
 */
import { ConfigError, ShapeError, createWorkload, denseAttention, sliceSeq, sparseAttention, tensor, type AttentionInput, type AttentionResult, type Selection, type Tensor } from '@sparse-attn/core';
import type { LayerContext, LayerRecord, LayerSummary, StepInfo } from '@sparse-attn/model';
import { GpuKVCache, expectKeyStrideHonoured, expectLseClose, expectOutputClose, type GpuBackend, type GpuCheck, type ResidentAttention } from '@sparse-attn/backend-gpu';
import { createDeltaPolicy, deltaSelector, type DeltaConfigInput } from '../delta.js';
import { layerPlanFromFullCacheLayers, type LayerPlan } from '../layer-plan.js';
import { pageSelection, recentPages } from '../select-pages.js';
import type { LayerReusePolicy } from '../layer-reuse-policy.js';
import { createGpuDeltaStack, deltaStackRows, runDeltaStackDecode } from './gpu-delta-stack.js';

type WithLse = AttentionResult & { lse?: Float32Array };

/** Throws unless the GPU page list equals every KV head's row of the CPU's (batch-1) selection. */
function expectSamePages(what: string, gpu: readonly Int32Array[] | undefined, cpu: Selection | undefined, batch = 0): void {
  if (!cpu) {
    if (gpu) throw new Error(`${what}: the GPU selected pages, the CPU ran dense`);
    return;
  }
  const list = gpu?.[batch];
  if (!list) throw new Error(`${what}: the CPU selected pages, the GPU none`);
  for (let row = 0; row + 1 < cpu.offsets.length; row++) {
    const expected = cpu.indices.subarray(cpu.offsets[row]!, cpu.offsets[row + 1]!);
    if (expected.length !== list.length || expected.some((p, i) => p !== list[i])) {
      throw new Error(`${what}: GPU pages [${Array.from(list).join(', ')}], CPU row ${row} [${Array.from(expected).join(', ')}]`);
    }
  }
}

/** Batch `b` of a compact `[B, H, T, D]` tensor, as a batch-1 tensor. */
function batchOf(t: Tensor, b: number): Tensor {
  const [batch, heads, seq, dim] = t.shape as [number, number, number, number];
  const size = heads * seq * dim;
  if (t.data.length !== batch * size) throw new ShapeError('batchOf: compact tensors only');
  return tensor([1, heads, seq, dim], t.data.subarray(b * size, (b + 1) * size));
}

/** Compares every layer's output and lse (read from its resident) with the CPU's, batch by batch. */
async function expectLayersClose(backend: GpuBackend, what: string, residents: readonly ResidentAttention[], cpu: readonly (readonly WithLse[])[]): Promise<void> {
  for (const [l, resident] of residents.entries()) {
    const { output, lse } = await backend.readOutput(resident);
    const batches = cpu[l]!;
    for (const [b, expected] of batches.entries()) {
      const gpu = { ...expected, output: batches.length === 1 ? output : batchOf(output, b) };
      expectOutputClose(`${what} layer ${l}${batches.length > 1 ? ` batch ${b}` : ''}`, gpu, expected);
      const per = lse.length / batches.length;
      expectLseClose(`${what} layer ${l}${batches.length > 1 ? ` batch ${b}` : ''}`, lse.subarray(b * per, (b + 1) * per), expected.lse!);
    }
  }
}

interface PolicyCase {
  readonly layers: number;
  readonly fullCacheLayers: readonly number[];
  /** A plan to run instead of the one `fullCacheLayers` gives (HyLRA-style: any earlier Δ-layer as a source). */
  readonly plan?: LayerPlan;
  readonly config: DeltaConfigInput;
  /** Tokens cached before the first decode step. */
  readonly context: number;
  readonly steps: number;
  /** `kv-cache`: each layer a `GpuKVCache` (its KV slots `capacity` rows apart, `keyStride`) appended step by step; `upload`: each step's call uploaded. */
  readonly source: 'kv-cache' | 'upload';
  readonly seed: number;
}

/**
 * Drives the CPU model-level policy through one decode step of a layer stack exactly as the model
 * session (and the trace stack's `runStackStep`) does: plan → core dense or sparse attention →
 * afterAttention, per layer. (The trace stack itself imports the model runtime, whose Node-only
 * optional dependency cannot enter the browser bundle; this is the same call sequence.)
 */
function runPolicyStep(policy: LayerReusePolicy, calls: readonly AttentionInput[], index: number): WithLse[] {
  const keySeq = calls[0]!.k.shape[2]!;
  const info: StepInfo = { index, phase: 'decode', tokens: Int32Array.of(0), positions: Int32Array.of(keySeq - 1), cacheLengthBefore: keySeq - 1, layers: calls.length };
  policy.beginStep?.(info);
  const trace: LayerSummary[] = [];
  const results: WithLse[] = [];
  for (const [l, call] of calls.entries()) {
    const cache = { length: keySeq, keys: () => call.k, values: () => call.v };
    const context = { layer: l, step: info, q: call.q, k: call.k, v: call.v, cache, trace } as unknown as LayerContext;
    const directive = policy.planLayer?.(context) ?? { kind: 'dense' as const };
    const result: WithLse = directive.kind === 'selection' ? sparseAttention(call, directive.selection) : denseAttention(call);
    const selection = directive.kind === 'selection' ? directive.selection : undefined;
    const summary = { layer: l, directive: directive.kind, selection, stats: result.stats, backend: result.backend, keySeq } as unknown as LayerSummary;
    policy.afterAttention?.(context, { ...summary, q: call.q, k: call.k, v: call.v, output: result.output, result } as unknown as LayerRecord);
    trace.push(summary);
    results.push(result);
  }
  policy.endStep?.(info, trace);
  return results;
}

/**
 * Decode steps of a layer stack (Hq 4, Hkv 2, D 16; structured K/V per layer) through the CPU
 * model policy (`createDeltaPolicy`) and the GPU stack: every layer's pages, output and lse; then
 * the GPU's dense step against core's dense attention.
 */
async function policyStackCheck(backend: GpuBackend, c: PolicyCase): Promise<void> {
  const total = c.context + c.steps;
  const data = Array.from({ length: c.layers }, (_, l) => createWorkload('structured', { batch: 1, queryHeads: 4, kvHeads: 2, seqLength: total, headDim: 16, seed: c.seed + 31 * l }).input);
  const config = { ...c.config, fullCacheLayers: [...c.fullCacheLayers] };
  const policy = createDeltaPolicy({ layers: c.layers, config, ...(c.plan ? { plan: c.plan } : {}) });
  const scale = 1 / Math.sqrt(16);
  const caches =
    c.source === 'kv-cache'
      ? data.map((layer) => {
          const cache = new GpuKVCache(backend, { batch: 1, kvHeads: 2, queryHeads: 4, headDim: 16, valueDim: 16 });
          cache.append(sliceSeq(layer.k, 0, c.context), sliceSeq(layer.v, 0, c.context));
          return cache;
        })
      : undefined;
  try {
    for (let step = 0; step < c.steps; step++) {
      const n = c.context + step + 1;
      const calls = data.map((layer): AttentionInput => ({ q: sliceSeq(layer.q, n - 1, n), k: sliceSeq(layer.k, 0, n), v: sliceSeq(layer.v, 0, n), causal: true, scale }));
      const cpu = runPolicyStep(policy, calls, step + 1);
      const report = policy.lastStep!;
      const residents = calls.map((call, l) => {
        if (caches) {
          caches[l]!.append(sliceSeq(call.k, n - 1, n), sliceSeq(call.v, n - 1, n));
          return caches[l]!.attend(call.q, scale);
        }
        return backend.upload(call);
      });
      const gpuStack = await createGpuDeltaStack(backend, residents, { config, ...(c.plan ? { plan: c.plan } : {}) });
      try {
        if (gpuStack.active !== report.active) throw new Error(`step ${step}: GPU subset active ${gpuStack.active}, CPU ${report.active}`);
        await gpuStack.run('delta');
        const lists = await gpuStack.readSelections();
        for (let l = 0; l < c.layers; l++) expectSamePages(`step ${step} layer ${l} (${gpuStack.plan.roles[l]})`, lists[l], report.selections[l]);
        await expectLayersClose(backend, `step ${step} DELTA`, residents, cpu.map((r) => [r]));
        await gpuStack.run('dense');
        await expectLayersClose(backend, `step ${step} dense`, residents, calls.map((call) => [denseAttention(call)]));
      } finally {
        gpuStack.destroy();
        if (!caches) for (const r of residents) backend.release(r);
      }
    }
  } finally {
    for (const cache of caches ?? []) cache.destroy();
  }
}

interface RandomCase {
  readonly batch: number;
  readonly queryHeads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly keySeq: number;
  readonly layers: number;
  readonly config: DeltaConfigInput;
  readonly seed: number;
}

/**
 * A decode step over per-layer structured random K/V (any batch): the CPU reference composes,
 * per sequence, what the model policy does — dense attention in full and Δ-layers, DELTA's
 * selector on the Δ-layer's query and keys with its lse, `sparseAttention` over the source's pages
 * (the last K pages without a source) in sparse layers.
 */
async function randomStackCheck(backend: GpuBackend, c: RandomCase): Promise<void> {
  const inputs: AttentionInput[] = Array.from({ length: c.layers }, (_, l) => {
    const w = createWorkload('structured', { batch: c.batch, queryHeads: c.queryHeads, kvHeads: c.kvHeads, seqLength: c.keySeq, headDim: c.headDim, seed: c.seed + 17 * l }).input;
    return { q: sliceSeq(w.q, c.keySeq - 1, c.keySeq), k: w.k, v: w.v, causal: true };
  });
  const residents = inputs.map((input) => backend.upload(input));
  const gpuStack = await createGpuDeltaStack(backend, residents, { config: c.config });
  try {
    const { plan, config } = gpuStack;
    const selector = deltaSelector(config);
    const active = selector.isActive(c.keySeq);
    if (gpuStack.active !== active) throw new Error(`GPU subset active ${gpuStack.active}, CPU ${active}`);
    await gpuStack.run('delta');
    const lists = await gpuStack.readSelections();
    const cpu: WithLse[][] = inputs.map(() => []);
    for (let b = 0; b < c.batch; b++) {
      const chosen: (Selection | undefined)[] = [];
      for (const [l, input] of inputs.entries()) {
        const call = { q: batchOf(input.q, b), k: batchOf(input.k, b), v: batchOf(input.v, b), causal: true };
        const role = plan.roles[l]!;
        let result: WithLse;
        if (!active || role !== 'sparse') {
          result = denseAttention(call);
          chosen.push(active && role === 'delta' ? selector.fromLayer({ q: call.q, keys: call.k, scale: 1 / Math.sqrt(c.headDim), lse: result.lse! }) : undefined);
        } else {
          const source = plan.sources[l]!;
          const selection = source === -1 ? pageSelection(recentPages(c.keySeq, config.pageSize, config.pageBudget), c.kvHeads, c.keySeq, config.pageSize) : chosen[source]!;
          chosen.push(selection);
          result = sparseAttention(call, selection);
        }
        expectSamePages(`layer ${l} (${role}) batch ${b}`, lists[l], chosen[l], b);
        cpu[l]!.push(result);
      }
    }
    await expectLayersClose(backend, 'DELTA', residents, cpu);
  } finally {
    gpuStack.destroy();
    for (const r of residents) backend.release(r);
  }
}

const policyCases: readonly PolicyCase[] = [
  // full 0, Δ 1 and 3, sparse 2 4 5; GpuKVCache layers (KV slots `capacity` rows apart), three decode steps.
  { layers: 6, fullCacheLayers: [0, 1, 3], config: { pageSize: 8, pageBudget: 6, recentPages: 2 }, context: 300, steps: 3, source: 'kv-cache', seed: 3 },
  // Sparse layers before the first Δ-layer attend to the last K pages (placeholder); no recency window.
  { layers: 6, fullCacheLayers: [2, 4], config: { pageSize: 8, pageBudget: 5, recentPages: 0 }, context: 300, steps: 1, source: 'upload', seed: 4 },
  // A HyLRA-style plan: layer 4 reuses Δ-layer 0's pages although Δ-layer 2 ran after it.
  { layers: 5, fullCacheLayers: [], plan: { roles: ['delta', 'full', 'delta', 'sparse', 'sparse'], sources: [-1, -1, -1, 2, 0] }, config: { pageSize: 8, pageBudget: 6, recentPages: 2 }, context: 250, steps: 2, source: 'upload', seed: 9 },
];

const randomCases: readonly RandomCase[] = [
  // Batch 2 (each sequence its own pages), GQA 4/2, 203 keys (no multiple of the page size).
  { batch: 2, queryHeads: 4, kvHeads: 2, headDim: 32, keySeq: 203, layers: 5, config: { pageSize: 8, pageBudget: 7, recentPages: 3, fullCacheLayers: [0, 1, 3] }, seed: 5 },
  // The reference defaults (P 16, K 64, L 8; full layers 0 1 2 3 5 of 6 scaled) at 1500 keys: 94 pages.
  { batch: 1, queryHeads: 2, kvHeads: 1, headDim: 64, keySeq: 1500, layers: 6, config: {}, seed: 6 },
  // Inactive: 5 pages fit the budget, and length 1: every layer dense, as on the CPU.
  { batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16, keySeq: 37, layers: 4, config: { pageSize: 8, pageBudget: 5, recentPages: 1, fullCacheLayers: [0, 2] }, seed: 7 },
  { batch: 2, queryHeads: 2, kvHeads: 2, headDim: 16, keySeq: 1, layers: 3, config: { pageSize: 4, pageBudget: 1, recentPages: 0, fullCacheLayers: [0] }, seed: 8 },
];

const describeRandom = (c: RandomCase) => `${JSON.stringify(c.config)} ${c.layers} layers B${c.batch} Hq${c.queryHeads} Hkv${c.kvHeads} S${c.keySeq} D${c.headDim}`;

async function expectThrows(what: string, type: typeof ConfigError | typeof ShapeError, f: () => unknown): Promise<void> {
  try {
    await f();
  } catch (error) {
    if (error instanceof type) return;
    throw new Error(`${what}: threw ${String(error)}, expected ${type.name}`);
  }
  throw new Error(`${what}: did not throw`);
}

/** DELTA's layer-stack decode on the GPU against the CPU. */
export const deltaStackChecks: readonly GpuCheck[] = [
  ...policyCases.map((c): GpuCheck => ({
    name: `delta stack: GPU layer-stack decode picks the CPU model policy's pages and equals its layers (${c.source}): ${c.plan ? `plan ${JSON.stringify(c.plan)}` : `fullCacheLayers ${JSON.stringify(c.fullCacheLayers)}`} ${JSON.stringify(c.config)} ${c.layers} layers B1 Hq4 Hkv2 S${c.context}+${c.steps} D16`,
    run: (backend) => policyStackCheck(backend, c),
  })),
  ...randomCases.map((c): GpuCheck => ({
    name: `delta stack: GPU layer-stack decode equals DELTA per sequence (dense, selector, sparse over the source's pages): ${describeRandom(c)}`,
    run: (backend) => randomStackCheck(backend, c),
  })),
  {
    // One resident backs every layer, so its `out` / `lse` hold the last layer's: in the delta step
    // the sparse layer's attention over the Δ-layer's pages (dense decode with the score dump, page
    // scores, top-k, then the page-list decode), in the dense step the dense split-K decode.
    name: 'delta stack: the layers read keys at slot · keyStride (a KV cache view with spare rows) as over compact keys: full, Δ and sparse layers (delta step) and the dense step, B2 Hq4 Hkv2 S203 D32',
    async run(backend) {
      const w = createWorkload('structured', { batch: 2, queryHeads: 4, kvHeads: 2, seqLength: 203, headDim: 32, seed: 12 }).input;
      const resident = backend.upload({ q: sliceSeq(w.q, 202, 203), k: w.k, v: w.v, causal: true });
      const options = { config: { pageSize: 8, pageBudget: 6, recentPages: 2 }, plan: { roles: ['full', 'delta', 'sparse'], sources: [-1, -1, 1] } as LayerPlan };
      try {
        for (const mode of ['delta', 'dense'] as const) {
          await expectKeyStrideHonoured(backend, `the ${mode} step`, resident, async (r) => {
            const stack = await createGpuDeltaStack(backend, [r, r, r], options);
            try {
              if (!stack.active) throw new Error('expected the subset to be active (26 pages > 6)');
              await stack.run(mode);
            } finally {
              stack.destroy();
            }
          });
        }
      } finally {
        backend.release(resident);
      }
    },
  },
  {
    name: 'delta stack: runDeltaStackDecode times both steps and reports the selection and density of the step it ran',
    async run(backend) {
      const config = { pageSize: 8, pageBudget: 6, recentPages: 2, fullCacheLayers: [0, 1, 3] };
      const result = await runDeltaStackDecode(backend, { layers: 6, queryHeads: 4, kvHeads: 2, headDim: 16, keySeq: 300, config, warmup: 1, warmupMs: 0, repeats: 2, stepsPerSample: 2 });
      // 300 keys = 37 full pages + 4 keys; the recency window always holds the partial last page.
      const keys = 5 * 8 + 4;
      const expected = { active: true, pagesSelected: 6, selectedKeys: keys, physicalLayers: 6, density: (3 * 300 + 3 * keys) / (6 * 300), kvBytesDelta: (3 * 300 + 3 * keys) * 2 * 2 * 16 * 4, kvBytesDense: 6 * 300 * 2 * 2 * 16 * 4 };
      for (const [key, value] of Object.entries(expected)) {
        const got = (result as unknown as Record<string, unknown>)[key];
        if (typeof value === 'number' ? Math.abs((got as number) - value) > 1e-12 : got !== value) throw new Error(`${key}: ${String(got)}, expected ${value}`);
      }
      const roles = layerPlanFromFullCacheLayers(config.fullCacheLayers, 6).roles;
      if (JSON.stringify(result.plan.roles) !== JSON.stringify(roles)) throw new Error(`plan ${JSON.stringify(result.plan.roles)}`);
      const finite = [result.deltaMs, result.denseMs, result.speedup, result.pairedSpeedup, result.breakdown?.deltaLayerMs, result.breakdown?.sparseLayerMs, result.breakdown?.fullLayerMs];
      if (!finite.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)) throw new Error(`timings ${JSON.stringify(finite)}`);
      if (!(result.encodeMs.delta >= 0 && result.encodeMs.dense >= 0)) throw new Error(`encodeMs ${JSON.stringify(result.encodeMs)}`);
      if (result.delta.samplesMs.length !== 2 || result.dense.samplesMs.length !== 2 || result.backend.backend !== 'gpu') throw new Error(`samples/backend ${JSON.stringify(result)}`);
      const rows = deltaStackRows(result);
      if (rows.length !== 2 || rows[1]!.metrics['speedupVsDense'] !== result.speedup || rows[0]!.metrics['ms'] !== result.denseMs || rows[1]!.seqLength !== 300) throw new Error(`rows ${JSON.stringify(rows)}`);
      // Layers beyond the memory cap share caches (two apart).
      const shared = await runDeltaStackDecode(backend, { layers: 6, queryHeads: 4, kvHeads: 2, headDim: 16, keySeq: 300, config, warmup: 1, warmupMs: 0, repeats: 1, breakdown: false, maxKvBytes: 1 });
      if (shared.physicalLayers !== 2 || shared.breakdown !== undefined || shared.pagesSelected !== 6) throw new Error(`shared caches: ${JSON.stringify({ physical: shared.physicalLayers, pages: shared.pagesSelected })}`);
    },
  },
  {
    name: "delta stack: bad plans, configs and layers throw the CPU policy's typed errors before any GPU work",
    async run(backend) {
      const input = { q: tensor([1, 2, 1, 8]), k: tensor([1, 1, 40, 8]), v: tensor([1, 1, 40, 8]), causal: true };
      const one = backend.upload(input);
      const other = backend.upload({ ...input, k: tensor([1, 1, 41, 8]), v: tensor([1, 1, 41, 8]) });
      const prefill = backend.upload({ ...input, q: tensor([1, 2, 2, 8]) });
      try {
        await expectThrows('unknown option', ConfigError, () => createGpuDeltaStack(backend, [one, one], { config: { budget: 3 } as DeltaConfigInput }));
        await expectThrows('recentPages > pageBudget', ConfigError, () => createGpuDeltaStack(backend, [one], { config: { pageBudget: 2, recentPages: 3 } }));
        await expectThrows('fullCacheLayers outside the model', ConfigError, () => createGpuDeltaStack(backend, [one, one], { config: { fullCacheLayers: [0, 5] } }));
        await expectThrows('plan with a bad source', ConfigError, () => createGpuDeltaStack(backend, [one, one], { plan: { roles: ['full', 'sparse'], sources: [-1, 0] } }));
        await expectThrows('no layers', ConfigError, () => createGpuDeltaStack(backend, []));
        await expectThrows('layers of different lengths', ShapeError, () => createGpuDeltaStack(backend, [one, other], { config: { fullCacheLayers: [0] } }));
        await expectThrows('two queries per head', ShapeError, () => createGpuDeltaStack(backend, [prefill], { config: { fullCacheLayers: [0] } }));
        await expectThrows('benchmark GQA', ConfigError, () => runDeltaStackDecode(backend, { queryHeads: 6, kvHeads: 4, keySeq: 64 }));
        await expectThrows('benchmark layers', ConfigError, () => runDeltaStackDecode(backend, { layers: 0, keySeq: 64 }));
      } finally {
        for (const r of [one, other, prefill]) backend.release(r);
      }
    },
  },
];
