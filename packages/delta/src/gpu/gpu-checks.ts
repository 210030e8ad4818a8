import { ConfigError, ShapeError, sliceSeq, sparseAttention, tensor, type AttentionInput, type AttentionResult, type MethodDefinition } from '@sparse-attn/core';
import {
  decodeCaseInput,
  decodeStepCall,
  decodeStepInputs,
  expectKeyStrideHonoured,
  expectLseClose,
  expectOutputClose,
  expectSameSelection,
  type DecodeCase,
  type GpuBackend,
  type GpuCheck,
  type GpuMethodDefinition,
} from '@sparse-attn/backend-gpu';
import { deltaMethod } from '../delta.js';
import { tidalDecodeMethod } from '../tidal-decode.js';
import { deltaStackChecks } from './delta-stack-checks.js';
import { gpuDeltaMethod, gpuTidalDecodeMethod, selfSelectedStep } from './gpu-delta.js';

const caseName = (c: DecodeCase) => `B${c.batch} Hq${c.queryHeads} Hkv${c.kvHeads} D${c.headDim} steps ${c.steps.join('+')}`;

/** Compares a GPU result with the CPU method's: same selection, output within 1e-4, lse against core's executor over it. */
function compare(what: string, gpu: AttentionResult, cpu: AttentionResult, call: AttentionInput): void {
  expectSameSelection(what, gpu.selection, cpu.selection);
  expectOutputClose(`${what} vs the CPU method`, gpu, cpu);
  const exact = sparseAttention(call, cpu.selection!);
  expectOutputClose(`${what} vs core sparseAttention over the selection`, gpu, exact);
  expectLseClose(what, (gpu as AttentionResult & { lse?: Float32Array }).lse, exact.lse);
  if (gpu.backend.backend !== 'gpu') throw new Error(`${what}: backend recorded as ${JSON.stringify(gpu.backend)}`);
}

/** The GPU decoder and the CPU decoder of a method side by side over a decode case. */
async function decodeCheck(backend: GpuBackend, gpuMethod: GpuMethodDefinition, cpuMethod: MethodDefinition, config: Record<string, unknown>, c: DecodeCase): Promise<void> {
  const shape = { batch: c.batch, queryHeads: c.queryHeads, kvHeads: c.kvHeads, headDim: c.headDim };
  const cpu = cpuMethod.create(config).createDecoder(shape);
  const gpu = gpuMethod.create(backend, config).createDecoder!(shape);
  const input = decodeCaseInput(c, 'structured');
  try {
    for (const [i, step] of decodeStepInputs(input, c.steps).entries()) {
      const g = await gpu.step(step);
      compare(`step ${i}`, g, cpu.step(step), decodeStepCall(input, c.steps, i));
    }
  } finally {
    gpu.destroy();
  }
}

const deltaDecodes: readonly { config: Record<string, unknown>; c: DecodeCase }[] = [
  // Length 1 upward: pages 1..3 fit the budget (every page), then selection with no recency window.
  { config: { pageSize: 2, pageBudget: 2, recentPages: 0 }, c: { batch: 1, queryHeads: 2, kvHeads: 2, headDim: 16, steps: [1, 1, 1, 1, 1, 1, 1], seed: 21 } },
  { config: { pageSize: 4, pageBudget: 4, recentPages: 1 }, c: { batch: 1, queryHeads: 2, kvHeads: 2, headDim: 16, steps: [37, 1, 1, 1], seed: 22 } },
  // GQA, batch 2 (each batch its own pages), a cache length that is no multiple of the page size, a dense 3-token chunk.
  { config: { pageSize: 8, pageBudget: 5, recentPages: 2 }, c: { batch: 2, queryHeads: 4, kvHeads: 2, headDim: 32, steps: [61, 1, 3, 1, 1], seed: 23 } },
  // The reference defaults (P 16, K 64, L 8) at S = 2048: 128 pages, half of them kept.
  { config: {}, c: { batch: 1, queryHeads: 2, kvHeads: 1, headDim: 64, steps: [2046, 1, 1], seed: 24 } },
];

