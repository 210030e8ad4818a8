/**
 * GPU-vs-CPU checks of this family's GPU methods (run in headless Chromium's WebGPU by
 * `gpu-checks.test.ts`, and in Node where Dawn loads). Each compares the GPU method with the CPU
 * method of the same id and config: the same selection and output / lse within 1e-4 relative.
 *
 * Selections are compared row by row. The CPU ranks blocks with float64 scores, the GPU with
 * float32 ones, so two candidates whose scores tie to ~1e-6 relative may legitimately swap; a
 * differing row is accepted only when the CPU's own (float64) scores show such a near-tie, i.e.
 * the GPU row is a valid top-k of the CPU scores within 1e-4 relative. Outputs are then compared
 * with the CPU method's (identical selection) or with core's `sparseAttention` over the GPU's
 * selection (near-tie swaps), so attention is always checked exactly.
 */
import {
  ConfigError,
  NumericError,
  ShapeError,
  densePairCount,
  dims4,
  rowOffset,
  sliceSeq,
  sparseAttention,
  tensor,
  validateAttentionInput,
  type AttentionInput,
  type AttentionResult,
  type Selection,
} from '@sparse-attn/core';
import {
  GPU_TOLERANCE,
  GpuBackend,
  type GpuMethodDefinition,
  type GpuWindowDecoder,
  checkInput,
  countPairs,
  decodeResidentCheck,
  expectClose,
  expectKeyStrideHonoured,
  expectSameSelection,
  oneSubmissionCheck,
  type CheckShape,
  type GpuCheck,
} from '@sparse-attn/backend-gpu';
import { BlockRepresentatives } from '../block-representatives.js';
import type { CachedDecoder } from '../cached-decoder.js';
import { landmarkRetrievalConfigSchema, landmarkRetrievalMethod, type LandmarkRetrievalConfig } from '../landmark-retrieval.js';
import { hipMethod } from '../hip-attention.js';
import { landmarkConfigSchema, landmarkMethod, type LandmarkConfig } from '../landmark-attention.js';
import { gpuLandmarkMethod, landmarkAttend } from './gpu-landmark.js';
import { gpuHipMethod } from './gpu-hip.js';
import { gpuLandmarkRetrievalMethod, retrievalAttend } from './gpu-landmark-retrieval.js';
import { scoreRowStride } from './retrieval-top-k-wgsl.js';

function lseOf(result: AttentionResult, what: string): Float32Array {
  const lse = (result as { lse?: Float32Array }).lse;
  if (!lse) throw new Error(`${what}: the result carries no lse`);
  return lse;
}

function selectionOf(result: AttentionResult, what: string): Selection {
  if (!result.selection) throw new Error(`${what}: the result carries no selection`);
  return result.selection;
}

/** The CPU selector's accumulated (float64) scores of candidates 1 .. current−1 of one row. */
function cpuRowScores(input: AttentionInput, config: LandmarkRetrievalConfig, reps: BlockRepresentatives, stream: number, i: number): Float64Array {
  const qDims = dims4(input.q, 'q');
  const d = validateAttentionInput(input);
  const current = Math.floor((d.queryOffset + i) / config.blockSize);
  const b = Math.floor(stream / d.kvHeads);
  const kvh = stream % d.kvHeads;
  const acc = new Float64Array(current).fill(config.groupReduce === 'max-score' ? -Infinity : 0);
  const scores = new Float64Array(current);
  for (let g = 0; g < d.groupSize; g++) {
    reps.score(stream, input.q.data, rowOffset(qDims, b, kvh * d.groupSize + g, i), 1, current, scores);
    if (config.groupReduce === 'max-score') {
      for (let j = 1; j < current; j++) acc[j] = Math.max(acc[j]!, scores[j]!);
      continue;
    }
    let max = -Infinity;
    for (let j = 1; j < current; j++) max = Math.max(max, scores[j]!);
    let sum = 0;
    for (let j = 1; j < current; j++) sum += Math.exp(d.scale * (scores[j]! - max));
    for (let j = 1; j < current; j++) acc[j]! += Math.exp(d.scale * (scores[j]! - max)) / sum;
  }
  return acc;
}

function rowOf(s: Selection, r: number): number[] {
  return Array.from(s.indices.subarray(s.offsets[r]!, s.offsets[r + 1]!));
}

/**
 * Compares the GPU selection with the CPU's row by row; a differing row must be a near-tie swap
 * (see the file comment). Returns the number of such rows.
 */
function checkSelection(input: AttentionInput, config: LandmarkRetrievalConfig, gpu: Selection, cpu: Selection): number {
  const d = validateAttentionInput(input);
  for (const key of ['kind', 'blockSize', 'headScope', 'batch', 'heads', 'rows', 'queryBlockSize', 'keySeq'] as const) {
    if (gpu[key] !== cpu[key]) throw new Error(`selection ${key}: GPU ${String(gpu[key])}, CPU ${String(cpu[key])}`);
  }
  let reps: BlockRepresentatives | undefined;
  let swapped = 0;
  for (let r = 0; r < cpu.offsets.length - 1; r++) {
    const g = rowOf(gpu, r);
    const c = rowOf(cpu, r);
    if (g.length === c.length && g.every((x, t) => x === c[t])) continue;
    const stream = Math.floor(r / d.querySeq);
    const i = r % d.querySeq;
    const current = Math.floor((d.queryOffset + i) / config.blockSize);
    const describe = `row ${r} (query ${i}): GPU [${g.join(', ')}], CPU [${c.join(', ')}]`;
    if (g.length !== c.length || g[0] !== 0 || g.at(-1) !== current) throw new Error(`selection differs: ${describe}`);
    if (!reps) {
      reps = new BlockRepresentatives(config.representative, d.batch * d.kvHeads, d.headDim, config.blockSize);
      reps.update(input.k, d.kDims, d.keySeq);
    }
    const scores = cpuRowScores(input, config, reps, stream, i);
    const picked = new Set(g.slice(1, -1));
    let minPicked = Infinity;
    let maxOther = -Infinity;
    for (let j = 1; j < current; j++) {
      if (picked.has(j)) minPicked = Math.min(minPicked, scores[j]!);
      else maxOther = Math.max(maxOther, scores[j]!);
    }
    if (picked.size !== config.topK || maxOther > minPicked + GPU_TOLERANCE * Math.max(1e-3, Math.abs(minPicked))) {
      throw new Error(`selection differs beyond a float32 near-tie (kept ${minPicked}, dropped ${maxOther}): ${describe}`);
    }
    swapped++;
  }
  return swapped;
}

