/**
 * GPU-vs-CPU checks of the draft-kv methods on the GPU (run in headless Chromium's WebGPU by
 * `gpu-checks.test.ts`, and by the backend's device program where Dawn loads): each GPU method
 * keeps the CPU method's entries and its output and log-sum-exp agree with the CPU's to 1e-4
 * relative; decoders agree step by step; bad input throws the CPU's typed errors first.
 *
 * Selection equality: the GPU scores in float32 (the CPU reduces in float64), so two keys whose
 * pooled scores differ by less than float32 rounding may rank the other way. Where a kept set
 * differs from the CPU's, the check accepts it only if every swapped pair is such a near-tie
 * under the CPU's own scores (1e-5 relative) and then compares the output with core's exact
 * `sparseAttention` over the GPU's selection; anything else fails.
 *
 * Inputs are core's 'structured' workload (salient key blocks) unless a case says 'gaussian'.
 */
import {
  ConfigError,
  ShapeError,
  densePairCount,
  sliceSeq,
  sparseAttention,
  validateAttentionInput,
  type AttentionInput,
  type Selection,
} from '@sparse-attn/core';
import { GpuBackend, checkInput, countPairs, describeCheckShape, expectClose, expectKeyStrideHonoured, expectLseClose, oneSubmissionCheck, type CheckShape, type GpuCheck, type GpuMethodDefinition } from '@sparse-attn/backend-gpu';
import { compressLayer } from '../compress-layer.js';
import type { EvictingDecoder } from '../compressed-attention.js';
import { compressionScratchBytesPerSlot, type GpuCompressionPlanner } from './gpu-compression.js';
import { gpuKeyNormMethod, gpuPyramidKvMethod, gpuRandomKvMethod, gpuSnapKvMethod, gpuSpecKvLayerMethod, gpuTovaMethod, planners } from './gpu-kv-methods.js';
import { gpuStreamingLlmMethod, sinkRecentBytesPerSlot } from './gpu-streaming-llm.js';

function sameLayout(gpu: Selection, cpu: Selection): void {
  for (const field of ['kind', 'blockSize', 'headScope', 'batch', 'heads', 'rows', 'queryBlockSize', 'keySeq'] as const) {
    if (gpu[field] !== cpu[field]) throw new Error(`selection ${field}: GPU ${String(gpu[field])}, CPU ${String(cpu[field])}`);
  }
  if (gpu.offsets.length !== cpu.offsets.length || gpu.offsets.some((x, i) => x !== cpu.offsets[i])) throw new Error('selection offsets differ (kept counts per head)');
}

/**
 * Whether the GPU kept the CPU's entries; where not, checks that every difference is a float32
 * near-tie of the CPU's pooled scores (throws otherwise) and returns false.
 */
function sameKeptEntries(input: AttentionInput, gpu: Selection, cpu: Selection, planner: GpuCompressionPlanner): boolean {
  sameLayout(gpu, cpu);
  if (gpu.indices.length === cpu.indices.length && gpu.indices.every((x, i) => x === cpu.indices[i])) return true;
  const d = validateAttentionInput(input);
  const plan = planner(d.keySeq, d.querySeq);
  const observers = Int32Array.from({ length: plan.observerCount }, (_, i) => plan.observerFirst + i);
  const { scores } = compressLayer(input.q, input.k, d.scale, { ...plan, scorer: plan.scorer, observers });
  const scored = d.keySeq - Math.min(plan.window, d.keySeq);
  for (let row = 0; row < gpu.offsets.length - 1; row++) {
    const picked = new Set(gpu.indices.subarray(gpu.offsets[row]!, gpu.offsets[row + 1]!));
    const wanted = new Set(cpu.indices.subarray(cpu.offsets[row]!, cpu.offsets[row + 1]!));
    let minPicked = Infinity;
    let maxDropped = -Infinity;
    for (let j = 0; j < d.keySeq; j++) {
      if (picked.has(j) === wanted.has(j)) continue;
      if (j >= scored) throw new Error(`row ${row}: window entry ${j} ${picked.has(j) ? 'kept' : 'dropped'} unlike the CPU`);
      const s = scores[row * scored + j]!;
      if (picked.has(j)) minPicked = Math.min(minPicked, s);
      else maxDropped = Math.max(maxDropped, s);
    }
    if (maxDropped > minPicked + 1e-5 * Math.max(Math.abs(minPicked), Math.abs(maxDropped))) {
      throw new Error(`row ${row}: GPU kept an entry scoring ${minPicked} (CPU score) over one scoring ${maxDropped}: not a float32 near-tie`);
    }
  }
  return false;
}

