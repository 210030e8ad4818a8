/**
 * GPU-vs-CPU checks of this package's GPU methods (run in headless Chromium's WebGPU by
 * `gpu-checks.test.ts`, and by the device program where Dawn loads). Each check runs the GPU
 * method and the CPU method on the same input and requires
 *
 *   - the same selection, entry for entry (layout, offsets and indices);
 *   - output within 1e-4 relative L2 of the CPU method's, and lse within 1e-4 of core's
 *     `sparseAttention` over that selection (the CPU method's attention);
 *   - bad input rejected with the CPU method's typed error before any GPU work.
 *
 * Selections are required to be identical: the inputs are Gaussian, where the gaps between the
 * scores that decide a pick are many orders of magnitude above the float32 rounding that
 * separates the GPU's scores from the CPU's (see the README's GPU section on ties).
 */
import {
  ConfigError,
  NumericError,
  ShapeError,
  rowOffset,
  sliceSeq,
  sparseAttention,
  tensor,
  type AttentionInput,
  type AttentionResult,
  type MethodDefinition,
  validateAttentionInput,
} from '@sparse-attn/core';
import { GpuBackend, checkInput, describeCheckShape, expectClose, expectKeyStrideHonoured, expectLseClose, expectSameSelection, type CheckShape, type GpuAttentionDecoder, type GpuCheck, type GpuMethodDefinition, type ResidentAttention } from '@sparse-attn/backend-gpu';
import { gpuMobaMethod } from './moba-gpu.js';
import { gpuNsaMethod, nsaPlan, nsaSelectionStep, rangeRowsFor } from './nsa-gpu.js';
import { nsaConfigSchema, nsaMethod } from '../nsa.js';
import { hierarchicalIndexerMethod } from '../hierarchical-indexer.js';
import { gpuHierarchicalIndexerMethod } from './indexer-gpu.js';

/**
 * Runs the GPU and the CPU method on one input and compares selection, output and lse. Returns
 * both results for method-specific extra checks.
 */
export async function compareWithCpu(backend: GpuBackend, gpuMethod: GpuMethodDefinition, config: Record<string, unknown>, input: AttentionInput): Promise<{ gpu: AttentionResult; cpu: AttentionResult }> {
  const gpu = await gpuMethod.create(backend, config).prefill(input);
  const cpu = (gpuMethod.cpu as MethodDefinition).create(config).prefill(input);
  expectSameSelection('prefill', gpu.selection, cpu.selection);
  expectClose('output', gpu.output.data, cpu.output.data);
  const lse = (gpu as { lse?: Float32Array }).lse;
  if (!lse) throw new Error('GPU result carries no lse');
  expectLseClose('lse', lse, sparseAttention(input, cpu.selection!).lse);
  if (gpu.backend.backend !== 'gpu' || gpu.backend.device !== backend.info.device) throw new Error(`backend recorded as ${JSON.stringify(gpu.backend)}`);
  if (gpu.stats.pairs !== cpu.stats.pairs) throw new Error(`pairs: GPU ${gpu.stats.pairs}, CPU ${cpu.stats.pairs}`);
  return { gpu, cpu };
}