/** GPU result vs CPU result: selection (near-tie swaps allowed), output and lse. */
function compareRetrieval(input: AttentionInput, config: LandmarkRetrievalConfig, gpu: AttentionResult, cpu: AttentionResult): void {
  if (gpu.backend.backend !== 'gpu') throw new Error(`backend recorded as ${JSON.stringify(gpu.backend)}`);
  const gpuSelection = selectionOf(gpu, 'GPU');
  const swapped = checkSelection(input, config, gpuSelection, selectionOf(cpu, 'CPU'));
  if (swapped === 0) {
    expectClose('output vs the CPU method', gpu.output.data, cpu.output.data);
    expectClose('lse vs the CPU method', lseOf(gpu, 'GPU'), lseOf(cpu, 'CPU'));
  } else {
    const exact = sparseAttention({ ...input, causal: true }, gpuSelection);
    expectClose('output vs core sparseAttention over the GPU selection', gpu.output.data, exact.output.data);
    expectClose('lse vs core sparseAttention over the GPU selection', lseOf(gpu, 'GPU'), exact.lse);
  }
  for (const key of Object.keys(cpu.diagnostics ?? {})) {
    if (gpu.diagnostics?.[key] !== cpu.diagnostics![key]) throw new Error(`diagnostic ${key}: GPU ${gpu.diagnostics?.[key]}, CPU ${cpu.diagnostics![key]}`);
  }
  if (gpu.stats.pairs !== cpu.stats.pairs && swapped === 0) throw new Error(`pairs: GPU ${gpu.stats.pairs}, CPU ${cpu.stats.pairs}`);
}

/**
 * A backend that fails the check if anything but its limits is touched (bad input must throw
 * before any GPU work): `context` answers with the real device's limits only.
 */
function untouchable(real: GpuBackend): GpuBackend {
  const context = { maxBinding: real.context.maxBinding, maxWorkgroupBytes: real.context.maxWorkgroupBytes };
  return new Proxy({} as GpuBackend, {
    get(_target, key) {
      if (key === 'context') return context;
      throw new Error(`the GPU backend was used (${String(key)}) before the input was rejected`);
    },
  });
}

async function expectThrows(what: string, kind: typeof ConfigError | typeof ShapeError | typeof NumericError, run: () => unknown): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (error instanceof kind) return;
    throw new Error(`${what}: threw ${(error as Error).name}: ${(error as Error).message}, expected ${kind.name}`);
  }
  throw new Error(`${what}: did not throw`);
}

const retrievalCases: readonly { config: Partial<LandmarkRetrievalConfig>; shape: CheckShape; kind?: 'structured'; label: string }[] = [
  { label: 'quest, sum-probability, S not a multiple of the block', config: { blockSize: 16, topK: 3 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 150, headDim: 32 }, kind: 'structured' },
  { label: 'GQA Hq4/Hkv2, batch 2', config: { blockSize: 8, topK: 2 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 100, headDim: 16 } },
  { label: 'mean, max-score, GQA', config: { blockSize: 8, topK: 2, representative: 'mean', groupReduce: 'max-score' }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 90, headDim: 16 } },
  { label: 'mean, sum-probability, group 4, Dv ≠ D', config: { blockSize: 16, topK: 2, representative: 'mean' }, shape: { batch: 1, queryHeads: 4, kvHeads: 1, seq: 130, headDim: 24, valueDim: 20 } },
  { label: 'quest, max-score, 5 queries at the end of 77 keys', config: { blockSize: 16, topK: 1, groupReduce: 'max-score' }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 77, headDim: 16, querySeq: 5 } },
  { label: 'topK 0 (first + own block)', config: { blockSize: 8, topK: 0 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 60, headDim: 16 } },
  { label: 'length 1, defaults', config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1, headDim: 16 } },
  { label: 'defaults (block 64, top 8), S 300, D 64', config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 300, headDim: 64 } },
  { label: 'S 2048, D 64, block 32, top 4', config: { blockSize: 32, topK: 4 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 2048, headDim: 64 }, kind: 'structured' },
];

const hipCases: readonly { config: Record<string, unknown>; shape: CheckShape; kind?: 'structured'; label: string }[] = [
  { label: 'chunk 2, query block 8 / stride 2, S not a multiple of the blocks', config: { topK: 16, chunkSize: 2, queryBlockSize: 8, queryStride: 2, sinkTokens: 2, windowTokens: 8 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 150, headDim: 32 }, kind: 'structured' },
  { label: 'GQA Hq4/Hkv2, batch 2, chunk 1', config: { topK: 8, chunkSize: 1, queryBlockSize: 4, queryStride: 1, sinkTokens: 1, windowTokens: 4 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 100, headDim: 16 } },
  { label: 'chunk 3 (kept chunks overshoot topK), no sinks', config: { topK: 10, chunkSize: 3, queryBlockSize: 5, queryStride: 3, sinkTokens: 0, windowTokens: 6 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 131, headDim: 16 } },
  { label: '5 queries at the end of 77 keys, Dv ≠ D', config: { topK: 12, chunkSize: 2, queryBlockSize: 4, queryStride: 2, windowTokens: 4 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 77, headDim: 16, valueDim: 12, querySeq: 5 } },
  { label: 'length 1, defaults', config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1, headDim: 16 } },
  { label: 'defaults but topK 64, S 300, D 64', config: { topK: 64 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 300, headDim: 64 } },
  { label: "'bound' representative (GPU range-bound tree), GQA", config: { topK: 16, chunkSize: 2, queryBlockSize: 8, queryStride: 2, sinkTokens: 2, windowTokens: 8, representative: 'bound' }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32 }, kind: 'structured' },
  { label: 'D 18 (scalar key loads: D not a multiple of 4)', config: { topK: 8, chunkSize: 2, queryBlockSize: 4, queryStride: 1, sinkTokens: 1, windowTokens: 4 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 90, headDim: 18 } },
  { label: "'bound', chunk 3, batch 2, 5 queries at the end of 97 keys", config: { topK: 9, chunkSize: 3, queryBlockSize: 4, queryStride: 1, sinkTokens: 1, windowTokens: 4, representative: 'bound' }, shape: { batch: 2, queryHeads: 2, kvHeads: 2, seq: 97, headDim: 16, querySeq: 5 } },
];