/** Runs a GPU method and its CPU definition on one input and compares kept entries, output and lse. */
async function compareWithCpu(backend: GpuBackend, method: GpuMethodDefinition, config: Record<string, unknown>, input: AttentionInput): Promise<void> {
  const cpu = method.cpu.create(config).prefill(input);
  const gpu = await method.create(backend, config).prefill(input);
  const cpuSelection = cpu.selection!;
  const gpuSelection = (gpu as { selection: Selection }).selection;
  const exact = sameKeptEntries(input, gpuSelection, cpuSelection, planners[method.id]!(config));
  const reference = exact ? cpu.output.data : sparseAttention(input, gpuSelection).output.data;
  expectClose('output', gpu.output.data, reference);
  expectLseClose('lse', (gpu as unknown as { lse: Float32Array }).lse, sparseAttention(input, exact ? cpuSelection : gpuSelection).lse);
  if (gpu.backend.backend !== 'gpu') throw new Error(`backend recorded as ${JSON.stringify(gpu.backend)}`);
  const kept = (cpu.diagnostics as { keptPerHead: number }).keptPerHead;
  if ((gpu.diagnostics as { keptPerHead?: number } | undefined)?.keptPerHead !== kept) throw new Error(`keptPerHead ${JSON.stringify(gpu.diagnostics)}, CPU ${kept}`);
}

/** StreamingLLM: the selection is a closed form, so it must equal the CPU's entry for entry. */
async function compareStreamingWithCpu(backend: GpuBackend, config: Record<string, unknown>, input: AttentionInput): Promise<void> {
  const cpu = gpuStreamingLlmMethod.cpu.create(config).prefill(input);
  const gpu = (await gpuStreamingLlmMethod.create(backend, config).prefill(input)) as unknown as { output: { data: Float32Array }; lse: Float32Array; selection: Selection; diagnostics: { keptPerHead: number } };
  sameLayout(gpu.selection, cpu.selection!);
  if (gpu.selection.indices.length !== cpu.selection!.indices.length || gpu.selection.indices.some((x, i) => x !== cpu.selection!.indices[i])) throw new Error('kept entries differ from the CPU tracker');
  expectClose('output', gpu.output.data, cpu.output.data);
  expectLseClose('lse', gpu.lse, sparseAttention(input, cpu.selection!).lse);
  const kept = (cpu.diagnostics as { keptPerHead: number }).keptPerHead;
  if (gpu.diagnostics.keptPerHead !== kept) throw new Error(`keptPerHead ${gpu.diagnostics.keptPerHead}, CPU ${kept}`);
}

const streamingCases: readonly { config: Record<string, unknown>; shape: CheckShape }[] = [
  { config: { sinks: 4, recent: 20 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 16 } },
  { config: { sinks: 2, recent: 100 }, shape: { batch: 2, queryHeads: 2, kvHeads: 2, seq: 203, headDim: 32 } },
  { config: { sinks: 0, recent: 30 }, shape: { batch: 1, queryHeads: 4, kvHeads: 1, seq: 97, headDim: 16, valueDim: 24, querySeq: 40 } },
  { config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 130, headDim: 16 } },
  { config: { sinks: 4, recent: 8 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1, headDim: 16 } },
];

interface Case {
  readonly method: GpuMethodDefinition;
  readonly config: Record<string, unknown>;
  readonly shape: CheckShape;
  readonly kind?: 'gaussian' | 'structured';
}