/** A backend that fails the check as soon as any GPU work (upload, kernels, attention) is started. */
function untouchable(backend: GpuBackend): GpuBackend {
  const gpuWork = new Set(['upload', 'selectionAttention', 'runSelection', 'runKernels', 'runSparse', 'sparseAttention', 'denseAttention', 'randomResident']);
  return new Proxy(backend, {
    get(target, property, receiver) {
      if (typeof property === 'string' && gpuWork.has(property)) throw new Error(`GPU work (${property}) started before the input was rejected`);
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}

async function expectRejects(what: string, run: () => Promise<unknown> | unknown, type: new (...args: never[]) => Error, cpu: () => unknown): Promise<void> {
  let cpuError: unknown;
  try {
    cpu();
  } catch (error) {
    cpuError = error;
  }
  if (!(cpuError instanceof type)) throw new Error(`${what}: the CPU method threw ${String(cpuError)}, expected a ${type.name}`);
  try {
    await run();
  } catch (error) {
    if (!(error instanceof type)) throw new Error(`${what}: the GPU method threw ${String(error)}, expected a ${type.name}`);
    if ((error as Error).message !== (cpuError as Error).message) throw new Error(`${what}: GPU says "${(error as Error).message}", CPU says "${(cpuError as Error).message}"`);
    return;
  }
  throw new Error(`${what}: the GPU method did not throw`);
}

/** Bad input and bad config: the CPU method's typed errors (same messages), before any GPU work. */
function badInputCheck(gpuMethod: GpuMethodDefinition, config: Record<string, unknown>, badConfig: Record<string, unknown>): GpuCheck {
  return {
    name: `${gpuMethod.id}: bad input and config throw the CPU method's typed errors before any GPU work`,
    async run(backend) {
      const guarded = untouchable(backend);
      const cpu = (gpuMethod.cpu as MethodDefinition).create(config);
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 40, headDim: 8 }, 3);
      const nonCausal = { ...input, causal: false };
      await expectRejects('non-causal', () => gpuMethod.create(guarded, config).prefill(nonCausal), ConfigError, () => cpu.prefill(nonCausal));
      const nan = { ...input, k: tensor(input.k.shape, Float32Array.from(input.k.data, (x, i) => (i === 17 ? Number.NaN : x))) };
      await expectRejects('NaN in k', () => gpuMethod.create(guarded, config).prefill(nan), NumericError, () => cpu.prefill(nan));
      const badShape = { ...input, v: tensor([1, 1, 39, 8]) };
      await expectRejects('v shorter than k', () => gpuMethod.create(guarded, config).prefill(badShape), ShapeError, () => cpu.prefill(badShape));
      await expectRejects('bad config', () => gpuMethod.create(guarded, badConfig), ConfigError, () => (gpuMethod.cpu as MethodDefinition).create(badConfig));
    },
  };
}

/** A prefill comparison over one shape and config. */
function prefillCheck(gpuMethod: GpuMethodDefinition, config: Record<string, unknown>, shape: CheckShape, seed: number, extra?: (r: { gpu: AttentionResult; cpu: AttentionResult }) => void): GpuCheck {
  return {
    name: `${gpuMethod.id} ${JSON.stringify(config)} ${describeCheckShape(shape)}: GPU selection, output and lse equal the CPU method's`,
    async run(backend) {
      const results = await compareWithCpu(backend, gpuMethod, config, checkInput(shape, seed));
      extra?.(results);
    },
  };
}

/**
 * `runResident` (the H100 benchmark's entry) on an uploaded call: the output it leaves in the
 * resident buffers equals the CPU method's, and its density (entries counted on the GPU, never
 * read back) equals the CPU's pairs / dense pairs. Runs on a backend whose largest binding is
 * tiny, so the call is split into several chunks (`chunkSlots` KV slots each).
 */
function residentCheck(gpuMethod: GpuMethodDefinition, config: Record<string, unknown>, shape: CheckShape, seed: number, chunkSlots = 1): GpuCheck {
  return {
    name: `${gpuMethod.id} ${JSON.stringify(config)} ${describeCheckShape(shape)}: runResident over several chunks${chunkSlots > 1 ? ` of ${chunkSlots} slots` : ''} leaves the CPU method's output and reports its density (also recorded as one submission)`,
    async run(backend) {
      const input = checkInput(shape, seed);
      const d = validateAttentionInput(input);
      const slotBytes = 4 * Math.max(d.groupSize * d.querySeq * Math.max(d.headDim, d.valueDim), d.keySeq * Math.max(d.headDim, d.valueDim));
      const small = new GpuBackend({ ...backend.context, maxBinding: chunkSlots * slotBytes });
      const resident = small.upload(input, d);
      try {
        const chunks = Math.ceil((d.batch * d.kvHeads) / chunkSlots);
        if (resident.chunks.length !== chunks) throw new Error(`expected ${chunks} chunks, got ${resident.chunks.length}`);
        const method = gpuMethod.create(small, config);
        const timings = await method.runResident!(resident);
        const cpu = (gpuMethod.cpu as MethodDefinition).create(config).prefill(input);
        const { output } = await small.readOutput(resident);
        expectClose('resident output', output.data, cpu.output.data);
        if (timings.density === undefined || Math.abs(timings.density - cpu.stats.density) > 1e-12) throw new Error(`density: GPU ${timings.density}, CPU ${cpu.stats.density}`);
        if (!(timings.selectionMs >= 0 && timings.attentionMs >= 0)) throw new Error(`timings ${JSON.stringify(timings)}`);
        // The benchmark's timed call: no density, one submission where the method records one.
        const fresh = small.upload(input, d);
        try {
          const timed = await method.runResident!(fresh, { density: false, oneSubmission: true });
          if (timed.density !== undefined) throw new Error(`density ${timed.density} reported without being asked for`);
          expectClose('resident output (density: false, oneSubmission)', (await small.readOutput(fresh)).output.data, cpu.output.data);
        } finally {
          small.release(fresh);
        }
      } finally {
        small.release(resident);
      }
    },
  };
}

/** Options of {@link decodeCheck}. */
interface DecodeCheckOptions {
  /** Rows per KV head the decoder's cache starts with (small: the cache and the pooled windows double during the run). */
  readonly initialCapacity?: number;
  /**
   * Also require that the decoder does not allocate per step what the cache holds: buffers at
   * least as large as one KV slot's keys (4 · length · D bytes) are created only in steps where
   * the cache or the pooled-window store doubles, O(log steps) of them over the run.
   */
  readonly allocations?: boolean;
}

/** `[13, 1, 1, 1, 3]` as `[13, 1 ×3, 3]`. */
function describeSteps(steps: readonly number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < steps.length; ) {
    let j = i;
    while (j < steps.length && steps[j] === steps[i]) j++;
    runs.push(j - i > 2 ? `${steps[i]} ×${j - i}` : steps.slice(i, j).join(', '));
    i = j;
  }
  return runs.join(', ');
}

/**
 * Records the size of every buffer the backend's device creates while `run` runs (the device's
 * `createBuffer` is wrapped in place, so the backend keeps its compiled pipelines).
 */
async function recordingBuffers<T>(backend: GpuBackend, sizes: number[], run: () => Promise<T>): Promise<T> {
  const device = backend.context.device as unknown as { createBuffer(descriptor: { readonly size: number }): unknown };
  const own = Object.prototype.hasOwnProperty.call(device, 'createBuffer');
  const original = device.createBuffer;
  const recording = (descriptor: { readonly size: number }) => {
    sizes.push(descriptor.size);
    return original.call(device, descriptor);
  };
  device.createBuffer = recording;
  if (device.createBuffer !== recording) throw new Error("this adapter's device does not let createBuffer be wrapped: allocations cannot be counted");
  try {
    return await run();
  } finally {
    if (own) device.createBuffer = original;
    else delete (device as { createBuffer?: unknown }).createBuffer;
  }
}

/**
 * The GPU decoder against the CPU decoder over the same steps (a chunked prompt, then single
 * tokens and a short chunk): every step's selection identical, output within 1e-4 of the CPU
 * decoder's, lse within 1e-4 of core's executor over cache + new tokens and that selection.
 * Also: a step of the wrong shape throws the CPU decoder's ShapeError without GPU work, and
 * `reset` empties the cache (a step after it equals a fresh CPU decoder's).
 */