const landmarkCases: readonly { config: Record<string, unknown>; shape: CheckShape; kind?: 'structured'; label: string }[] = [
  { label: 'defaults (ℓ 50, top 4), S 300', config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 300, headDim: 32 } },
  { label: 'GQA Hq4/Hkv2, batch 2, ℓ 7, top 2', config: { blockLength: 7, topK: 2 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 100, headDim: 16 } },
  { label: 'topK 0 (every earlier block, the training-time form), Dv ≠ D', config: { blockLength: 5, topK: 0 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 77, headDim: 16, valueDim: 12 } },
  { label: '5 queries at the end of 120 keys', config: { blockLength: 9, topK: 3 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 120, headDim: 16, querySeq: 5 } },
  { label: 'length 1, defaults', config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1, headDim: 16 } },
  { label: 'ℓ 15, top 3, S 250, D 64 (structured)', config: { blockLength: 15, topK: 3 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 250, headDim: 64 }, kind: 'structured' },
  { label: 'ℓ 70 (own block larger than the own-block kernel: the per-row own part), top 2, GQA, Dv ≠ D', config: { blockLength: 70, topK: 2 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 300, headDim: 16, valueDim: 12 } },
  // Decode-shaped calls (≤ 16 queries per head): the grouped softmax as split-K partials and one merge.
  { label: 'decode-shaped: ℓ 70 (a block longer than the workgroup), top 2, GQA, Dv ≠ D, 5 queries at the end of 300 keys', config: { blockLength: 70, topK: 2 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 300, headDim: 16, valueDim: 12, querySeq: 5 } },
  { label: 'decode-shaped: ℓ 9, top 12 (more than the earlier blocks), batch 2, 16 queries at the end of 100 keys', config: { blockLength: 9, topK: 12 }, shape: { batch: 2, queryHeads: 2, kvHeads: 1, seq: 100, headDim: 16, querySeq: 16 } },
  { label: 'decode-shaped: ℓ 6, top 2, 7 queries at the end of 42 keys (every position of the own block, its landmark included)', config: { blockLength: 6, topK: 2 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 42, headDim: 16, querySeq: 7 } },
  { label: 'decode-shaped: defaults, D 128, one query at the end of 1 000 keys', config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1000, headDim: 128, querySeq: 1 } },
];

