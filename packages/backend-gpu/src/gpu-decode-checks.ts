import {
  ShapeError,
  createWorkload,
  denseMethod,
  referenceAttention,
  relativeL2Error,
  sliceSeq,
  sparseAttention,
  tensor,
  validateAttentionInput,
  type AttentionInput,
  type AttentionResult,
  type Selection,
  type Tensor,
} from '@sparse-attn/core';
import { blockTopKConfigSchema, blockTopKMethod } from './block-top-k.js';
import { chunkKeyStride, type GpuBackend, type ResidentAttention } from './gpu-backend.js';
import { GPU_TOLERANCE, checkInput, describeCheckShape, expectClose, type CheckShape, type GpuCheck } from './gpu-checks.js';
import { lastQueryView, runDecodeAttention, splitKPlan } from './gpu-decode.js';
import { GpuKVCache } from './gpu-kv-cache.js';
import { gpuBlockTopKMethod, gpuDenseMethod, type GpuAttentionDecoder, type GpuMethodDefinition } from './gpu-methods.js';

/** A decode workload: the whole sequence's q, k, v (a causal prompt followed by decode steps). */
export interface DecodeCase {
  readonly batch: number;
  readonly queryHeads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly valueDim?: number;
  /** Tokens per step; the first is the prompt (chunked prefill), the sum is the sequence length. */
  readonly steps: readonly number[];
  readonly seed: number;
}

/** The full q/k/v of a decode case (gaussian, or structured keys with salient blocks). */
export function decodeCaseInput(c: DecodeCase, kind: 'gaussian' | 'structured' = 'gaussian'): AttentionInput {
  const seq = c.steps.reduce((a, b) => a + b, 0);
  return createWorkload(kind, { batch: c.batch, queryHeads: c.queryHeads, kvHeads: c.kvHeads, seqLength: seq, headDim: c.headDim, valueDim: c.valueDim ?? c.headDim, seed: c.seed }).input;
}

/** The step inputs of a decode case: q, k, v of each step's new tokens. */
export function decodeStepInputs(input: AttentionInput, steps: readonly number[]): AttentionInput[] {
  const out: AttentionInput[] = [];
  let at = 0;
  for (const t of steps) {
    out.push({ q: sliceSeq(input.q, at, at + t), k: sliceSeq(input.k, at, at + t), v: sliceSeq(input.v, at, at + t), causal: true });
    at += t;
  }
  return out;
}

/** The attention call a decoder's step `index` computes: its queries over every key cached so far. */
export function decodeStepCall(input: AttentionInput, steps: readonly number[], index: number): AttentionInput {
  const end = steps.slice(0, index + 1).reduce((a, b) => a + b, 0);
  return { q: sliceSeq(input.q, end - steps[index]!, end), k: sliceSeq(input.k, 0, end), v: sliceSeq(input.v, 0, end), causal: true };
}

/** Throws when `actual` is off `expected` by more than the GPU tolerance (relative L2). */
export function expectOutputClose(what: string, actual: AttentionResult, expected: { output: AttentionResult['output'] }): void {
  const error = relativeL2Error(actual.output, expected.output);
  if (!(error <= GPU_TOLERANCE)) throw new Error(`${what}: output relative L2 error ${error.toExponential(3)} above ${GPU_TOLERANCE}`);
}