function decodeCheck(gpuMethod: GpuMethodDefinition, config: Record<string, unknown>, shape: Omit<CheckShape, 'seq' | 'querySeq'>, steps: readonly number[], seed: number, options: DecodeCheckOptions = {}): GpuCheck {
  const total = steps.reduce((a, b) => a + b, 0);
  const extras = [options.initialCapacity ? `, cache from ${options.initialCapacity} rows` : '', options.allocations ? ', no per-step allocation of the cache' : ''].join('');
  return {
    name: `${gpuMethod.id} ${JSON.stringify(config)} B${shape.batch} Hq${shape.queryHeads} Hkv${shape.kvHeads} D${shape.headDim}: GPU decoder steps [${describeSteps(steps)}] equal the CPU decoder's${extras}`,
    async run(backend) {
      const input = checkInput({ ...shape, seq: total }, seed);
      const decoderShape = { batch: shape.batch, queryHeads: shape.queryHeads, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim: shape.valueDim ?? shape.headDim };
      const gpu = gpuMethod.create(backend, config).createDecoder!(decoderShape, options.initialCapacity ? { initialCapacity: options.initialCapacity } : undefined);
      const cpu = (gpuMethod.cpu as MethodDefinition).create(config).createDecoder(decoderShape);
      const slots = shape.batch * shape.kvHeads;
      // Per step: buffers created of at least one KV slot's keys, and whether a capacity doubled.
      const big: { at: number; sizes: number[] }[] = [];
      let growths = 0;
      try {
        let at = 0;
        let capacity = options.initialCapacity ?? 256;
        for (const [n, count] of steps.entries()) {
          const stepInput = { q: sliceSeq(input.q, at, at + count), k: sliceSeq(input.k, at, at + count), v: sliceSeq(input.v, at, at + count) };
          const sizes: number[] = [];
          const g = options.allocations ? await recordingBuffers(backend, sizes, () => gpu.step(stepInput)) : await gpu.step(stepInput);
          const c = cpu.step(stepInput);
          at += count;
          while (capacity < at) {
            capacity *= 2;
            growths++;
          }
          const slotKeys = 4 * at * shape.headDim;
          if (sizes.some((size) => size >= slotKeys)) big.push({ at, sizes: sizes.filter((size) => size >= slotKeys) });
          try {
            expectSameSelection('decode', g.selection, c.selection);
            expectClose('output', g.output.data, c.output.data);
            const exact = sparseAttention({ q: stepInput.q, k: sliceSeq(input.k, 0, at), v: sliceSeq(input.v, 0, at), causal: true }, c.selection!);
            expectLseClose('lse', (g as { lse?: Float32Array }).lse!, exact.lse);
            if (gpu.length !== at) throw new Error(`length ${gpu.length}, expected ${at}`);
          } catch (error) {
            throw new Error(`step ${n} (${count} tokens, cache ${at}): ${(error as Error).message}`);
          }
        }
        if (options.allocations) {
          // The cache doubles `growths` times (2 · slots buffers each) and the pooled-window store
          // about as often (up to 3 · slots: means, bounds, values); nothing else is that large.
          const bigSteps = big.length;
          const buffers = big.reduce((sum, b) => sum + b.sizes.length, 0);
          const detail = big.map((b) => `cache ${b.at}: ${b.sizes.join(', ')} B`).join('; ');
          if (bigSteps > 2 * (growths + 1)) throw new Error(`${bigSteps} of ${steps.length} steps allocated a buffer of one KV slot's keys or more (the cache doubled ${growths} times): ${detail}`);
          if (buffers > 5 * slots * (growths + 1)) throw new Error(`${buffers} buffers of one KV slot's keys or more over ${steps.length} steps (the cache doubled ${growths} times): ${detail}`);
        }
        const wrong = { q: sliceSeq(input.q, 0, 1), k: sliceSeq(input.k, 0, 2), v: sliceSeq(input.v, 0, 2) };
        const guarded = gpuMethod.create(untouchable(backend), config).createDecoder!(decoderShape);
        await expectRejects('q and k of different lengths', () => guarded.step(wrong), ShapeError, () => cpu.step(wrong));
        gpu.reset();
        if (gpu.length !== 0) throw new Error(`length ${gpu.length} after reset`);
        // After reset the decoder starts over (kept buffers, no stale pooled windows): equal to a fresh CPU decoder.
        const again = { q: sliceSeq(input.q, 0, steps[0]!), k: sliceSeq(input.k, 0, steps[0]!), v: sliceSeq(input.v, 0, steps[0]!) };
        const g = await gpu.step(again);
        const c = (gpuMethod.cpu as MethodDefinition).create(config).createDecoder(decoderShape).step(again);
        expectSameSelection('decode after reset', g.selection, c.selection);
        expectClose('output after reset', g.output.data, c.output.data);
      } finally {
        gpu.destroy();
      }
    },
  };
}

/**
 * MoBA on keys where block j's keys equal block (j mod period)'s, so the gates of blocks a period
 * apart tie exactly (on the CPU in float64 and on the GPU in float32 alike): the picks follow the
 * tie rule (a later block ranks above an equal earlier one).
 */
function mobaRepeatingKeysCheck(what: string, config: { blockSize: number; topK: number }, shape: CheckShape, period: number, seed: number): GpuCheck {
  return {
    name: `moba ${JSON.stringify(config)} ${describeCheckShape(shape)} with ${what}: GPU selection, output and lse equal the CPU method's`,
    async run(backend) {
      const input = checkInput(shape, seed);
      const span = period * config.blockSize * shape.headDim;
      const k = Float32Array.from(input.k.data);
      const perHead = shape.seq * shape.headDim;
      for (let x = 0; x < k.length; x++) if (x % perHead >= span) k[x] = k[x - span]!;
      await compareWithCpu(backend, gpuMobaMethod, config, { ...input, k: tensor(input.k.shape, k) });
    },
  };
}