/** Every GPU check of this package, in the order they run. */
export const gpuChecks: GpuCheck[] = [
  ...retrievalCases.map(({ label, config, shape, kind }, n): GpuCheck => ({
    name: `landmark-retrieval prefill equals the CPU method: ${label}`,
    async run(backend) {
      const input = checkInput(shape, 100 + n, kind);
      const resolved = landmarkRetrievalConfigSchema.parse(config);
      const gpu = await gpuLandmarkRetrievalMethod.create(backend, config).prefill(input);
      const cpu = landmarkRetrievalMethod.create(config).prefill(input);
      compareRetrieval(input, resolved, gpu, cpu);
    },
  })),
  {
    name: 'landmark-retrieval decode steps equal the CPU decoder (prompt, single tokens across block ends, a 3-token step, growth from 8 rows, reset, context; GQA)',
    async run(backend) {
      const config = { blockSize: 8, topK: 2 };
      const resolved = landmarkRetrievalConfigSchema.parse(config);
      const shape = { batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 };
      const full = checkInput({ ...shape, seq: 52 }, 7);
      // 8 rows up front: the cache and the kept representatives double four times on the way.
      const gpuDecoder = gpuLandmarkRetrievalMethod.create(backend, config).createDecoder!(shape, { initialCapacity: 8 }) as GpuWindowDecoder;
      const cpuDecoder = landmarkRetrievalMethod.create(config).createDecoder(shape) as CachedDecoder;
      const compareStep = async (from: number, to: number) => {
        const step = { q: sliceSeq(full.q, from, to), k: sliceSeq(full.k, from, to), v: sliceSeq(full.v, from, to) };
        const gpu = await gpuDecoder.step(step);
        const cpu = cpuDecoder.step(step);
        const seen = { q: step.q, k: sliceSeq(full.k, 0, to), v: sliceSeq(full.v, 0, to), causal: true };
        try {
          compareRetrieval(seen, resolved, gpu, cpu);
        } catch (error) {
          throw new Error(`decode step at ${from}..${to}: ${(error as Error).message}`);
        }
      };
      try {
        const steps: [number, number][] = [[0, 37]];
        for (let t = 37; t < 44; t++) steps.push([t, t + 1]);
        steps.push([44, 47]);
        for (let t = 47; t < 52; t++) steps.push([t, t + 1]);
        for (const [from, to] of steps) await compareStep(from, to);
        if (gpuDecoder.length !== 52) throw new Error(`decoder length ${gpuDecoder.length}, expected 52`);
        gpuDecoder.reset();
        cpuDecoder.reset();
        if ((gpuDecoder.length as number) !== 0) throw new Error('reset kept tokens');
        // Context without outputs (its blocks are pooled by the next step), then steps again.
        gpuDecoder.appendContext(sliceSeq(full.k, 0, 30), sliceSeq(full.v, 0, 30));
        cpuDecoder.appendContext(sliceSeq(full.k, 0, 30), sliceSeq(full.v, 0, 30));
        for (let t = 30; t < 34; t++) await compareStep(t, t + 1);
      } finally {
        gpuDecoder.destroy();
      }
    },
  },
  {
    name: 'landmark-retrieval rejects bad input with the CPU method\'s typed errors before any GPU work',
    async run(backend) {
      const untouched = untouchable(backend);
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 20, headDim: 16 }, 3);
      const method = gpuLandmarkRetrievalMethod.create(untouched, { blockSize: 4, topK: 1 });
      const cpu = landmarkRetrievalMethod.create({ blockSize: 4, topK: 1 });
      await expectThrows('CPU, non-causal', ConfigError, () => cpu.prefill({ ...input, causal: false }));
      await expectThrows('GPU, non-causal', ConfigError, () => method.prefill({ ...input, causal: false }));
      const badHeads = { ...input, k: tensor([1, 3, 20, 16]), v: tensor([1, 3, 20, 16]) };
      await expectThrows('CPU, 2 query heads over 3 KV heads', ShapeError, () => cpu.prefill(badHeads));
      await expectThrows('GPU, 2 query heads over 3 KV heads', ShapeError, () => method.prefill(badHeads));
      await expectThrows('GPU, invalid config', ConfigError, () => gpuLandmarkRetrievalMethod.create(untouched, { blockSize: 0 }));
      await expectThrows('GPU, unknown config key', ConfigError, () => gpuLandmarkRetrievalMethod.create(untouched, { budget: 3 }));
      // The decoder holds its cache on the device from the start (the real backend); a bad step
      // throws before anything is cached or run.
      const decoder = gpuLandmarkRetrievalMethod.create(backend, { blockSize: 4, topK: 1 }).createDecoder!({ batch: 1, queryHeads: 2, kvHeads: 1, headDim: 16 });
      try {
        const step = { q: sliceSeq(input.q, 0, 1), k: sliceSeq(input.k, 0, 2), v: sliceSeq(input.v, 0, 2) };
        await expectThrows('GPU decoder, q and k token counts differ', ShapeError, () => decoder.step(step));
        const nan = { q: sliceSeq(input.q, 0, 1), k: tensor([1, 1, 1, 16], new Float32Array(16).fill(Number.NaN)), v: sliceSeq(input.v, 0, 1) };
        await expectThrows('GPU decoder, NaN keys', NumericError, () => decoder.step(nan));
        if (decoder.length !== 0) throw new Error(`a rejected step cached ${decoder.length} tokens`);
      } finally {
        decoder.destroy();
      }
    },
  },
  {
    name: 'landmark-retrieval split into chunks (small device bindings) picks the same blocks and output',
    async run(backend) {
      const input = checkInput({ batch: 2, queryHeads: 6, kvHeads: 3, seq: 64, headDim: 16 }, 90);
      const small = new GpuBackend({ ...backend.context, maxBinding: 2 * 2 * 64 * 16 * 4 });
      for (const config of [{ blockSize: 8, topK: 2 }, { blockSize: 8, topK: 1, representative: 'mean' as const, groupReduce: 'max-score' as const }]) {
        const gpu = await gpuLandmarkRetrievalMethod.create(small, config).prefill(input);
        compareRetrieval(input, landmarkRetrievalConfigSchema.parse(config), gpu, landmarkRetrievalMethod.create(config).prefill(input));
      }
    },
  },
  {
    name: 'landmark-retrieval scored in many row ranges (64 rows, then 40: a range not a multiple of the 64-row tile), ranked by a thread per row and by a workgroup per row, picks the same blocks and output',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 300, headDim: 32 }, 93, 'structured');
      for (const config of [{ blockSize: 16, topK: 3 }, { blockSize: 16, topK: 2, representative: 'mean' as const, groupReduce: 'max-score' as const }]) {
        const resolved = landmarkRetrievalConfigSchema.parse(config);
        const cpu = landmarkRetrievalMethod.create(config).prefill(input);
        for (const rows of [64, 40]) {
          for (const [ranking, topKRowsMax] of [['a thread per row', 0], ['a workgroup per row', Infinity]] as const) {
            const gpu = await retrievalAttend(backend, resolved, input, rows * scoreRowStride(Math.floor(300 / 16)), topKRowsMax);
            try {
              compareRetrieval(input, resolved, gpu, cpu);
            } catch (error) {
              throw new Error(`${JSON.stringify(config)}, ${rows} rows per range, ${ranking}: ${(error as Error).message}`);
            }
          }
        }
      }
    },
  },
  {
    name: 'landmark-retrieval runResident writes the CPU method\'s output and reports its density',
    async run(backend) {
      const config = { blockSize: 16, topK: 3 };
      const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 200, headDim: 32 }, 44, 'structured');
      const d = validateAttentionInput(input);
      const cpu = landmarkRetrievalMethod.create(config).prefill(input);
      const resident = backend.upload(input, d);
      try {
        const timings = await gpuLandmarkRetrievalMethod.create(backend, config).runResident!(resident);
        const { output } = await backend.readOutput(resident);
        // Selection rows are equal here (the prefill check compares them); density is countPairs over the CPU selection.
        const density = countPairs(selectionOf(cpu, 'CPU'), d) / densePairCount(d);
        if (Math.abs((timings.density ?? NaN) - density) > 1e-12) throw new Error(`density ${timings.density}, CPU selection has ${density}`);
        if (!(timings.selectionMs >= 0 && timings.attentionMs >= 0)) throw new Error(`timings ${JSON.stringify(timings)}`);
        const exactOverGpu = await gpuLandmarkRetrievalMethod.create(backend, config).prefill(input);
        checkSelection(input, landmarkRetrievalConfigSchema.parse(config), selectionOf(exactOverGpu, 'GPU'), selectionOf(cpu, 'CPU'));
        expectClose('resident output vs GPU prefill', output.data, exactOverGpu.output.data);
        expectClose('resident output vs the CPU method', output.data, cpu.output.data);
      } finally {
        backend.release(resident);
      }
    },
  },
  ...hipCases.map(({ label, config, shape, kind }, n): GpuCheck => ({
    name: `hip prefill equals the CPU method: ${label}`,
    async run(backend) {
      const input = checkInput(shape, 200 + n, kind);
      const gpu = await gpuHipMethod.create(backend, config).prefill(input);
      const cpu = hipMethod.create(config).prefill(input);
      compareHip(gpu, cpu);
    },
  })),
  ...(['center', 'bound'] as const).map((representative): GpuCheck => ({
    name: `hip decode steps equal the CPU decoder (prompt, then single tokens; masks refreshed every 3 steps; GQA; ${representative})`,
    async run(backend) {
      const config = { topK: 8, chunkSize: 2, queryBlockSize: 4, queryStride: 2, sinkTokens: 2, windowTokens: 4, refreshInterval: 3, representative };
      const shape = { batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 };
      const full = checkInput({ ...shape, seq: 52 }, 8);
      // The cache on the device from 8 rows (it doubles on the way).
      const gpuDecoder = gpuHipMethod.create(backend, config).createDecoder!(shape, { initialCapacity: 8 }) as GpuWindowDecoder;
      const cpuDecoder = hipMethod.create(config).createDecoder(shape) as CachedDecoder;
      let refreshes = 0;
      const compareStep = async (from: number, to: number) => {
        const step = { q: sliceSeq(full.q, from, to), k: sliceSeq(full.k, from, to), v: sliceSeq(full.v, from, to) };
        const gpu = await gpuDecoder.step(step);
        const cpu = cpuDecoder.step(step);
        refreshes += gpu.diagnostics?.['maskRefreshed'] ?? 0;
        try {
          compareHip(gpu, cpu);
        } catch (error) {
          throw new Error(`decode step at ${from}..${to}: ${(error as Error).message}`);
        }
      };
      try {
        const steps: [number, number][] = [[0, 37]];
        for (let t = 37; t < 52; t++) steps.push([t, t + 1]);
        for (const [from, to] of steps) await compareStep(from, to);
        if (refreshes !== 6) throw new Error(`${refreshes} mask refreshes in 16 steps, expected 6`);
        gpuDecoder.reset();
        cpuDecoder.reset();
        if ((gpuDecoder.length as number) !== 0) throw new Error('reset kept tokens');
        // After a reset: context without outputs, then a first step that searches again.
        gpuDecoder.appendContext(sliceSeq(full.k, 0, 30), sliceSeq(full.v, 0, 30));
        cpuDecoder.appendContext(sliceSeq(full.k, 0, 30), sliceSeq(full.v, 0, 30));
        refreshes = 0;
        for (let t = 30; t < 35; t++) await compareStep(t, t + 1);
        if (refreshes !== 2) throw new Error(`${refreshes} mask refreshes in 5 steps after a reset, expected 2`);
      } finally {
        gpuDecoder.destroy();
      }
    },
  })),
  {
    name: "hip rejects bad input with the CPU method's typed errors before any GPU work (and searches that exceed workgroup memory)",
    async run(backend) {
      const untouched = untouchable(backend);
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 20, headDim: 16 }, 3);
      const config = { topK: 4, queryBlockSize: 4, windowTokens: 4 };
      const method = gpuHipMethod.create(untouched, config);
      const cpu = hipMethod.create(config);
      await expectThrows('CPU, non-causal', ConfigError, () => cpu.prefill({ ...input, causal: false }));
      await expectThrows('GPU, non-causal', ConfigError, () => method.prefill({ ...input, causal: false }));
      const badHeads = { ...input, k: tensor([1, 3, 20, 16]), v: tensor([1, 3, 20, 16]) };
      await expectThrows('CPU, 2 query heads over 3 KV heads', ShapeError, () => cpu.prefill(badHeads));
      await expectThrows('GPU, 2 query heads over 3 KV heads', ShapeError, () => method.prefill(badHeads));
      await expectThrows('GPU, invalid config', ConfigError, () => gpuHipMethod.create(untouched, { topK: 0 }));
      await expectThrows('GPU, a search larger than workgroup memory', ConfigError, () => gpuHipMethod.create(untouched, { topK: 1 << 20, chunkSize: 1 }));
      // The decoder holds its cache on the device from the start (the real backend); a bad step throws before anything is cached.
      const decoder = gpuHipMethod.create(backend, config).createDecoder!({ batch: 1, queryHeads: 2, kvHeads: 1, headDim: 16 });
      try {
        await expectThrows('GPU decoder, q and k token counts differ', ShapeError, () => decoder.step({ q: sliceSeq(input.q, 0, 1), k: sliceSeq(input.k, 0, 2), v: sliceSeq(input.v, 0, 2) }));
        if (decoder.length !== 0) throw new Error(`a rejected step cached ${decoder.length} tokens`);
      } finally {
        decoder.destroy();
      }
    },
  },
  {
    name: 'hip split into chunks (small device bindings) keeps the same tokens and output',
    async run(backend) {
      const input = checkInput({ batch: 2, queryHeads: 6, kvHeads: 3, seq: 64, headDim: 16 }, 91);
      const small = new GpuBackend({ ...backend.context, maxBinding: 2 * 2 * 64 * 16 * 4 });
      const config = { topK: 8, chunkSize: 2, queryBlockSize: 8, queryStride: 2, sinkTokens: 2, windowTokens: 8 };
      compareHip(await gpuHipMethod.create(small, config).prefill(input), hipMethod.create(config).prefill(input));
    },
  },
  {
    name: "hip runResident writes the CPU method's output and reports its density",
    async run(backend) {
      const config = { topK: 16, chunkSize: 2, queryBlockSize: 8, queryStride: 2, sinkTokens: 2, windowTokens: 8 };
      const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 200, headDim: 32 }, 45, 'structured');
      const d = validateAttentionInput(input);
      const cpu = hipMethod.create(config).prefill(input);
      const resident = backend.upload(input, d);
      try {
        const timings = await gpuHipMethod.create(backend, config).runResident!(resident);
        const { output } = await backend.readOutput(resident);
        const density = countPairs(selectionOf(cpu, 'CPU'), d) / densePairCount(d);
        if (Math.abs((timings.density ?? NaN) - density) > 1e-12) throw new Error(`density ${timings.density}, CPU selection has ${density}`);
        if (!(timings.selectionMs >= 0 && timings.attentionMs >= 0)) throw new Error(`timings ${JSON.stringify(timings)}`);
        expectClose('resident output vs the CPU method', output.data, cpu.output.data);
      } finally {
        backend.release(resident);
      }
    },
  },
  ...landmarkCases.map(({ label, config, shape, kind }, n): GpuCheck => ({
    name: `landmark (grouped softmax) prefill equals the CPU method: ${label}`,
    async run(backend) {
      const input = checkInput(shape, 300 + n, kind);
      const gpu = await gpuLandmarkMethod.create(backend, config).prefill(input);
      const cpu = landmarkMethod.create(config).prefill(input);
      compareLandmark(input, landmarkConfigSchema.parse(config), gpu, cpu);
    },
  })),
  {
    name: 'landmark decode steps equal the CPU decoder (prompt, single tokens across landmark positions, a 4-token step, growth from 8 rows, reset, context; GQA)',
    async run(backend) {
      const config = { blockLength: 6, topK: 2 };
      const resolved = landmarkConfigSchema.parse(config);
      const shape = { batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 };
      const full = checkInput({ ...shape, seq: 45 }, 9);
      // The cache on the device from 8 rows: it doubles on the way (the old rows copied on the GPU).
      const gpuDecoder = gpuLandmarkMethod.create(backend, config).createDecoder!(shape, { initialCapacity: 8 }) as GpuWindowDecoder;
      const cpuDecoder = landmarkMethod.create(config).createDecoder(shape) as CachedDecoder;
      const compareStep = async (from: number, to: number) => {
        const step = { q: sliceSeq(full.q, from, to), k: sliceSeq(full.k, from, to), v: sliceSeq(full.v, from, to) };
        const gpu = await gpuDecoder.step(step);
        const cpu = cpuDecoder.step(step);
        try {
          compareLandmark({ q: step.q, k: sliceSeq(full.k, 0, to), v: sliceSeq(full.v, 0, to), causal: true }, resolved, gpu, cpu);
        } catch (error) {
          throw new Error(`decode step at ${from}..${to}: ${(error as Error).message}`);
        }
      };
      try {
        const steps: [number, number][] = [[0, 30]];
        for (let t = 30; t < 37; t++) steps.push([t, t + 1]);
        steps.push([37, 41]);
        for (let t = 41; t < 45; t++) steps.push([t, t + 1]);
        for (const [from, to] of steps) await compareStep(from, to);
        gpuDecoder.reset();
        cpuDecoder.reset();
        gpuDecoder.appendContext(sliceSeq(full.k, 0, 20), sliceSeq(full.v, 0, 20));
        cpuDecoder.appendContext(sliceSeq(full.k, 0, 20), sliceSeq(full.v, 0, 20));
        for (let t = 20; t < 23; t++) await compareStep(t, t + 1);
      } finally {
        gpuDecoder.destroy();
      }
    },
  },
  {
    name: "landmark rejects bad input with the CPU method's typed errors before any GPU work (and the CPU-only positions 'slot')",
    async run(backend) {
      const untouched = untouchable(backend);
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 20, headDim: 16 }, 3);
      const config = { blockLength: 4, topK: 1 };
      const method = gpuLandmarkMethod.create(untouched, config);
      const cpu = landmarkMethod.create(config);
      await expectThrows('CPU, non-causal', ConfigError, () => cpu.prefill({ ...input, causal: false }));
      await expectThrows('GPU, non-causal', ConfigError, () => method.prefill({ ...input, causal: false }));
      const badHeads = { ...input, k: tensor([1, 3, 20, 16]), v: tensor([1, 3, 20, 16]) };
      await expectThrows('CPU, 2 query heads over 3 KV heads', ShapeError, () => cpu.prefill(badHeads));
      await expectThrows('GPU, 2 query heads over 3 KV heads', ShapeError, () => method.prefill(badHeads));
      await expectThrows('GPU, invalid config', ConfigError, () => gpuLandmarkMethod.create(untouched, { blockLength: 0 }));
      await expectThrows("GPU, positions 'slot'", ConfigError, () => gpuLandmarkMethod.create(untouched, { positions: 'slot' }));
      // The decoder holds its cache on the device from the start (the real backend); a bad step throws before anything is cached.
      const decoder = gpuLandmarkMethod.create(backend, config).createDecoder!({ batch: 1, queryHeads: 2, kvHeads: 1, headDim: 16 });
      try {
        await expectThrows('GPU decoder, q and k token counts differ', ShapeError, () => decoder.step({ q: sliceSeq(input.q, 0, 1), k: sliceSeq(input.k, 0, 2), v: sliceSeq(input.v, 0, 2) }));
        if (decoder.length !== 0) throw new Error(`a rejected step cached ${decoder.length} tokens`);
      } finally {
        decoder.destroy();
      }
    },
  },
  ...(['rows', 'key-blocks'] as const).map((executor): GpuCheck => ({
    name: `landmark's retrieved-block partials through the ${executor} executor (GQA Hq4/Hkv2, batch 2, ℓ 7 and ℓ 20, ragged last block) equal the CPU method`,
    async run(backend) {
      const forced = new GpuBackend(backend.context);
      forced.sparseExecutor = executor;
      const input = checkInput({ batch: 2, queryHeads: 4, kvHeads: 2, seq: 137, headDim: 16 }, 95);
      for (const config of [{ blockLength: 7, topK: 3 }, { blockLength: 20, topK: 2 }]) {
        try {
          compareLandmark(input, landmarkConfigSchema.parse(config), await gpuLandmarkMethod.create(forced, config).prefill(input), landmarkMethod.create(config).prefill(input));
        } catch (error) {
          throw new Error(`${JSON.stringify(config)}: ${(error as Error).message}`);
        }
      }
    },
  })),
  {
    name: 'landmark split into chunks (small device bindings) reads the same blocks and gives the same output',
    async run(backend) {
      const input = checkInput({ batch: 2, queryHeads: 6, kvHeads: 3, seq: 64, headDim: 16 }, 92);
      const small = new GpuBackend({ ...backend.context, maxBinding: 2 * 2 * 64 * 16 * 4 });
      const config = { blockLength: 5, topK: 2 };
      compareLandmark(input, landmarkConfigSchema.parse(config), await gpuLandmarkMethod.create(small, config).prefill(input), landmarkMethod.create(config).prefill(input));
    },
  },
  {
    name: 'landmark scored in many row ranges (64 rows, then 40: a range not a multiple of the 64-row tile), ranked by a thread per row and by a workgroup per row, reads the same blocks and gives the same output',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 250, headDim: 32 }, 94, 'structured');
      const config = landmarkConfigSchema.parse({ blockLength: 9, topK: 3 });
      const cpu = landmarkMethod.create(config).prefill(input);
      for (const rows of [64, 40]) {
        for (const [ranking, topKRowsMax] of [['a thread per row', 0], ['a workgroup per row', Infinity]] as const) {
          try {
            compareLandmark(input, config, await landmarkAttend(backend, config, input, rows * scoreRowStride(Math.floor(249 / 10)), topKRowsMax), cpu);
          } catch (error) {
            throw new Error(`${rows} rows per range, ${ranking}: ${(error as Error).message}`);
          }
        }
      }
    },
  },
  ...[{ blockLength: 9, topK: 3 }, { blockLength: 9, topK: 0 }, { blockLength: 20, topK: 2 }].map((config): GpuCheck => ({
    name: `landmark runResident writes the CPU method's output and reports its density (a prefill of 200 queries; a 3-query step in one submission, as split-K partials; 20 queries at the end of 2 000 keys, copying only their retrieved blocks): ${JSON.stringify(config)}`,
    async run(backend) {
      for (const [querySeq, seq] of [[200, 200], [3, 200], [20, 2000]] as const) {
        const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq, headDim: 32, querySeq }, 46);
        const d = validateAttentionInput(input);
        const cpu = landmarkMethod.create(config).prefill(input);
        const resident = backend.upload(input, d);
        try {
          const timings = await gpuLandmarkMethod.create(backend, config).runResident!(resident);
          const { output } = await backend.readOutput(resident);
          if (Math.abs((timings.density ?? NaN) - cpu.stats.density) > 1e-12) throw new Error(`${querySeq} queries: density ${timings.density}, the CPU method reports ${cpu.stats.density}`);
          if (!(timings.selectionMs >= 0 && timings.attentionMs >= 0)) throw new Error(`timings ${JSON.stringify(timings)}`);
          expectClose(`resident output vs the CPU method (${querySeq} queries)`, output.data, cpu.output.data);
        } finally {
          backend.release(resident);
        }
      }
    },
  })),
  {
    // A decoder's GpuKVCache hands out its slots `capacity` rows apart (chunk.keyStride): every kernel of
    // the family that reads a chunk's k or v must index slot s's key t at row `s · keyStride + t`.
    name: 'landmark, landmark-retrieval and hip read keys at slot · keyStride (a KV cache view with spare rows) as over compact keys: runResident (GQA Hq4/Hkv2, batch 2, S 151, Dv ≠ D) of a prefill, a decode-shaped call and 17 queries, and landmark-retrieval decodeResident',
    async run(backend) {
      const shape = { batch: 2, queryHeads: 4, kvHeads: 2, seq: 151, headDim: 32, valueDim: 24 };
      const cases: readonly [string, GpuMethodDefinition, Record<string, unknown>][] = [
        // Landmark scoring, top-k, own blocks, landmark-free copies, sparse partials and gate folds (a decode-shaped call: split-K partials and their merge).
        ['landmark ℓ 7, top 3', gpuLandmarkMethod, { blockLength: 7, topK: 3 }],
        // 17 queries over 75 blocks: a copy of only the retrieved blocks.
        ['landmark ℓ 1, top 1', gpuLandmarkMethod, { blockLength: 1, topK: 1 }],
        // Every earlier block: the grouped softmax kernel over all of them.
        ['landmark ℓ 7, top 0', gpuLandmarkMethod, { blockLength: 7, topK: 0 }],
        // The own part by the per-row grouped softmax kernel (a block larger than the own-block kernel).
        ['landmark ℓ 70, top 1', gpuLandmarkMethod, { blockLength: 70, topK: 1 }],
        ['landmark-retrieval quest', gpuLandmarkRetrievalMethod, { blockSize: 16, topK: 3 }],
        ['landmark-retrieval mean, max-score', gpuLandmarkRetrievalMethod, { blockSize: 16, topK: 3, representative: 'mean', groupReduce: 'max-score' }],
        ['hip center', gpuHipMethod, { topK: 16, chunkSize: 2, queryBlockSize: 8, queryStride: 2, sinkTokens: 2, windowTokens: 8 }],
        ["hip 'bound' (range-bound tree)", gpuHipMethod, { topK: 9, chunkSize: 3, queryBlockSize: 8, queryStride: 2, sinkTokens: 1, windowTokens: 8, representative: 'bound' }],
      ];
      for (const [n, querySeq] of [shape.seq, 1, 17].entries()) {
        const resident = backend.upload(checkInput({ ...shape, querySeq }, 96 + n));
        try {
          for (const [label, definition, config] of cases) {
            const method = definition.create(backend, config);
            await expectKeyStrideHonoured(backend, `${label}: runResident of ${querySeq} queries`, resident, (r) => method.runResident!(r));
            if (querySeq === 1 && method.decodeResident) {
              await expectKeyStrideHonoured(backend, `${label}: decodeResident (two steps)`, resident, async (r) => {
                const stepper = await method.decodeResident!(r);
                try {
                  await stepper.step();
                  await stepper.step();
                } finally {
                  stepper.release();
                }
              });
            }
          }
        } finally {
          backend.release(resident);
        }
      }
    },
  },
  // Kept-state decode steps (the benchmark's decode rows): representatives pooled once, then reused.
  decodeResidentCheck(gpuLandmarkRetrievalMethod, { blockSize: 16, topK: 3 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 203, headDim: 32 }, 330),
  decodeResidentCheck(gpuLandmarkRetrievalMethod, { blockSize: 16, topK: 4, representative: 'mean', groupReduce: 'max-score' }, { batch: 1, queryHeads: 6, kvHeads: 2, seq: 170, headDim: 16 }, 331),
  // The benchmark's timed calls, recorded as one submission.
  oneSubmissionCheck(gpuLandmarkMethod, { blockLength: 16, topK: 3 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 16 }, 332),
  oneSubmissionCheck(gpuHipMethod, {}, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 300, headDim: 32 }, 333),
  oneSubmissionCheck(gpuLandmarkRetrievalMethod, { blockSize: 16, topK: 3 }, { batch: 2, queryHeads: 4, kvHeads: 2, seq: 203, headDim: 32 }, 334),
];