const cases: readonly Case[] = [
  { method: gpuSnapKvMethod, config: { capacity: 48, window: 8 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 203, headDim: 32 } },
  { method: gpuSnapKvMethod, config: { capacity: 40, window: 8, kernel: 5, pooling: 'avg', reduction: 'max' }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 16 } },
  { method: gpuSnapKvMethod, config: { capacity: 30, window: 12, pooling: 'none', kernel: 1, reduction: 'sum' }, shape: { batch: 1, queryHeads: 4, kvHeads: 1, seq: 97, headDim: 16, valueDim: 24 }, kind: 'gaussian' },
  { method: gpuSnapKvMethod, config: { capacity: 20, window: 8 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 77, headDim: 16, querySeq: 5 } },
  { method: gpuSnapKvMethod, config: { keepRatio: 0.3, window: 16 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 300, headDim: 64 } },
  { method: gpuSnapKvMethod, config: { capacity: 64, window: 8 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 1, headDim: 16 } },
  { method: gpuSnapKvMethod, config: { capacity: 256, window: 8 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 200, headDim: 16 } },
  { method: gpuSnapKvMethod, config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 2048, headDim: 64 } },
  { method: gpuSnapKvMethod, config: { capacity: 8, window: 8 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 100, headDim: 16 } },
  { method: gpuSnapKvMethod, config: { capacity: 30, window: 0, kernel: 3 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 100, headDim: 16 } },
  { method: gpuPyramidKvMethod, config: { capacity: 100, window: 8, layers: 4, layer: 0, beta: 2 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 300, headDim: 32 } },
  { method: gpuPyramidKvMethod, config: { capacity: 100, window: 8, layers: 4, layer: 3, beta: 2 }, shape: { batch: 2, queryHeads: 2, kvHeads: 2, seq: 300, headDim: 32 } },
  { method: gpuSpecKvLayerMethod, config: { capacity: 40, window: 8, lookahead: 4 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 181, headDim: 32 } },
  { method: gpuTovaMethod, config: { capacity: 50 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 130, headDim: 16 } },
  { method: gpuKeyNormMethod, config: { capacity: 50 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 130, headDim: 16 }, kind: 'gaussian' },
  { method: gpuKeyNormMethod, config: { capacity: 60, window: 4, pooling: 'max', kernel: 3 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 111, headDim: 20 }, kind: 'gaussian' },
  { method: gpuRandomKvMethod, config: { capacity: 40, seed: 7 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 16 } },
  { method: gpuRandomKvMethod, config: { capacity: 300, window: 8, seed: 4294967295 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 2000, headDim: 16 } },
];

/**
 * Steps a CPU and a GPU decoder through the same chunks and compares every step. A `{ context }`
 * chunk goes to the GPU decoder's `appendContext` and to the CPU decoder as a step (whose output
 * is not compared); the caches must agree after it.
 */
async function compareDecoders(backend: GpuBackend, method: GpuMethodDefinition, config: Record<string, unknown>, shape: CheckShape, chunks: readonly (number | { readonly context: number })[]): Promise<void> {
  const size = (c: number | { readonly context: number }) => (typeof c === 'number' ? c : c.context);
  const total = chunks.reduce<number>((a, c) => a + size(c), 0);
  const input = checkInput({ ...shape, seq: total }, 7, 'structured');
  const decoderShape = { batch: shape.batch, queryHeads: shape.queryHeads, kvHeads: shape.kvHeads, headDim: shape.headDim };
  const cpu = method.cpu.create(config).createDecoder(decoderShape) as EvictingDecoder;
  const gpu = method.create(backend, config).createDecoder!(decoderShape) as ReturnType<NonNullable<ReturnType<GpuMethodDefinition['create']>['createDecoder']>> & { cachedEntries: number };
  try {
    let at = 0;
    for (const [i, chunk] of chunks.entries()) {
      const n = size(chunk);
      const step = { q: sliceSeq(input.q, at, at + n), k: sliceSeq(input.k, at, at + n), v: sliceSeq(input.v, at, at + n) };
      at += n;
      const c = cpu.step(step);
      if (typeof chunk === 'number') {
        const g = await gpu.step(step);
        expectClose(`step ${i} (${n} tokens) output`, g.output.data, c.output.data);
      } else {
        if (!gpu.appendContext) throw new Error(`${method.id}'s GPU decoder has no appendContext`);
        gpu.appendContext(step.k, step.v);
      }
      if (gpu.length !== cpu.length || gpu.cachedEntries !== cpu.cachedEntries) throw new Error(`step ${i}: GPU length ${gpu.length}/${gpu.cachedEntries} cached, CPU ${cpu.length}/${cpu.cachedEntries}`);
    }
  } finally {
    gpu.destroy();
  }
}