const tidalDecodes: readonly { config: Record<string, unknown>; c: DecodeCase }[] = [
  { config: { tokenBudget: 3 }, c: { batch: 1, queryHeads: 1, kvHeads: 1, headDim: 16, steps: [1, 1, 1, 1, 1], seed: 31 } },
  { config: { tokenBudget: 8 }, c: { batch: 2, queryHeads: 4, kvHeads: 2, headDim: 16, steps: [30, 1, 2, 1], seed: 32 } },
  { config: { tokenBudget: 256 }, c: { batch: 1, queryHeads: 2, kvHeads: 1, headDim: 64, steps: [699, 1, 1], seed: 33 } },
];

/** DELTA / TidalDecode on the GPU against their CPU methods, and DELTA's layer-stack decode against the CPU policy. */
export const gpuChecks: readonly GpuCheck[] = [
  ...deltaDecodes.map(({ config, c }): GpuCheck => ({
    name: `delta decoder on the GPU picks the CPU decoder's pages and equals it: ${JSON.stringify(config)} ${caseName(c)}`,
    run: (backend) => decodeCheck(backend, gpuDeltaMethod, deltaMethod as unknown as MethodDefinition, config, c),
  })),
  ...tidalDecodes.map(({ config, c }): GpuCheck => ({
    name: `tidal-decode decoder on the GPU picks the CPU decoder's tokens and equals it: ${JSON.stringify(config)} ${caseName(c)}`,
    run: (backend) => decodeCheck(backend, gpuTidalDecodeMethod, tidalDecodeMethod as unknown as MethodDefinition, config, c),
  })),
  ...([
    [gpuDeltaMethod, deltaMethod, { pageSize: 4, pageBudget: 3, recentPages: 1, prefill: 'self-select' }],
    [gpuTidalDecodeMethod, tidalDecodeMethod, { tokenBudget: 7, prefill: 'self-select' }],
  ] as const).map(([gpuMethod, cpuMethod, config]): GpuCheck => ({
    name: `${gpuMethod.id} self-select prefill (every query row selects) and its decoder equal the CPU method: ${JSON.stringify(config)} B1 Hq4 Hkv2 S45 D32`,
    async run(backend) {
      const c: DecodeCase = { batch: 1, queryHeads: 4, kvHeads: 2, headDim: 32, steps: [45], seed: 41 };
      const input = { ...decodeCaseInput(c, 'structured'), causal: true };
      const cpu = (cpuMethod as unknown as MethodDefinition).create(config);
      compare('prefill', await gpuMethod.create(backend, config).prefill(input), cpu.prefill(input), input);
      // Dense prefill mode reports every key, as the CPU does.
      const denseConfig = { ...config, prefill: 'dense' };
      const dense = await gpuMethod.create(backend, denseConfig).prefill(input);
      compare('dense prefill', dense, (cpuMethod as unknown as MethodDefinition).create(denseConfig).prefill(input), input);
      await decodeCheck(backend, gpuMethod, cpuMethod as unknown as MethodDefinition, config, { ...c, steps: [20, 3, 1, 5], seed: 42 });
    },
  })),
  {
    name: 'runResident: one decode step of the last query over resident keys, density as the CPU method at that step (also recorded as one submission)',
    async run(backend) {
      const c: DecodeCase = { batch: 1, queryHeads: 4, kvHeads: 2, headDim: 32, steps: [150], seed: 51 };
      const input = decodeCaseInput(c, 'gaussian');
      const last = { ...input, q: sliceSeq(input.q, 149, 150), causal: true };
      for (const [gpuMethod, cpuMethod, config] of [
        [gpuDeltaMethod, deltaMethod, { pageSize: 8, pageBudget: 6, recentPages: 2, prefill: 'self-select' }],
        [gpuTidalDecodeMethod, tidalDecodeMethod, { tokenBudget: 20, prefill: 'self-select' }],
      ] as const) {
        const resident = backend.upload(input);
        try {
          const expected = (cpuMethod as unknown as MethodDefinition).create(config).prefill(last).stats.density;
          // Separate submissions, then one (the benchmark's timed calls; the density's readback then submits what was recorded before it).
          for (const oneSubmission of [false, true]) {
            const timings = await gpuMethod.create(backend, config).runResident!(resident, { oneSubmission });
            if (Math.abs((timings.density ?? -1) - expected) > 1e-12) throw new Error(`${gpuMethod.id}: density ${timings.density}, CPU ${expected} (oneSubmission ${oneSubmission})`);
            if (timings.oneSubmission !== (oneSubmission || undefined) || timings.phase !== 'decode') throw new Error(`${gpuMethod.id}: ${JSON.stringify(timings)} (oneSubmission ${oneSubmission})`);
            if (!(timings.selectionMs >= 0 && timings.attentionMs >= 0)) throw new Error(`${gpuMethod.id}: timings ${JSON.stringify(timings)}`);
          }
        } finally {
          backend.release(resident);
        }
      }
    },
  },
  {
    // A GpuKVCache's view (what the decoders attend over) has its KV slots `capacity` rows apart in
    // one buffer: the logits kernel and the executors must read key t of slot s at s · keyStride + t.
    name: 'delta and tidal-decode read keys at slot · keyStride (a KV cache view with spare rows) as over compact keys: a decode step (one query at the last of 203 keys) and a 4-query self-selected chunk, B2 Hq4 Hkv2 D32 Dv24',
    async run(backend) {
      const c: DecodeCase = { batch: 2, queryHeads: 4, kvHeads: 2, headDim: 32, valueDim: 24, steps: [203], seed: 71 };
      const input = decodeCaseInput(c, 'structured');
      const configs: readonly [GpuMethodDefinition, Record<string, unknown>][] = [
        [gpuDeltaMethod, { pageSize: 8, pageBudget: 6, recentPages: 2 }],
        [gpuTidalDecodeMethod, { tokenBudget: 20 }],
      ];
      for (const [method, config] of configs) {
        for (const querySeq of [1, 4]) {
          const resident = backend.upload({ ...input, q: sliceSeq(input.q, 203 - querySeq, 203), causal: true });
          try {
            await expectKeyStrideHonoured(backend, `${method.id} ${JSON.stringify(config)} (${querySeq} queries)`, resident, selfSelectedStep(backend, method.id, config));
          } finally {
            backend.release(resident);
          }
        }
      }
    },
  },
  {
    name: "bad input and config throw the CPU method's typed errors before any GPU work",
    async run(backend) {
      const expectThrows = async (what: string, type: typeof ConfigError | typeof ShapeError, f: () => unknown) => {
        try {
          await f();
        } catch (error) {
          if (error instanceof type) return;
          throw new Error(`${what}: threw ${String(error)}, expected ${type.name}`);
        }
        throw new Error(`${what}: did not throw`);
      };
      const input = decodeCaseInput({ batch: 1, queryHeads: 2, kvHeads: 1, headDim: 8, steps: [10], seed: 61 });
      for (const [gpuMethod, cpuMethod] of [[gpuDeltaMethod, deltaMethod], [gpuTidalDecodeMethod, tidalDecodeMethod]] as const) {
        await expectThrows(`${gpuMethod.id} non-causal`, ConfigError, () => gpuMethod.create(backend).prefill({ ...input, causal: false }));
        await expectThrows(`${gpuMethod.id} CPU non-causal`, ConfigError, () => (cpuMethod as unknown as MethodDefinition).create().prefill({ ...input, causal: false }));
        await expectThrows(`${gpuMethod.id} mis-shaped q`, ShapeError, () => gpuMethod.create(backend).prefill({ ...input, q: tensor([1, 2, 10, 4]) }));
        await expectThrows(`${gpuMethod.id} unknown option`, ConfigError, () => gpuMethod.create(backend, { budget: 3 }));
        const decoder = gpuMethod.create(backend).createDecoder!({ batch: 1, queryHeads: 2, kvHeads: 1, headDim: 8 });
        try {
          await expectThrows(`${gpuMethod.id} decoder step`, ShapeError, () => decoder.step({ q: tensor([1, 2, 1, 8]), k: tensor([1, 1, 2, 8]), v: tensor([1, 1, 2, 8]) }));
          if (decoder.length !== 0) throw new Error(`${gpuMethod.id}: a rejected step reached the cache`);
        } finally {
          decoder.destroy();
        }
      }
      await expectThrows('delta recentPages > pageBudget', ConfigError, () => gpuDeltaMethod.create(backend, { pageBudget: 2, recentPages: 3 }));
    },
  },
  ...deltaStackChecks,
];