const mobaChecks: GpuCheck[] = [
  // Length not a multiple of the block, GQA (Hq 4 / Hkv 2), batch 2.
  prefillCheck(gpuMobaMethod, { blockSize: 16, topK: 3 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32 }, 1, ({ gpu, cpu }) => {
    if (gpu.diagnostics?.['meanSelectedBlocks'] !== cpu.diagnostics?.['meanSelectedBlocks']) {
      throw new Error(`meanSelectedBlocks: GPU ${gpu.diagnostics?.['meanSelectedBlocks']}, CPU ${cpu.diagnostics?.['meanSelectedBlocks']}`);
    }
  }),
  prefillCheck(gpuMobaMethod, { blockSize: 8, topK: 2 }, { batch: 1, queryHeads: 1, kvHeads: 1, seq: 1, headDim: 16 }, 2),
  // Queries aligned to the end of the keys (a chunk after a prompt), value dim ≠ head dim, group 4.
  prefillCheck(gpuMobaMethod, { blockSize: 8, topK: 4 }, { batch: 1, queryHeads: 4, kvHeads: 1, seq: 77, headDim: 16, valueDim: 24, querySeq: 5 }, 3),
  prefillCheck(gpuMobaMethod, { blockSize: 32, topK: 4 }, { batch: 1, queryHeads: 2, kvHeads: 2, seq: 300, headDim: 64 }, 4),
  // Every block selected (full budget).
  prefillCheck(gpuMobaMethod, { blockSize: 10, topK: 20 }, { batch: 1, queryHeads: 2, kvHeads: 1, seq: 123, headDim: 16 }, 5),
  // Head dims that are not a multiple of 4 (scalar loads in the routing and attention kernels): the
  // full budget with group 2 (rows executor), and ≥ 64 queries over 16-key blocks (key-block executor).
  prefillCheck(gpuMobaMethod, { blockSize: 10, topK: 20 }, { batch: 1, queryHeads: 2, kvHeads: 1, seq: 123, headDim: 18 }, 6),
  prefillCheck(gpuMobaMethod, { blockSize: 16, topK: 3 }, { batch: 1, queryHeads: 2, kvHeads: 2, seq: 130, headDim: 18, valueDim: 10 }, 7),
  // Routing over several 64-block column tiles (137 pooled blocks: the picks kept across three
  // tiles), 1100 queries (a ragged last query tile), D = 32 (vec4 loads).
  prefillCheck(gpuMobaMethod, { blockSize: 8, topK: 5 }, { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1100, headDim: 32 }, 9),
  // A query chunk at offset 330 whose queries see 82–99 past blocks (two column tiles), 70 queries
  // (two query tiles, the second of 6), GQA 4/2, k = 12: picks of the first tile displaced by the second's.
  prefillCheck(gpuMobaMethod, { blockSize: 4, topK: 12 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 400, headDim: 16, querySeq: 70 }, 10),
  {
    // Block j's keys equal block j mod 3's, so the gates of blocks 3 apart tie exactly (on the CPU
    // in float64 and on the GPU in float32 alike): the picks follow the tie rule (a later block
    // ranks above an equal earlier one), across two 64-block column tiles (75 blocks).
    name: 'moba {"blockSize":8,"topK":6} B1 Hq2 Hkv1 S600 D16 with keys repeating every 3 blocks (exact gate ties across column tiles): GPU selection, output and lse equal the CPU method\'s',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 600, headDim: 16 }, 30);
      const period = 3 * 8 * 16;
      const k = Float32Array.from(input.k.data);
      for (let x = period; x < k.length; x++) k[x] = k[x - period]!;
      await compareWithCpu(backend, gpuMobaMethod, { blockSize: 8, topK: 6 }, { ...input, k: tensor(input.k.shape, k) });
    },
  },
  // Top-k 1: no past block is ever picked (the routing kernel keeps no candidates), over two column tiles.
  prefillCheck(gpuMobaMethod, { blockSize: 4, topK: 1 }, { batch: 1, queryHeads: 2, kvHeads: 1, seq: 300, headDim: 16 }, 11),
  mobaRepeatingKeysCheck(
    'every block\'s keys equal block 0\'s (all gates of a query tie exactly), 150 blocks over three column tiles: the picks are the latest past blocks, which each thread and the merge must rank above equal earlier ones',
    { blockSize: 4, topK: 4 },
    { batch: 1, queryHeads: 2, kvHeads: 1, seq: 600, headDim: 16 },
    1,
    31,
  ),
  mobaRepeatingKeysCheck(
    'keys repeating every 2 blocks, top-k 24 (23 candidates per thread: the looped insertion, merged in two passes), 100 blocks over two column tiles',
    { blockSize: 4, topK: 24 },
    { batch: 1, queryHeads: 2, kvHeads: 1, seq: 400, headDim: 16 },
    2,
    32,
  ),
  // Decode-shaped calls (≤ 16 queries per head) route one workgroup per row (moba-route-decode-wgsl.ts):
  // 156 random past blocks over 128 threads (two per thread), D 128, GQA 4/2, two queries.
  prefillCheck(gpuMobaMethod, { blockSize: 32, topK: 5 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 5000, headDim: 128, querySeq: 2 }, 33),
  mobaRepeatingKeysCheck(
    'every block\'s keys equal block 0\'s, 3 queries (decode-shaped routing: 149 tied past blocks over 128 threads, the latest ranked first)',
    { blockSize: 4, topK: 4 },
    { batch: 1, queryHeads: 2, kvHeads: 1, seq: 600, headDim: 16, querySeq: 3 },
    1,
    34,
  ),
  mobaRepeatingKeysCheck(
    'keys repeating every 2 blocks, top-k 24, 16 queries (the decode-shaped routing\'s bound), GQA 4/2, D 32',
    { blockSize: 4, topK: 24 },
    { batch: 2, queryHeads: 4, kvHeads: 2, seq: 400, headDim: 32, querySeq: 16 },
    2,
    35,
  ),
  // One query over 2 050 pooled blocks, past the decode-shaped kernel's workgroup array: the tiled kernel routes it.
  prefillCheck(gpuMobaMethod, { blockSize: 4, topK: 3 }, { batch: 1, queryHeads: 1, kvHeads: 1, seq: 8200, headDim: 16, querySeq: 1 }, 36),
  badInputCheck(gpuMobaMethod, { blockSize: 8, topK: 2 }, { blockSize: 0 }),
  decodeCheck(gpuMobaMethod, { blockSize: 8, topK: 2 }, { batch: 2, queryHeads: 4, kvHeads: 2, headDim: 16 }, [21, 1, 1, 3, 1], 7),
  residentCheck(gpuMobaMethod, { blockSize: 16, topK: 2 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 100, headDim: 16 }, 6),
  // A long run from a cache of 8 rows (K/V and pooled blocks doubling 3 times), crossing 4 block boundaries.
  decodeCheck(gpuMobaMethod, { blockSize: 8, topK: 3 }, { batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 }, [11, ...Array<number>(30).fill(1), 3], 8, { initialCapacity: 8, allocations: true }),
];