/**
 * Landmark: the GPU reads the CPU's blocks (a differing row only as a float32 near-tie of
 * landmark scores, checked against the CPU's float64 scores), and its output and lse equal the
 * grouped softmax evaluated here in float64 over the GPU's rows (the CPU method returns no lse):
 *   Z = Σ_{own block, j ≤ p} e^{s_j} + Σ_{b retrieved} e^{s_{L_b}},   lse = log Z,
 *   o = (Σ_own e^{s_j} v_j + Σ_b e^{s_{L_b}} softmax_{b \ L_b}(s) · v) / Z.
 * With identical rows the output is also compared with the CPU method's.
 */
function compareLandmark(input: AttentionInput, config: LandmarkConfig, gpu: AttentionResult, cpu: AttentionResult): void {
  if (gpu.backend.backend !== 'gpu') throw new Error(`backend recorded as ${JSON.stringify(gpu.backend)}`);
  const g = selectionOf(gpu, 'GPU');
  const c = selectionOf(cpu, 'CPU');
  for (const key of ['kind', 'blockSize', 'headScope', 'batch', 'heads', 'rows', 'queryBlockSize', 'keySeq'] as const) {
    if (g[key] !== c[key]) throw new Error(`selection ${key}: GPU ${String(g[key])}, CPU ${String(c[key])}`);
  }
  const d = validateAttentionInput(input);
  const qDims = dims4(input.q, 'q');
  const span = config.blockLength + 1;
  const dot = (qo: number, b: number, kvh: number, t: number) => {
    const ko = rowOffset(d.kDims, b, kvh, t);
    let s = 0;
    for (let x = 0; x < d.headDim; x++) s += input.q.data[qo + x]! * input.k.data[ko + x]!;
    return s * d.scale;
  };
  const expectedLse = new Float32Array(d.batch * d.queryHeads * d.querySeq);
  const expectedOut = new Float32Array(expectedLse.length * d.valueDim);
  let swapped = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      const kvh = Math.floor(h / d.groupSize);
      for (let i = 0; i < d.querySeq; i++) {
        const row = (b * d.queryHeads + h) * d.querySeq + i;
        const qo = rowOffset(qDims, b, h, i);
        const p = d.queryOffset + i;
        const own = Math.floor(p / span) * span;
        const gpuRow = rowOf(g, row);
        const cpuRow = rowOf(c, row);
        if (gpuRow.length !== cpuRow.length || gpuRow.some((x, t) => x !== cpuRow[t])) {
          const describe = `row ${row}: GPU [${gpuRow.join(', ')}], CPU [${cpuRow.join(', ')}]`;
          if (gpuRow.length !== cpuRow.length || gpuRow.at(-1) !== own / span) throw new Error(`selection differs: ${describe}`);
          const picked = new Set(gpuRow.slice(0, -1));
          let minPicked = Infinity;
          let maxOther = -Infinity;
          for (let j = 0; j < own / span; j++) {
            const s = dot(qo, b, kvh, j * span + config.blockLength);
            if (picked.has(j)) minPicked = Math.min(minPicked, s);
            else maxOther = Math.max(maxOther, s);
          }
          if (maxOther > minPicked + GPU_TOLERANCE * Math.max(1, Math.abs(minPicked))) throw new Error(`selection differs beyond a float32 near-tie (kept ${minPicked}, dropped ${maxOther}): ${describe}`);
          swapped++;
        }
        // (log-weight, value vector) terms of the grouped softmax over the GPU's row.
        const terms: { w: number; v: Float64Array }[] = [];
        const valueAt = (t: number) => Float64Array.from(input.v.data.subarray(rowOffset(d.vDims, b, kvh, t), rowOffset(d.vDims, b, kvh, t) + d.valueDim));
        for (let t = own; t < Math.min(p + 1, own + config.blockLength); t++) terms.push({ w: dot(qo, b, kvh, t), v: valueAt(t) });
        for (const block of gpuRow.slice(0, -1)) {
          const start = block * span;
          const scores = Array.from({ length: config.blockLength }, (_, t) => dot(qo, b, kvh, start + t));
          const m = Math.max(...scores);
          const weights = scores.map((s) => Math.exp(s - m));
          const total = weights.reduce((x, y) => x + y, 0);
          const v = new Float64Array(d.valueDim);
          weights.forEach((w, t) => valueAt(start + t).forEach((x, ch) => (v[ch]! += (w / total) * x)));
          terms.push({ w: dot(qo, b, kvh, start + config.blockLength), v });
        }
        const m = Math.max(...terms.map((t) => t.w));
        let z = 0;
        const o = new Float64Array(d.valueDim);
        for (const t of terms) {
          const e = Math.exp(t.w - m);
          z += e;
          t.v.forEach((x, ch) => (o[ch]! += e * x));
        }
        expectedLse[row] = m + Math.log(z);
        o.forEach((x, ch) => (expectedOut[row * d.valueDim + ch] = x / z));
      }
    }
  }
  expectClose('output vs the float64 grouped softmax over the GPU rows', gpu.output.data, expectedOut);
  expectClose('lse vs the float64 grouped softmax over the GPU rows', lseOf(gpu, 'GPU'), expectedLse);
  if (swapped === 0) expectClose('output vs the CPU method', gpu.output.data, cpu.output.data);
  for (const key of ['meanRetrievedBlocks', 'landmarksScored']) {
    if (gpu.diagnostics?.[key] !== cpu.diagnostics?.[key]) throw new Error(`diagnostic ${key}: GPU ${gpu.diagnostics?.[key]}, CPU ${cpu.diagnostics?.[key]}`);
  }
  if (gpu.stats.pairs !== cpu.stats.pairs) throw new Error(`pairs: GPU ${gpu.stats.pairs}, CPU ${cpu.stats.pairs}`);
}