async function expectThrows(what: string, kind: typeof ConfigError | typeof ShapeError, run: () => unknown): Promise<string> {
  try {
    await run();
  } catch (error) {
    if (!(error instanceof kind)) throw new Error(`${what}: threw ${(error as Error).name}: ${(error as Error).message}, expected ${kind.name}`);
    return (error as Error).message;
  }
  throw new Error(`${what}: did not throw`);
}

/** Every draft-kv GPU check, in the order they run. */
export const gpuChecks: GpuCheck[] = [
  ...cases.map(({ method, config, shape, kind }, i): GpuCheck => ({
    name: `${method.id} on the GPU keeps the CPU's entries, output and lse agree: ${JSON.stringify(config)} ${describeCheckShape(shape)}`,
    run: (backend) => compareWithCpu(backend, method, config, checkInput(shape, 100 + i, kind ?? 'structured')),
  })),
  ...streamingCases.map(({ config, shape }, i): GpuCheck => ({
    name: `streaming-llm on the GPU keeps the CPU tracker's entries per query, output and lse agree: ${JSON.stringify(config)} ${describeCheckShape(shape)}`,
    run: (backend) => compareStreamingWithCpu(backend, config, checkInput(shape, 200 + i, 'structured')),
  })),
  {
    name: 'streaming-llm decoder on the GPU equals the CPU decoder (prefill chunk, single tokens, a chunk past the window)',
    run: (backend) => compareDecoders(backend, gpuStreamingLlmMethod, { sinks: 2, recent: 10 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 0, headDim: 16 }, [30, 1, 1, 1, 12, 1]),
  },
  {
    // Context past the window, single tokens, a second context mid-sequence and a chunk: the cache
    // after each context is the one a step over it leaves (sinks and the most recent entries).
    name: 'streaming-llm decoder on the GPU takes context without attending it (appendContext) and then equals the CPU decoder that stepped over it',
    run: (backend) => compareDecoders(backend, gpuStreamingLlmMethod, { sinks: 2, recent: 10 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 0, headDim: 16 }, [{ context: 30 }, 1, 1, { context: 5 }, 1, 12, { context: 3 }, 1]),
  },
  {
    name: 'streaming-llm runResident equals the CPU prefill: the one-pass sink + window kernel (170 queries) and the split-K selections + merge (a 3-query step)',
    async run(backend) {
      const config = { sinks: 3, recent: 40 };
      for (const querySeq of [170, 3]) {
        const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 170, headDim: 32, querySeq }, 33, 'structured');
        const d = validateAttentionInput(input);
        const resident = backend.upload(input, d, sinkRecentBytesPerSlot({ sinks: 3, recent: 40 }, d));
        try {
          const run = await gpuStreamingLlmMethod.create(backend, config).runResident!(resident);
          const cpu = gpuStreamingLlmMethod.cpu.create(config).prefill(input);
          const { output } = await backend.readOutput(resident);
          expectClose(`output (${querySeq} queries)`, output.data, cpu.output.data);
          const density = countPairs(cpu.selection!, d) / densePairCount(d);
          if (!(Math.abs((run.density ?? NaN) - density) < 1e-12)) throw new Error(`density ${run.density}, CPU selection's ${density}`);
          // The one-pass kernel has no selection step.
          if (querySeq > 16 && run.selectionMs !== 0) throw new Error(`${querySeq} queries: selectionMs ${run.selectionMs}, the one-pass kernel has none`);
        } finally {
          backend.release(resident);
        }
      }
    },
  },
  {
    name: 'snapkv decoder on the GPU equals the CPU decoder (compressing prefill chunk, single tokens, a second chunk)',
    run: (backend) => compareDecoders(backend, gpuSnapKvMethod, { capacity: 40, window: 8 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 0, headDim: 16 }, [90, 1, 1, 1, 30, 1]),
  },
  {
    name: 'speckv decoder on the GPU equals the CPU decoder',
    run: (backend) => compareDecoders(backend, gpuSpecKvLayerMethod, { capacity: 40, window: 8, lookahead: 3 }, { batch: 2, queryHeads: 2, kvHeads: 2, seq: 0, headDim: 16 }, [70, 1, 1, 20]),
  },
  {
    name: 'snapkv runResident: selection and attention on resident buffers equal the CPU prefill, density from the kept entries',
    async run(backend) {
      const config = { capacity: 48, window: 8 };
      const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32 }, 31, 'structured');
      const d = validateAttentionInput(input);
      const planner = planners['snapkv']!(config);
      const resident = backend.upload(input, d, compressionScratchBytesPerSlot(planner(d.keySeq, d.querySeq), d));
      try {
        const run = await gpuSnapKvMethod.create(backend, config).runResident!(resident);
        const cpu = gpuSnapKvMethod.cpu.create(config).prefill(input);
        const { output } = await backend.readOutput(resident);
        expectClose('output', output.data, cpu.output.data);
        const density = countPairs(cpu.selection!, d) / densePairCount(d);
        if (!(Math.abs((run.density ?? NaN) - density) < 1e-12)) throw new Error(`density ${run.density}, CPU selection's ${density}`);
        if (!(run.selectionMs >= 0 && run.attentionMs >= 0)) throw new Error(`timings ${JSON.stringify(run)}`);
      } finally {
        backend.release(resident);
      }
    },
  },
  {
    // A GpuKVCache's view has its KV slots `capacity` rows apart in one buffer: every kernel a
    // method reaches (observer scoring, key norms, the sink + window pass, the executors) must
    // read key t of slot s at row s · keyStride + t.
    name: 'every method runResident reads keys at slot · keyStride (a KV cache view with spare rows) as over compact keys: the compress-once methods (observer, key-norm and random scorers) and streaming-llm (one-pass kernel and split-K path), B2 Hq4 Hkv2 S150 D32 Dv24',
    async run(backend) {
      const shape = { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32, valueDim: 24 };
      const compressing: readonly [GpuMethodDefinition, Record<string, unknown>][] = [
        [gpuSnapKvMethod, { capacity: 40, window: 8, kernel: 5, pooling: 'avg' }],
        [gpuPyramidKvMethod, { capacity: 60, window: 8, layers: 4, layer: 1, beta: 2 }],
        [gpuSpecKvLayerMethod, { capacity: 40, window: 8, lookahead: 3 }],
        [gpuTovaMethod, { capacity: 45 }],
        [gpuKeyNormMethod, { capacity: 50, window: 4, pooling: 'max', kernel: 3 }],
        [gpuRandomKvMethod, { capacity: 40, seed: 11 }],
      ];
      for (const [i, [method, config]] of compressing.entries()) {
        for (const querySeq of [undefined, 5]) {
          const input = checkInput({ ...shape, querySeq }, 300 + i, 'structured');
          const d = validateAttentionInput(input);
          const resident = backend.upload(input, d, compressionScratchBytesPerSlot(planners[method.id]!(config)(d.keySeq, d.querySeq), d));
          try {
            const gpu = method.create(backend, config);
            await expectKeyStrideHonoured(backend, `${method.id} ${JSON.stringify(config)} (${d.querySeq} queries)`, resident, (r) => gpu.runResident!(r, { density: false }));
          } finally {
            backend.release(resident);
          }
        }
      }
      const policy = { sinks: 4, recent: 40 };
      // 150 queries: the one-pass sink + window kernel; 3: the split-K selections and merge.
      for (const querySeq of [150, 3]) {
        const input = checkInput({ ...shape, querySeq }, 310, 'structured');
        const d = validateAttentionInput(input);
        const resident = backend.upload(input, d, sinkRecentBytesPerSlot(policy, d));
        try {
          const gpu = gpuStreamingLlmMethod.create(backend, policy);
          await expectKeyStrideHonoured(backend, `streaming-llm ${JSON.stringify(policy)} (${querySeq} queries)`, resident, (r) => gpu.runResident!(r));
        } finally {
          backend.release(resident);
        }
      }
    },
  },
  {
    name: 'calls split into several chunks (small binding limit) keep the same entries',
    async run(backend) {
      const small = new GpuBackend({ ...backend.context, maxBinding: 2 * 90 * 16 * 4 }, { reason: 'test' });
      await compareWithCpu(small, gpuSnapKvMethod, { capacity: 30, window: 6 }, checkInput({ batch: 2, queryHeads: 6, kvHeads: 3, seq: 90, headDim: 16 }, 41, 'structured'));
      await compareWithCpu(small, gpuKeyNormMethod, { capacity: 30 }, checkInput({ batch: 2, queryHeads: 6, kvHeads: 3, seq: 90, headDim: 16 }, 42, 'gaussian'));
      await compareWithCpu(small, gpuRandomKvMethod, { capacity: 30, seed: 3 }, checkInput({ batch: 2, queryHeads: 6, kvHeads: 3, seq: 90, headDim: 16 }, 44, 'structured'));
      // StreamingLLM's band rows (90 × 63 indices per KV slot) need a larger binding: two slots per chunk, three chunks.
      const streaming = new GpuBackend({ ...backend.context, maxBinding: 2 * 90 * 63 * 4 }, { reason: 'test' });
      await compareStreamingWithCpu(streaming, { sinks: 2, recent: 20 }, checkInput({ batch: 2, queryHeads: 6, kvHeads: 3, seq: 90, headDim: 16 }, 43, 'structured'));
    },
  },
  {
    name: "bad input throws the CPU method's typed errors before any GPU work",
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 2, seq: 40, headDim: 16 }, 5, 'structured');
      for (const method of [gpuSnapKvMethod, gpuPyramidKvMethod, gpuSpecKvLayerMethod, gpuTovaMethod, gpuKeyNormMethod, gpuRandomKvMethod]) {
        const expected = await expectThrows(`${method.id} CPU non-causal`, ConfigError, () => method.cpu.create({}).prefill({ ...input, causal: false }));
        const got = await expectThrows(`${method.id} GPU non-causal`, ConfigError, () => method.create(backend, {}).prefill({ ...input, causal: false }));
        if (got !== expected) throw new Error(`${method.id}: GPU says '${got}', CPU '${expected}'`);
        await expectThrows(`${method.id} GPU bad shape`, ShapeError, () => method.create(backend, {}).prefill({ ...input, k: sliceSeq(input.k, 0, 39) }));
        await expectThrows(`${method.id} GPU bad config`, ConfigError, () => method.create(backend, { capacity: 4, window: 8 }));
      }
      const streamingExpected = await expectThrows('streaming-llm CPU non-causal', ConfigError, () => gpuStreamingLlmMethod.cpu.create({}).prefill({ ...input, causal: false }));
      const streamingGot = await expectThrows('streaming-llm GPU non-causal', ConfigError, () => gpuStreamingLlmMethod.create(backend, {}).prefill({ ...input, causal: false }));
      if (streamingGot !== streamingExpected) throw new Error(`streaming-llm: GPU says '${streamingGot}', CPU '${streamingExpected}'`);
      await expectThrows('streaming-llm GPU bad shape', ShapeError, () => gpuStreamingLlmMethod.create(backend, {}).prefill({ ...input, k: sliceSeq(input.k, 0, 39) }));
      await expectThrows('streaming-llm GPU bad config', ConfigError, () => gpuStreamingLlmMethod.create(backend, { recent: 0 }));
      await expectThrows('pyramidkv layer past layers', ConfigError, () => gpuPyramidKvMethod.create(backend, { layer: 4, layers: 4 }));
    },
  },
  // The benchmark's timed calls, recorded as one submission.
  oneSubmissionCheck(gpuSnapKvMethod, { capacity: 24, window: 8 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 90, headDim: 16 }, 263),
  oneSubmissionCheck(gpuStreamingLlmMethod, { sinks: 4, recent: 20 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 130, headDim: 16 }, 264),
];