const nsaChecks: GpuCheck[] = [
  // Small geometry (l = l' = d = 16, n = 4, w = 32): length not a multiple of the blocks, GQA, batch 2.
  prefillCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 4, window: 32 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32 }, 11, ({ gpu, cpu }) => {
    for (const key of ['meanVisibleCompressed', 'meanSelectedBlocks', 'compressedKvBytesRead']) {
      if (gpu.diagnostics?.[key] !== cpu.diagnostics?.[key]) throw new Error(`${key}: GPU ${gpu.diagnostics?.[key]}, CPU ${cpu.diagnostics?.[key]}`);
    }
  }),
  prefillCheck(gpuNsaMethod, { compressionBlock: 8, compressionStride: 8, selectionBlock: 8, selectedBlocks: 3, window: 8 }, { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1, headDim: 16 }, 12),
  // Overlapping windows (l = 16, d = 8, l' = 32), no initial block, window 0, group of 4, Sq 40 of 120.
  prefillCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 8, selectionBlock: 32, selectedBlocks: 2, window: 0, forceInitial: false, forceLocal: 1 }, { batch: 1, queryHeads: 4, kvHeads: 1, seq: 120, headDim: 16, valueDim: 24, querySeq: 40 }, 13),
  // 'quest' compression scores, window not a multiple of the block.
  prefillCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 5, window: 20, compressionScore: 'quest' }, { batch: 1, queryHeads: 2, kvHeads: 2, seq: 200, headDim: 32 }, 14),
  // Union rows split into window blocks shared by 64 queries + a per-query rest, merged by lse: a
  // query chunk at offset 201 (query blocks straddle selection blocks), window not a multiple of
  // the block, GQA 4/2, batch 2, 70 queries (a ragged second query block).
  prefillCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 8, selectionBlock: 16, selectedBlocks: 4, window: 40 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 271, headDim: 16, querySeq: 70 }, 25),
  // The split with a group of 4 query heads per shared row (256 query vectors per rows-executor row), 2 query blocks.
  residentCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 3, window: 48 }, { batch: 1, queryHeads: 4, kvHeads: 1, seq: 130, headDim: 16 }, 27),
  // Head dims that are not a multiple of 4 (scalar loads in the scoring, top-n and attention
  // kernels): the union split over ≥ 64 queries with GQA, and Quest scores.
  prefillCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 8, selectionBlock: 16, selectedBlocks: 4, window: 40 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 18, valueDim: 10 }, 28),
  prefillCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 3, window: 24, compressionScore: 'quest' }, { batch: 1, queryHeads: 2, kvHeads: 2, seq: 100, headDim: 18 }, 29),
  // The paper's defaults (l = l' = d = 64, n = 16, w = 512) at S = 2048, D = 64.
  prefillCheck(gpuNsaMethod, {}, { batch: 1, queryHeads: 2, kvHeads: 1, seq: 2048, headDim: 64 }, 15),
  // The defaults with one query head per KV head (the scorer ranks logits in one pass) at a length
  // that is not a multiple of the blocks; w ≥ 64, so the rest rows take n + 2 = 18 entries, not 25.
  prefillCheck(gpuNsaMethod, {}, { batch: 1, queryHeads: 2, kvHeads: 2, seq: 3000, headDim: 64 }, 31),
  // More picks than the registers rank (20 > 16): the private-array ranking, on logits (G = 1) and probabilities (G = 2).
  prefillCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 20, window: 64 }, { batch: 1, queryHeads: 2, kvHeads: 2, seq: 700, headDim: 32 }, 32),
  prefillCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 20, window: 64 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 650, headDim: 32, querySeq: 300 }, 33),
  // 'gated': selected, window and compressed branches mixed by per-head gates (GQA, batch 2, S not a multiple of the blocks).
  prefillCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 3, window: 24, combine: 'gated', gates: { compression: [0.3, 0.1, 0.2, 0.5], selection: 0.4, window: [0.3, 0.6, 0.2, 0.1] } }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 130, headDim: 16, valueDim: 24 }, 17, ({ gpu, cpu }) => {
    if (gpu.diagnostics?.['compressedPairs'] !== cpu.diagnostics?.['compressedPairs']) throw new Error(`compressedPairs: GPU ${gpu.diagnostics?.['compressedPairs']}, CPU ${cpu.diagnostics?.['compressedPairs']}`);
  }),
  // 'gated' with overlapping windows, no window branch, Sq 30 of 100, length-1 call below.
  prefillCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 8, selectionBlock: 16, selectedBlocks: 3, window: 0, combine: 'gated', gates: { compression: 0.5, selection: 0.5, window: 0 } }, { batch: 1, queryHeads: 2, kvHeads: 1, seq: 100, headDim: 32, querySeq: 30 }, 18),
  prefillCheck(gpuNsaMethod, { compressionBlock: 8, compressionStride: 8, selectionBlock: 8, selectedBlocks: 3, window: 4, combine: 'gated', gates: { compression: 0.2, selection: 0.3, window: 0.5 } }, { batch: 1, queryHeads: 1, kvHeads: 1, seq: 1, headDim: 16 }, 19),
  residentCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 3, window: 20, combine: 'gated', gates: { compression: 0.2, selection: 0.5, window: 0.3 } }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 90, headDim: 16 }, 20),
  {
    name: "nsa 'gated': a per-head gate list of the wrong length throws the CPU method's ConfigError before any GPU work",
    async run(backend) {
      const config = { compressionBlock: 8, compressionStride: 8, selectionBlock: 8, selectedBlocks: 3, window: 8, combine: 'gated', gates: { selection: [0.5, 0.5, 0.5] } };
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 30, headDim: 8 }, 21);
      await expectRejects('gates.selection of 3 for 2 heads', () => gpuNsaMethod.create(untouchable(backend), config).prefill(input), ConfigError, () => (gpuNsaMethod.cpu as MethodDefinition).create(config).prefill(input));
    },
  },
  decodeCheck(gpuNsaMethod, { compressionBlock: 8, compressionStride: 4, selectionBlock: 8, selectedBlocks: 3, window: 10 }, { batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 }, [30, 1, 2, 1, 5], 22),
  decodeCheck(gpuNsaMethod, { compressionBlock: 8, compressionStride: 8, selectionBlock: 8, selectedBlocks: 3, window: 6, combine: 'gated', gates: { compression: 0.3, selection: 0.4, window: 0.3 } }, { batch: 1, queryHeads: 2, kvHeads: 1, headDim: 16 }, [17, 1, 1, 4], 23),
  // 40 single tokens after a 13-token prompt from a cache of 8 rows: K/V, pooled keys and Quest
  // bounds double 3 times, 10 new overlapping windows (l = 8, d = 4) and 5 selection blocks appear
  // one step at a time (56 = 7 · 8 + 0, the last step a ragged 3), GQA 4/2, batch 2; and no step
  // allocates a buffer the size of the cache except where it doubles.
  decodeCheck(gpuNsaMethod, { compressionBlock: 8, compressionStride: 4, selectionBlock: 8, selectedBlocks: 3, window: 10, compressionScore: 'quest' }, { batch: 2, queryHeads: 4, kvHeads: 2, headDim: 16 }, [13, ...Array<number>(40).fill(1), 3], 28, { initialCapacity: 8, allocations: true }),
  // Gated: pooled keys and values kept across steps (the compressed branch reads them), Dv ≠ D, from 4 rows.
  decodeCheck(gpuNsaMethod, { compressionBlock: 8, compressionStride: 4, selectionBlock: 8, selectedBlocks: 3, window: 6, combine: 'gated', gates: { compression: 0.3, selection: 0.4, window: 0.3 } }, { batch: 1, queryHeads: 2, kvHeads: 1, headDim: 16, valueDim: 24 }, [9, ...Array<number>(24).fill(1), 5], 29, { initialCapacity: 4, allocations: true }),
  residentCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 8, selectionBlock: 16, selectedBlocks: 3, window: 24 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 110, headDim: 16 }, 16),
  badInputCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 4, window: 16 }, { compressionStride: 3, compressionBlock: 16 }),
  tieCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 5, window: 20 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 16 }, 26, 'constant-keys'),
  // Decode-shaped calls (≤ 16 queries) pick with one workgroup per row (the radix top-k of nsaSelectRowWgsl):
  // every block tied (the latest picked), 37 blocks, GQA 4/2;
  tieCheck(gpuNsaMethod, { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 5, window: 20 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 600, headDim: 16, querySeq: 3 }, 37, 'constant-keys'),
  // integer scores with ties among 325 blocks, more than the workgroup's 256 threads, and 20 picks (above the register ranking's 16);
  tieCheck(gpuNsaMethod, { compressionBlock: 8, compressionStride: 8, selectionBlock: 8, selectedBlocks: 20, window: 16 }, { batch: 1, queryHeads: 2, kvHeads: 1, seq: 2600, headDim: 16, querySeq: 2 }, 38, 'integers'),
  // the defaults on random keys (79 blocks of 64, n 16), D 64;
  prefillCheck(gpuNsaMethod, {}, { batch: 1, queryHeads: 2, kvHeads: 2, seq: 5000, headDim: 64, querySeq: 1 }, 39),
  // 2 063 blocks, past the workgroup array: the per-thread kernel picks.
  prefillCheck(gpuNsaMethod, { compressionBlock: 8, compressionStride: 8, selectionBlock: 8, selectedBlocks: 4, window: 16 }, { batch: 1, queryHeads: 1, kvHeads: 1, seq: 16500, headDim: 16, querySeq: 1 }, 40),
  nsaRangesCheck(),
];