/** Throws when two log-sum-exp arrays differ by more than the GPU tolerance (relative, −∞ must match). */
export function expectLseClose(what: string, actual: ArrayLike<number> | undefined, expected: ArrayLike<number>): void {
  if (!actual || actual.length !== expected.length) throw new Error(`${what}: lse has ${actual?.length ?? 'no'} entries, expected ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (a === e) continue;
    if (!(Math.abs(a - e) <= GPU_TOLERANCE * Math.max(1, Math.abs(e)))) throw new Error(`${what}: lse[${i}] = ${a}, expected ${e}`);
  }
}

/** Throws unless two selections are identical (layout, offsets and indices). */
export function expectSameSelection(what: string, actual: Selection | undefined, expected: Selection | undefined): void {
  if (!actual || !expected) throw new Error(`${what}: selection missing (GPU ${actual ? 'has one' : 'none'}, CPU ${expected ? 'has one' : 'none'})`);
  for (const key of ['kind', 'blockSize', 'headScope', 'batch', 'heads', 'rows', 'queryBlockSize', 'keySeq'] as const) {
    if (actual[key] !== expected[key]) throw new Error(`${what}: selection ${key} ${String(actual[key])}, CPU ${String(expected[key])}`);
  }
  if (actual.offsets.length !== expected.offsets.length || actual.offsets.some((x, i) => x !== expected.offsets[i])) throw new Error(`${what}: selection row lengths differ from the CPU's`);
  for (let i = 0; i < expected.indices.length; i++) {
    if (actual.indices[i] !== expected.indices[i]) {
      const row = expected.offsets.findIndex((o) => o > i) - 1;
      throw new Error(`${what}: selection row ${row} differs: GPU [${Array.from(actual.indices.subarray(actual.offsets[row]!, actual.offsets[row + 1]!)).join(', ')}], CPU [${Array.from(expected.indices.subarray(expected.offsets[row]!, expected.offsets[row + 1]!)).join(', ')}]`);
    }
  }
}

const caseName = (c: DecodeCase) => `B${c.batch} Hq${c.queryHeads} Hkv${c.kvHeads} D${c.headDim}${c.valueDim ? ` Dv${c.valueDim}` : ''} steps ${c.steps.join('+')}`;

const denseCases: readonly DecodeCase[] = [
  { batch: 1, queryHeads: 1, kvHeads: 1, headDim: 16, steps: [1, 1, 1], seed: 1 },
  { batch: 2, queryHeads: 4, kvHeads: 2, headDim: 32, steps: [37, 1, 3, 1], seed: 2 },
  // Crosses the cache's initial 256 rows: the capacity doubles and the rows are copied on the GPU.
  { batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16, valueDim: 24, steps: [250, 5, 1, 16, 1], seed: 3 },
  // Head dims that are not multiples of 4 take the scalar-load kernel; a prompt of 40 takes the prefill kernel.
  { batch: 1, queryHeads: 2, kvHeads: 1, headDim: 18, valueDim: 10, steps: [40, 1, 2], seed: 4 },
];

/** Runs a GPU decoder and core's CPU decoder side by side over a case; `compare` checks each step. */
async function compareDecoders(decoder: GpuAttentionDecoder, cpuStep: (input: AttentionInput) => AttentionResult, c: DecodeCase, compare: (gpu: AttentionResult & { lse?: Float32Array }, cpu: AttentionResult, call: AttentionInput, index: number) => void, kind: 'gaussian' | 'structured' = 'gaussian'): Promise<void> {
  const input = decodeCaseInput(c, kind);
  const steps = decodeStepInputs(input, c.steps);
  let first: AttentionResult | undefined;
  try {
    for (const [i, step] of steps.entries()) {
      const gpu = await decoder.step(step);
      first ??= gpu;
      const cpu = cpuStep(step);
      if (decoder.length !== c.steps.slice(0, i + 1).reduce((a, b) => a + b, 0)) throw new Error(`step ${i}: decoder length ${decoder.length}`);
      compare(gpu, cpu, decodeStepCall(input, c.steps, i), i);
    }
    decoder.reset();
    if (decoder.length !== 0) throw new Error('reset left tokens in the cache');
    // After a reset the same sequence decodes to the same first step.
    expectOutputClose('first step after reset', await decoder.step(steps[0]!), first!);
  } finally {
    decoder.destroy();
  }
}

/** GPU decode checks: the KV cache, the split-K kernel and the dense / block top-k decoders. */
export const gpuDecodeChecks: readonly GpuCheck[] = [
  ...denseCases.map((c): GpuCheck => ({
    name: `dense decoder (GPU KV cache, split-K) equals core's dense decoder and referenceAttention: ${caseName(c)}`,
    async run(backend) {
      const shape = { batch: c.batch, queryHeads: c.queryHeads, kvHeads: c.kvHeads, headDim: c.headDim, valueDim: c.valueDim ?? c.headDim };
      const cpu = denseMethod.create().createDecoder(shape);
      await compareDecoders(gpuDenseMethod.create(backend).createDecoder!(shape), (s) => cpu.step(s), c, (gpu, cpuResult, call, i) => {
        const ref = referenceAttention(call);
        expectOutputClose(`step ${i} vs referenceAttention`, gpu, ref);
        expectOutputClose(`step ${i} vs core's dense decoder`, gpu, cpuResult);
        expectLseClose(`step ${i}`, gpu.lse, ref.lse);
        if (gpu.backend.backend !== 'gpu') throw new Error(`backend recorded as ${JSON.stringify(gpu.backend)}`);
      });
    },
  })),
  {
    name: 'split-K decode on an uploaded call (several slots per chunk, Sq 5, causal and non-causal) equals referenceAttention',
    async run(backend) {
      for (const causal of [true, false]) {
        const full = createWorkload('gaussian', { batch: 2, queryHeads: 6, kvHeads: 3, seqLength: 203, headDim: 24, valueDim: 20, seed: 7 }).input;
        const input = { ...full, q: sliceSeq(full.q, 198, 203), causal };
        const resident = backend.upload(input);
        try {
          if (resident.chunks[0]!.slots < 2) throw new Error('expected several slots per chunk');
          await runDecodeAttention(backend, resident);
          const { output, lse } = await backend.readOutput(resident);
          const ref = referenceAttention(input);
          expectOutputClose(`causal ${causal}`, { output } as AttentionResult, ref);
          expectLseClose(`causal ${causal}`, lse, ref.lse);
        } finally {
          backend.release(resident);
        }
      }
    },
  },
  {
    name: 'split-K decode at S=2048, D=128 (many partitions) equals referenceAttention',
    async run(backend) {
      const full = createWorkload('structured', { batch: 1, queryHeads: 4, kvHeads: 2, seqLength: 2048, headDim: 128, seed: 8 }).input;
      const input = { ...full, q: sliceSeq(full.q, 2047, 2048) };
      const d = validateAttentionInput(input);
      if (splitKPlan(d).partitions < 8) throw new Error(`expected many partitions, plan ${JSON.stringify(splitKPlan(d))}`);
      const resident = backend.upload(input);
      try {
        await runDecodeAttention(backend, resident);
        const { output, lse } = await backend.readOutput(resident);
        const ref = referenceAttention(input);
        expectOutputClose('output', { output } as AttentionResult, ref);
        expectLseClose('lse', lse, ref.lse);
      } finally {
        backend.release(resident);
      }
    },
  },
  {
    name: 'lastQueryView: one decode step of the last query over a resident prefill call equals referenceAttention',
    async run(backend) {
      const input = createWorkload('gaussian', { batch: 1, queryHeads: 4, kvHeads: 2, seqLength: 150, headDim: 32, seed: 9 }).input;
      const resident = backend.upload(input);
      const { view, release } = await lastQueryView(backend, resident);
      try {
        await runDecodeAttention(backend, view);
        const { output, lse } = await backend.readOutput(view);
        const ref = referenceAttention({ ...input, q: sliceSeq(input.q, 149, 150) });
        expectOutputClose('output', { output } as AttentionResult, ref);
        expectLseClose('lse', lse, ref.lse);
      } finally {
        release();
        backend.release(resident);
      }
    },
  },
  {
    name: 'GpuKVCache: short (staged) and long appends, KV-cache views, growth, regrouping, retain and the resident view (every slot at keyStride) equal the host tensors',
    async run(backend) {
      // 40 rows of 4 slots in short appends, a long one past the staging size (4 · 8300 · 8 · 4 B
      // > 1 MiB), then a short one after the cache regrouped.
      const total = 8341;
      const input = createWorkload('gaussian', { batch: 2, queryHeads: 4, kvHeads: 2, seqLength: total, headDim: 8, valueDim: 6, seed: 10 }).input;
      // The keys appended as KV-cache views (rows padded to a capacity of T + 5).
      const padded = (t: Tensor): Tensor => {
        const [b, h, s, d] = t.shape as [number, number, number, number];
        const data = new Float32Array(b * h * (s + 5) * d);
        for (let r = 0; r < b * h; r++) data.set(t.data.subarray(r * s * d, (r + 1) * s * d), r * (s + 5) * d);
        return { shape: t.shape, data, seqCapacity: s + 5 };
      };
      const keys = (a: number, b: number) => padded(sliceSeq(input.k, a, b));
      const cache = new GpuKVCache(backend, { batch: 2, kvHeads: 2, queryHeads: 4, headDim: 8, valueDim: 6, initialCapacity: 4 });
      // Cached row r of each slot must be the host's row `rowOf(slot, r)` (default r).
      const expectCached = async (view: ResidentAttention, rows: number, rowOf = (_slot: number, r: number) => r) => {
        for (const chunk of view.chunks) {
          const stride = chunkKeyStride(chunk, view.dims);
          const [k, v] = await backend.readAll([{ buffer: chunk.k }, { buffer: chunk.v }]);
          for (let local = 0; local < chunk.slots; local++) {
            const slot = chunk.slot0 + local;
            for (const [what, cached, host, dim] of [['keys', k!, input.k, 8], ['values', v!, input.v, 6]] as const) {
              for (let r = 0; r < rows; r++) {
                const got = cached.subarray((local * stride + r) * dim, (local * stride + r + 1) * dim);
                const from = (slot * total + rowOf(slot, r)) * dim;
                const expected = host.data.subarray(from, from + dim);
                if (got.some((x, i) => x !== expected[i])) throw new Error(`${rows} rows, slot ${slot}, row ${r}: cached ${what} differ from the appended ones`);
              }
            }
          }
        }
      };
      try {
        for (const [a, b] of [[0, 1], [1, 4], [4, 17], [17, 40]] as const) cache.append(keys(a, b), sliceSeq(input.v, a, b));
        if (cache.length !== 40 || cache.capacity !== 64) throw new Error(`length ${cache.length}, capacity ${cache.capacity}`);
        const view = cache.attend(sliceSeq(input.q, 38, 40));
        if (view.chunks.length !== 1 || chunkKeyStride(view.chunks[0]!, view.dims) !== 64) throw new Error(`${view.chunks.length} chunks of stride ${chunkKeyStride(view.chunks[0]!, view.dims)}, expected one of 64`);
        await expectCached(view, 40);
        let threw = false;
        try {
          cache.append(tensor([2, 1, 1, 8]), tensor([2, 1, 1, 6]));
        } catch (error) {
          threw = error instanceof ShapeError;
        }
        if (!threw || cache.length !== 40) throw new Error('a mis-shaped append must throw ShapeError and leave the cache as it was');
        cache.append(keys(40, total - 1), sliceSeq(input.v, 40, total - 1));
        // Scratch of half a binding per slot: the cache regroups into chunks of one slot (copied on the GPU).
        const regrouped = cache.attend(sliceSeq(input.q, total - 2, total - 1), undefined, Math.floor(backend.context.maxBinding / 2) + 1);
        if (regrouped.chunks.length !== 4 || cache.chunkSlots !== 1) throw new Error(`${regrouped.chunks.length} chunks of ${cache.chunkSlots} slots after asking for half a binding per slot, expected 4 of 1`);
        await expectCached(regrouped, total - 1);
        cache.append(keys(total - 1, total), sliceSeq(input.v, total - 1, total));
        await expectCached(cache.attend(sliceSeq(input.q, total - 1, total)), total);
        // retain: per-slot lists of kept rows (the cache then holds exactly them, in order), then
        // one list for every slot; lists that do not ascend, differ in length or leave the cache throw.
        const lists = Array.from({ length: 4 }, (_, slot) => Int32Array.from({ length: 50 }, (_, i) => i * 150 + slot));
        for (const bad of [[lists[0]!, lists[1]!, lists[2]!], [...lists.slice(0, 3), lists[3]!.subarray(1)], [...lists.slice(0, 3), Int32Array.of(...lists[3]!.subarray(0, 49), total)], [...lists.slice(0, 3), lists[3]!.slice().reverse()]]) {
          let rejected = false;
          try {
            cache.retain(bad);
          } catch (error) {
            rejected = error instanceof ShapeError;
          }
          if (!rejected || (cache.length as number) !== total) throw new Error('retain must reject kept lists of the wrong count, length, range or order with ShapeError, leaving the cache as it was');
        }
        cache.retain(lists);
        if ((cache.length as number) !== 50) throw new Error(`length ${cache.length} after keeping 50 rows`);
        await expectCached(cache.attend(sliceSeq(input.q, 0, 1)), 50, (slot, r) => lists[slot]![r]!);
        cache.retain(Int32Array.of(0, 2, 49));
        await expectCached(cache.attend(sliceSeq(input.q, 0, 1)), 3, (slot, r) => lists[slot]![[0, 2, 49][r]!]!);
      } finally {
        cache.destroy();
      }
      // retain keeps its uniforms and bind groups between calls: a cache that grows between two
      // retains of one count must bind its new buffers (host rows 0, 2, 5 kept, 6 … 13 appended:
      // 11 rows in a capacity of 8, then rows 0, 1, 10 kept = host rows 0, 2, 13).
      const small = new GpuKVCache(backend, { batch: 2, kvHeads: 2, queryHeads: 4, headDim: 8, valueDim: 6, initialCapacity: 4 });
      try {
        small.append(keys(0, 6), sliceSeq(input.v, 0, 6));
        small.retain(Int32Array.of(0, 2, 5));
        small.append(keys(6, 14), sliceSeq(input.v, 6, 14));
        small.retain(Int32Array.of(0, 1, 10));
        await expectCached(small.attend(sliceSeq(input.q, 0, 1)), 3, (_slot, r) => [0, 2, 13][r]!);
      } finally {
        small.destroy();
      }
    },
  },
  {
    name: 'bad decoder input throws core\'s typed error before any GPU work (cache unchanged)',
    async run(backend) {
      const decoder = gpuDenseMethod.create(backend).createDecoder!({ batch: 1, queryHeads: 2, kvHeads: 1, headDim: 8 });
      try {
        const bad: AttentionInput = { q: tensor([1, 2, 1, 4]), k: tensor([1, 1, 1, 8]), v: tensor([1, 1, 1, 8]) };
        const nan = tensor([1, 1, 1, 8], new Float32Array(8).fill(Number.NaN));
        for (const [what, input] of [['wrong head dim', bad], ['NaN key', { q: tensor([1, 2, 1, 8]), k: nan, v: tensor([1, 1, 1, 8]) }]] as const) {
          let error: unknown;
          try {
            await decoder.step(input);
          } catch (e) {
            error = e;
          }
          const cpuDecoder = denseMethod.create().createDecoder({ batch: 1, queryHeads: 2, kvHeads: 1, headDim: 8 });
          let cpuError: unknown;
          try {
            cpuDecoder.step(input);
          } catch (e) {
            cpuError = e;
          }
          if (!(error instanceof Error) || !(cpuError instanceof Error) || error.constructor !== cpuError.constructor) throw new Error(`${what}: GPU threw ${String(error)}, CPU ${String(cpuError)}`);
          if (decoder.length !== 0) throw new Error(`${what}: the cache grew`);
        }
      } finally {
        decoder.destroy();
      }
    },
  },
  ...([
    { config: { blockSize: 16, queryBlockSize: 16, topK: 2 }, c: { batch: 2, queryHeads: 4, kvHeads: 2, headDim: 32, steps: [70, 1, 1, 3, 1], seed: 11 } },
    // groupSize · queryBlockSize ≤ 16: the block scoring kernel's 16-row tile lost the SwiftShader
    // device here; scoring now always runs 64-row tiles.
    { config: { blockSize: 16, queryBlockSize: 16, topK: 1, sinkBlocks: 0, scoring: 'mean' }, c: { batch: 1, queryHeads: 2, kvHeads: 2, headDim: 16, steps: [20, 1, 30, 1], seed: 12 } },
  ] as const).map(({ config, c }): GpuCheck => ({
    name: `block top-k decoder (GPU KV cache) picks the CPU decoder's blocks and equals core sparseAttention over them: ${JSON.stringify(config)} ${caseName(c)}`,
    async run(backend: GpuBackend) {
      const shape = { batch: c.batch, queryHeads: c.queryHeads, kvHeads: c.kvHeads, headDim: c.headDim };
      const cpu = blockTopKMethod.create(blockTopKConfigSchema.parse(config)).createDecoder(shape);
      await compareDecoders(gpuBlockTopKMethod.create(backend, config).createDecoder!(shape), (s) => cpu.step(s), c, (gpu, cpuResult, call, i) => {
        expectSameSelection(`step ${i}`, gpu.selection, cpuResult.selection);
        const exact = sparseAttention(call, gpu.selection!);
        expectOutputClose(`step ${i} vs core sparseAttention`, gpu, exact);
        expectOutputClose(`step ${i} vs the CPU decoder`, gpu, cpuResult);
        expectLseClose(`step ${i}`, gpu.lse, exact.lse);
      }, 'structured');
    },
  })),
  {
    // The kept pooled blocks: a cache of 8 rows (the cache and the store double 3 times), one-token
    // steps across 5 block boundaries (each completes a block the store then keeps, the incomplete
    // last block re-pooled every step), Quest and mean scoring; then a reset, a context appended
    // without attending (the CPU decoder steps over it) and more steps.
    name: 'block top-k decoder keeps its pooled blocks across cache growth and block boundaries (initial capacity 8, appendContext after a reset): the CPU decoder\'s blocks and output',
    async run(backend: GpuBackend) {
      const c = { batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16, steps: [9, ...Array<number>(42).fill(1), 2, 1], seed: 13 };
      const shape = { batch: c.batch, queryHeads: c.queryHeads, kvHeads: c.kvHeads, headDim: c.headDim };
      for (const config of [{ blockSize: 8, topK: 2, queryBlockSize: 1 }, { blockSize: 8, topK: 1, queryBlockSize: 1, sinkBlocks: 0, scoring: 'mean' as const }]) {
        const input = decodeCaseInput(c, 'structured');
        const steps = decodeStepInputs(input, c.steps);
        const decoder = gpuBlockTopKMethod.create(backend, config).createDecoder!(shape, { initialCapacity: 8 });
        try {
          for (const round of ['steps', 'context'] as const) {
            const cpu = blockTopKMethod.create(blockTopKConfigSchema.parse(config)).createDecoder(shape);
            for (const [i, step] of steps.entries()) {
              const what = `${JSON.stringify(config)} ${round} step ${i}`;
              if (round === 'context' && i === 0) {
                decoder.appendContext!(step.k, step.v);
                cpu.step(step);
                continue;
              }
              const gpu = await decoder.step(step);
              const cpuResult = cpu.step(step);
              expectSameSelection(what, gpu.selection, cpuResult.selection);
              expectOutputClose(`${what} vs the CPU decoder`, gpu, cpuResult);
              expectOutputClose(`${what} vs core sparseAttention`, gpu, sparseAttention(decodeStepCall(input, c.steps, i), gpu.selection!));
            }
            decoder.reset();
          }
        } finally {
          decoder.destroy();
        }
      }
    },
  },
  // Block top-k's timed calls, as the benchmark records them (the family methods' run in their packages).
  oneSubmissionCheck(gpuBlockTopKMethod, {}, { batch: 1, queryHeads: 4, kvHeads: 2, seq: 300, headDim: 32 }, 155),
];

/** The last query position's rows of a `[B, H, S, D]` output, as `[B, H, 1, D]` data. */
function lastRows(t: { readonly data: Float32Array; readonly shape: readonly number[] }): Float32Array {
  const [batch, heads, seq, dim] = t.shape as [number, number, number, number];
  const out = new Float32Array(batch * heads * dim);
  for (let bh = 0; bh < batch * heads; bh++) out.set(t.data.subarray((bh * seq + seq - 1) * dim, (bh * seq + seq) * dim), bh * dim);
  return out;
}

/**
 * A GPU check of a method's `decodeResident` (decode steps with the decoder's kept state, what the
 * benchmark's decode rows time): on a resident call, the one-query view of its last position
 * decoded twice (the first step builds the kept state, the second reuses it) equals the CPU
 * method's prefill row of that position (the methods are causally consistent) — the output, and
 * with `oneSoftmax` (default true; false for outputs that mix several softmaxes) the lse against
 * core's attention over the CPU's selection — and reports a density in (0, 1].
 */
export function decodeResidentCheck(definition: GpuMethodDefinition, config: Record<string, unknown>, shape: CheckShape, seed: number, oneSoftmax = true): GpuCheck {
  return {
    name: `${definition.id} decodeResident (kept state, two steps) equals the CPU prefill's last row: ${JSON.stringify(config)} ${describeCheckShape(shape)}`,
    async run(backend) {
      const input: AttentionInput = checkInput(shape, seed);
      const cpu = definition.cpu.create(config).prefill(input);
      const method = definition.create(backend, config);
      if (!method.decodeResident) throw new Error(`${definition.id} has no decodeResident`);
      const resident = backend.upload(input, validateAttentionInput(input));
      try {
        const { view, release } = await lastQueryView(backend, resident);
        try {
          const stepper = await method.decodeResident(view);
          try {
            for (const step of ['first (builds the kept state)', 'second (reuses it)']) {
              const run = await stepper.step();
              if (!(run.density! > 0 && run.density! <= 1)) throw new Error(`${step}: density ${run.density}`);
              const { output, lse } = await backend.readOutput(view);
              expectClose(`${step} output`, output.data, lastRows(cpu.output));
              if (oneSoftmax) {
                if (!cpu.selection) throw new Error(`the CPU ${definition.id} reported no selection`);
                const exact = sparseAttention(input, cpu.selection);
                expectLseClose(`${step} lse`, lse, lastRows({ data: exact.lse, shape: [shape.batch, shape.queryHeads, shape.seq, 1] }));
              }
            }
          } finally {
            stepper.release();
          }
        } finally {
          release();
        }
      } finally {
        backend.release(resident);
      }
    },
  };
}

/**
 * A GPU check of a method's `runResident` recorded into one submission (the benchmark's timed
 * calls: `{ density: false, oneSubmission: true }`, and its warm-up's density asked inside one):
 * on fresh uploads each reports `oneSubmission` with the whole call as `attentionMs`, the density
 * of a call with separate submissions when asked (without it, only where the method knows it
 * without a readback, then the same), and leaves that call's output and lse (whose agreement with
 * the CPU the family's own checks cover). Where the method records its calls this way, every
 * buffer it frees must outlive the submission (`backend.discard`).
 */
export function oneSubmissionCheck(definition: GpuMethodDefinition, config: Record<string, unknown>, shape: CheckShape, seed: number): GpuCheck {
  return {
    name: `${definition.id} runResident recorded as one submission leaves the output of separate submissions: ${JSON.stringify(config)} ${describeCheckShape(shape)}`,
    async run(backend) {
      const input: AttentionInput = checkInput(shape, seed);
      const d = validateAttentionInput(input);
      const method = definition.create(backend, config);
      const run = async (options: { density?: boolean; oneSubmission?: boolean }) => {
        const resident = backend.upload(input, d);
        try {
          const result = await method.runResident!(resident, options);
          return { result, ...(await backend.readOutput(resident)) };
        } finally {
          backend.release(resident);
        }
      };
      const separate = await run({});
      for (const density of [false, true]) {
        const one = await run({ density, oneSubmission: true });
        const { oneSubmission, selectionMs, attentionMs } = one.result;
        // Without asking, a density the method knows without a readback may still come; the same then.
        const sameDensity = one.result.density === separate.result.density || (!density && one.result.density === undefined);
        if (oneSubmission !== true || selectionMs !== 0 || !(attentionMs > 0) || !sameDensity) throw new Error(`expected one submission (density ${density}), got ${JSON.stringify(one.result)} (separate calls: ${JSON.stringify(separate.result)})`);
        expectClose(`output (density ${density})`, one.output.data, separate.output.data);
        expectLseClose(`lse (density ${density})`, one.lse, separate.lse);
      }
    },
  };
}