/** HiP: the GPU keeps exactly the CPU's tokens per row, and output and lse agree. */
function compareHip(gpu: AttentionResult, cpu: AttentionResult): void {
  if (gpu.backend.backend !== 'gpu') throw new Error(`backend recorded as ${JSON.stringify(gpu.backend)}`);
  const g = selectionOf(gpu, 'GPU');
  const c = selectionOf(cpu, 'CPU');
  expectSameSelection('HiP', g, c);
  expectClose('output vs the CPU method', gpu.output.data, cpu.output.data);
  expectClose('lse vs the CPU method', lseOf(gpu, 'GPU'), lseOf(cpu, 'CPU'));
  // boundTreeBytes differs by design with 'bound' (the CPU reports its growable tree's capacity).
  for (const key of (cpu.diagnostics?.['boundTreeBytes'] ? ['meanSelectedKeys', 'maskRefreshed'] : ['meanSelectedKeys', 'maskRefreshed', 'boundTreeBytes'])) {
    if (gpu.diagnostics?.[key] !== cpu.diagnostics?.[key]) throw new Error(`diagnostic ${key}: GPU ${gpu.diagnostics?.[key]}, CPU ${cpu.diagnostics?.[key]}`);
  }
  if (gpu.stats.pairs !== cpu.stats.pairs) throw new Error(`pairs: GPU ${gpu.stats.pairs}, CPU ${cpu.stats.pairs}`);
}