/**
 * The tiled scoring in several row ranges of 64 queries (an importance budget of 64 rows), with
 * 74 overlapping windows (l = 8, d = 4, l' = 8): two window tiles per query tile, blocks whose
 * windows straddle the tile boundary, GQA 4/2 and batch 2 in one chunk. Same selection as the CPU.
 */
function nsaRangesCheck(): GpuCheck {
  const config = { compressionBlock: 8, compressionStride: 4, selectionBlock: 8, selectedBlocks: 4, window: 16 };
  const shape = { batch: 2, queryHeads: 4, kvHeads: 2, seq: 300, headDim: 32 };
  return {
    name: `nsa ${JSON.stringify(config)} ${describeCheckShape(shape)}: row ranges of 64 queries select what the CPU method selects`,
    async run(backend) {
      const input = checkInput(shape, 24);
      const d = validateAttentionInput(input);
      const parsed = nsaConfigSchema.parse(config);
      const blocks = Math.ceil(d.keySeq / parsed.selectionBlock);
      const p = nsaPlan(backend, d, parsed, 4 * d.batch * d.kvHeads * blocks * 64);
      const rangeRows = rangeRowsFor(d, p, d.batch * d.kvHeads);
      if (rangeRows !== 64) throw new Error(`expected ranges of 64 queries, got ${rangeRows}`);
      const gpu = await backend.selectionAttention(input, nsaSelectionStep(d, parsed, p), { extraBytesPerSlot: p.scratchBytesPerSlot });
      const cpu = nsaMethod.create(config).prefill(input);
      expectSameSelection('prefill', gpu.selection, cpu.selection);
      expectClose('output', gpu.output.data, cpu.output.data);
    },
  };
}

/**
 * The indexer's stage-2 scores are float32 on the GPU and float64 on the CPU, and a row keeps K of
 * up to c · B candidate tokens, so a candidate can tie the K-th score within float32 rounding.
 * Rows must be identical except for such near-ties: the same count, and every token in one set but
 * not the other scores (group query · key, float64) within 1e-4 relative of the CPU's K-th score.
 * At most 2% of the rows may differ; output and lse are compared with core's executor over the
 * GPU's selection, and with the CPU method's output when no row differs.
 */
function indexerCheck(config: Record<string, unknown>, shape: CheckShape, seed: number, maxBinding?: number): GpuCheck {
  return {
    name: `hierarchical-indexer ${JSON.stringify(config)} ${describeCheckShape(shape)}${maxBinding ? ` (bindings of ${maxBinding} bytes: several row ranges)` : ''}: GPU token sets equal the CPU's up to float32 near-ties at the K-th score; output and lse equal core's over them`,
    async run(backend) {
      const input = checkInput(shape, seed);
      const d = validateAttentionInput(input);
      const gpuBackend = maxBinding ? new GpuBackend({ ...backend.context, maxBinding }) : backend;
      const gpu = await gpuHierarchicalIndexerMethod.create(gpuBackend, config).prefill(input);
      const cpu = hierarchicalIndexerMethod.create(config).prefill(input);
      const g = gpu.selection!;
      const c = cpu.selection!;
      let differing = 0;
      for (let r = 0; r < c.offsets.length - 1; r++) {
        const a = Array.from(g.indices.subarray(g.offsets[r]!, g.offsets[r + 1]!));
        const b = Array.from(c.indices.subarray(c.offsets[r]!, c.offsets[r + 1]!));
        if (a.length === b.length && a.every((x, i) => x === b[i])) continue;
        differing++;
        if (a.length !== b.length) throw new Error(`row ${r}: GPU keeps ${a.length} tokens, CPU ${b.length}`);
        const slot = Math.floor(r / d.querySeq);
        const i = r % d.querySeq;
        const bb = Math.floor(slot / d.kvHeads);
        const h = slot % d.kvHeads;
        const gq = new Float32Array(d.headDim);
        for (let gg = 0; gg < d.groupSize; gg++) {
          const qo = rowOffset(d.qDims, bb, h * d.groupSize + gg, i);
          for (let x = 0; x < d.headDim; x++) gq[x]! += input.q.data[qo + x]!;
        }
        const score = (token: number) => {
          const ko = rowOffset(d.kDims, bb, h, token);
          let s = 0;
          for (let x = 0; x < d.headDim; x++) s += gq[x]! * input.k.data[ko + x]!;
          return s;
        };
        const kth = Math.min(...b.map(score));
        const only = [...a.filter((x) => !b.includes(x)), ...b.filter((x) => !a.includes(x))];
        for (const token of only) {
          if (Math.abs(score(token) - kth) > 1e-4 * Math.max(1, Math.abs(kth))) throw new Error(`row ${r}: token ${token} (score ${score(token)}) differs from the CPU's set, whose K-th score is ${kth}: not a near-tie`);
        }
      }
      if (differing > 0.02 * (c.offsets.length - 1)) throw new Error(`${differing} of ${c.offsets.length - 1} rows differ`);
      const exact = sparseAttention(input, g);
      expectClose('output vs core over the GPU selection', gpu.output.data, exact.output.data);
      expectLseClose('lse', (gpu as { lse?: Float32Array }).lse!, exact.lse);
      if (differing === 0) {
        expectClose('output vs the CPU method', gpu.output.data, cpu.output.data);
        if (gpu.stats.pairs !== cpu.stats.pairs) throw new Error(`pairs: GPU ${gpu.stats.pairs}, CPU ${cpu.stats.pairs}`);
      }
      if (gpu.diagnostics?.['scannedShare'] !== cpu.diagnostics?.['scannedShare']) throw new Error(`scannedShare: GPU ${gpu.diagnostics?.['scannedShare']}, CPU ${cpu.diagnostics?.['scannedShare']}`);
    },
  };
}

const indexerChecks: GpuCheck[] = [
  indexerCheck({ blockSize: 16, candidateBlocks: 4, topK: 24 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32 }, 31),
  indexerCheck({ blockSize: 8, candidateBlocks: 2, topK: 8 }, { batch: 1, queryHeads: 1, kvHeads: 1, seq: 1, headDim: 16 }, 32),
  indexerCheck({ blockSize: 16, candidateBlocks: 3, topK: 40 }, { batch: 1, queryHeads: 4, kvHeads: 1, seq: 200, headDim: 16, valueDim: 24, querySeq: 20 }, 33),
  // ≥ 64 queries at an offset: the block-major stage 2 and the masked attention (group 2) on a query
  // chunk aligned to the end of the keys.
  indexerCheck({ blockSize: 16, candidateBlocks: 4, topK: 32 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 260, headDim: 32, querySeq: 90 }, 41),
  indexerCheck({}, { batch: 1, queryHeads: 2, kvHeads: 1, seq: 700, headDim: 64 }, 34),
  // Head dims that are not a multiple of 4 (scalar loads): ≥ 64 queries with group 2 (block-major
  // stage 2, masked key-block attention) and group 4 (token rows).
  indexerCheck({ blockSize: 16, candidateBlocks: 4, topK: 24 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 18, valueDim: 10 }, 44),
  indexerCheck({ blockSize: 16, candidateBlocks: 4, topK: 24 }, { batch: 1, queryHeads: 4, kvHeads: 1, seq: 140, headDim: 18 }, 45),
  // The defaults' full 2 048 candidates (32 blocks of 64) per row: 16 keys per thread of the radix
  // top-K, most in one or two bins of a round, decode- and prefill-shaped.
  indexerCheck({}, { batch: 1, queryHeads: 2, kvHeads: 1, seq: 4096, headDim: 32, querySeq: 1 }, 42),
  indexerCheck({}, { batch: 1, queryHeads: 2, kvHeads: 1, seq: 2500, headDim: 32, querySeq: 70 }, 43),
  // Candidate scores of 4 × 16 u32 a row and bindings of 64 KiB: row ranges of 256 queries, so the
  // block-major stage 2's pick, lists, scores and select run over two ranges (the second ragged).
  indexerCheck({ blockSize: 16, candidateBlocks: 4, topK: 24 }, { batch: 1, queryHeads: 1, kvHeads: 1, seq: 300, headDim: 32 }, 40, 64 * 1024),
  decodeCheck(gpuHierarchicalIndexerMethod, { blockSize: 8, candidateBlocks: 2, topK: 10 }, { batch: 1, queryHeads: 2, kvHeads: 1, headDim: 16 }, [25, 1, 1, 3], 36),
  decodeCheck(gpuHierarchicalIndexerMethod, { blockSize: 8, candidateBlocks: 2, topK: 10 }, { batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 }, [9, ...Array<number>(24).fill(1), 3], 39, { initialCapacity: 8, allocations: true }),
  residentCheck(gpuHierarchicalIndexerMethod, { blockSize: 16, candidateBlocks: 3, topK: 20 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 100, headDim: 16 }, 35),
  // Chunks of 2 KV slots whose token rows (2 × 120 × 40 u32) exceed the binding: runResident copies
  // one slot at a time into its own buffers (the 64k MHA benchmark case, scaled down).
  residentCheck(gpuHierarchicalIndexerMethod, { blockSize: 8, candidateBlocks: 6, topK: 40 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 120, headDim: 16 }, 37, 2),
  badInputCheck(gpuHierarchicalIndexerMethod, { blockSize: 8, candidateBlocks: 2, topK: 8 }, { blockSize: 8, candidateBlocks: 1, topK: 16 }),
  tieCheck(gpuHierarchicalIndexerMethod, { blockSize: 16, candidateBlocks: 4, topK: 24 }, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 160, headDim: 32 }, 38, 'integers'),
];

/**
 * Exact ties on both sides, so the tie order itself is compared: `nsa` with every key of a head
 * equal to its first (every block's importance equal: the picks must be the CPU's latest blocks),
 * the indexer with q and k rounded to integers (block and token scores are exact small multiples
 * of 1/B in float32 and float64, so many tie at the c-th block and the K-th token). Selections must
 * be identical, entry for entry.
 */
function tieCheck(gpuMethod: GpuMethodDefinition, config: Record<string, unknown>, shape: CheckShape, seed: number, mode: 'constant-keys' | 'integers'): GpuCheck {
  return {
    name: `${gpuMethod.id} ${JSON.stringify(config)} ${describeCheckShape(shape)}: exact score ties (${mode}) break like the CPU's`,
    async run(backend) {
      const input = checkInput(shape, seed);
      const d = validateAttentionInput(input);
      let q = input.q;
      let k = input.k;
      if (mode === 'integers') {
        q = tensor(q.shape, Float32Array.from(q.data, (x) => Math.round(x)));
        k = tensor(k.shape, Float32Array.from(k.data, (x) => Math.round(x)));
      } else {
        const data = Float32Array.from(k.data);
        for (let b = 0; b < d.batch; b++) {
          for (let h = 0; h < d.kvHeads; h++) {
            const first = rowOffset(d.kDims, b, h, 0);
            for (let t = 1; t < d.keySeq; t++) data.copyWithin(rowOffset(d.kDims, b, h, t), first, first + d.headDim);
          }
        }
        k = tensor(k.shape, data);
      }
      await compareWithCpu(backend, gpuMethod, config, { ...input, q, k });
    },
  };
}

/** One GPU path of {@link keyStrideCheck}: a method, its config and a call shape. */
interface KeyStrideCase {
  readonly what: string;
  readonly definition: GpuMethodDefinition;
  readonly config: Record<string, unknown>;
  readonly shape: CheckShape;
  /** Upload on a backend whose largest binding holds this many KV slots (the indexer's slot groups); default: one chunk of every slot. */
  readonly chunkSlots?: number;
}

const keyStrideCases: readonly KeyStrideCase[] = [
  { what: 'moba', definition: gpuMobaMethod, config: { blockSize: 16, topK: 3 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32 } },
  // Union rows with a window: the rest / shared split (key-block and rows executors) at prefill, split-K at decode.
  { what: 'nsa (union)', definition: gpuNsaMethod, config: { compressionBlock: 16, compressionStride: 8, selectionBlock: 16, selectedBlocks: 4, window: 40 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32 } },
  { what: "nsa ('quest' bounds)", definition: gpuNsaMethod, config: { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 3, window: 24, compressionScore: 'quest' }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32 } },
  // Pools the values too (the compressed branch's resident over the pooled k̃ / ṽ), Dv ≠ D.
  { what: "nsa ('gated')", definition: gpuNsaMethod, config: { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 3, window: 24, combine: 'gated', gates: { compression: 0.3, selection: 0.4, window: 0.3 } }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 16, valueDim: 24 } },
  // G = 2, ≥ 64 queries, B ≥ 16: block-major stage 2 (candidate-score kernel) and the masked blocks (key-block executor).
  { what: 'hierarchical-indexer (masked blocks, G 2)', definition: gpuHierarchicalIndexerMethod, config: { blockSize: 16, candidateBlocks: 4, topK: 24 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32 } },
  // G = 4: the token rows executor.
  { what: 'hierarchical-indexer (token rows, G 4)', definition: gpuHierarchicalIndexerMethod, config: { blockSize: 16, candidateBlocks: 4, topK: 24 }, shape: { batch: 2, queryHeads: 4, kvHeads: 1, seq: 150, headDim: 32 } },
  // Chunks of 2 KV slots whose token rows exceed a binding: runResident copies one slot at a time into compact group buffers.
  { what: 'hierarchical-indexer (slot groups of 1 over chunks of 2)', definition: gpuHierarchicalIndexerMethod, config: { blockSize: 8, candidateBlocks: 6, topK: 40 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 123, headDim: 16 }, chunkSlots: 2 },
];

/**
 * Every GPU path of this package over keys and values laid out as a `GpuKVCache`'s view has them
 * (`keyStride` rows between KV slots, spare rows in between: backend-gpu's `withSpareRows`):
 * `runResident` on a prefill-shaped call (S not a multiple of the blocks, GQA, batch 2), and
 * `runResident` and one `decodeResident` step on a decode-shaped call (one query at the end of the
 * keys: the row-parallel decode kernels, split-K), must leave the output and lse they leave over
 * compact keys. A kernel that reads slot s's keys at `s · keySeq` reads the wrong rows.
 */
function keyStrideCheck(): GpuCheck {
  return {
    name: `${keyStrideCases.map((c) => c.what).join(', ')}: runResident (prefill- and decode-shaped) and decodeResident read keys and values at slot · keyStride (a KV cache view with spare rows) as over compact keys`,
    async run(backend) {
      for (const [n, c] of keyStrideCases.entries()) {
        for (const decode of [false, true]) {
          const input = checkInput(decode ? { ...c.shape, querySeq: 1 } : c.shape, 60 + 2 * n + (decode ? 1 : 0));
          const d = validateAttentionInput(input);
          let on = backend;
          if (c.chunkSlots !== undefined) {
            const slotBytes = 4 * Math.max(d.groupSize * d.querySeq * Math.max(d.headDim, d.valueDim), d.keySeq * Math.max(d.headDim, d.valueDim));
            on = new GpuBackend({ ...backend.context, maxBinding: c.chunkSlots * slotBytes });
          }
          const method = c.definition.create(on, c.config);
          const what = `${c.what} ${describeCheckShape(decode ? { ...c.shape, querySeq: 1 } : c.shape)}`;
          const resident = on.upload(input, d);
          try {
            await expectKeyStrideHonoured(on, `${what}: runResident`, resident, (r) => method.runResident!(r, { density: false }));
            if (decode) {
              await expectKeyStrideHonoured(on, `${what}: decodeResident`, resident, async (r: ResidentAttention) => {
                const stepper = await method.decodeResident!(r);
                try {
                  await stepper.step();
                } finally {
                  stepper.release();
                }
              });
            }
          } finally {
            on.release(resident);
          }
        }
      }
    },
  };
}

/** Every GPU check of this package, in the order they run. */
export const gpuChecks: readonly GpuCheck[] = [...mobaChecks, ...nsaChecks, ...indexerChecks, keyStrideCheck()];
