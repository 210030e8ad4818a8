import {
  ConfigError,
  KVCache,
  Rng,
  SelectionBuilder,
  ShapeError,
  createWorkload,
  denseAttention,
  referenceAttention,
  relativeL2Error,
  sliceSeq,
  sparseAttention,
  tensor,
  validateAttentionInput,
  type AttentionInput,
  type Selection,
  type WorkloadKind,
} from '@sparse-attn/core';
import { blockTopKConfigSchema, poolKeyBlocks, rowGeometry, scoreKeyBlocks, type BlockTopKConfig } from './block-top-k.js';
import { GpuBackend, type ResidentAttention } from './gpu-backend.js';
import { withSpareRows } from './spare-rows.js';
import { WEBGPU_FLAGS } from './webgpu-flags.js';
import { POOL_PARAMS, blockPoolWgsl } from './kernels/block-pool-wgsl.js';
import { runGpuBenchmark } from './gpu-benchmarks.js';
import { runGpuDecoderBenchmark } from './gpu-decoder-benchmarks.js';
// `expectLseClose` and `expectSameSelection` (the shared ones) live with the decode checks.
import { expectLseClose } from './gpu-decode-checks.js';
import { gpuBlockTopKMethod } from './gpu-methods.js';
import { runDecodeAttention } from './gpu-decode.js';
import { poolKeyBlocksGpuJs } from './kernels/block-pool-gpu-js.js';

/**
 * GPU-vs-CPU agreement checks, framework-free so the same list runs under vitest (skipped with
 * the reason when no adapter exists) and as a plain Node program on the GPU machine
 * (`pnpm test:gpu`, or `node gpu-check.js` from the device bundle).
 */
export interface GpuCheck {
  readonly name: string;
  /** Throws an `Error` describing the disagreement when the GPU result is wrong. */
  run(backend: GpuBackend): Promise<void>;
}

/** Relative L2 tolerance of every GPU-vs-CPU comparison (the issue's bar). */
export const GPU_TOLERANCE = 1e-4;

/**
 * The shape of a check's input: `[batch, queryHeads, kvHeads, seq, headDim]`, optionally a value
 * dim, a query tail (`querySeq`: the queries are the last `querySeq` positions) and non-causal.
 */
export interface CheckShape {
  readonly batch: number;
  readonly queryHeads: number;
  readonly kvHeads: number;
  readonly seq: number;
  readonly headDim: number;
  /** Default `headDim`. */
  readonly valueDim?: number;
  /** Queries are the last `querySeq` positions (default: all `seq`). */
  readonly querySeq?: number;
  /** Default true. */
  readonly causal?: boolean;
}

/** A check's input: core's `createWorkload(kind)` at `shape` and `seed`, with the query tail and causality `shape` asks for. */
export function checkInput(shape: CheckShape, seed: number, kind: WorkloadKind = 'gaussian'): AttentionInput {
  const s = shape;
  const w = createWorkload(kind, { batch: s.batch, queryHeads: s.queryHeads, kvHeads: s.kvHeads, seqLength: s.seq, headDim: s.headDim, valueDim: s.valueDim ?? s.headDim, seed });
  const q = s.querySeq === undefined ? w.input.q : sliceSeq(w.input.q, s.seq - s.querySeq, s.seq);
  return { ...w.input, q, causal: s.causal ?? true };
}

/** A check shape as a name: `B1 Hq4 Hkv2 S130 D32`, then ` Dv24`, ` Sq5`, ` non-causal` where set. */
export function describeCheckShape(s: CheckShape): string {
  return `B${s.batch} Hq${s.queryHeads} Hkv${s.kvHeads} S${s.seq} D${s.headDim}${s.valueDim ? ` Dv${s.valueDim}` : ''}${s.querySeq !== undefined ? ` Sq${s.querySeq}` : ''}${s.causal === false ? ' non-causal' : ''}`;
}

/**
 * Throws unless `actual` is within `GPU_TOLERANCE` relative L2 of `expected` (core's
 * `relativeL2Error`, `expected` the reference) over their elements in order. Callers holding
 * compact tensors pass `.data`; non-float32 arrays are rounded to float32 first (as `tensor` does).
 */
export function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  if (actual.length !== expected.length) throw new Error(`${what}: ${actual.length} elements, expected ${expected.length}`);
  const flat = (x: ArrayLike<number>) => tensor([x.length], x instanceof Float32Array ? x : Float32Array.from(x));
  const error = relativeL2Error(flat(actual), flat(expected));
  if (!(error <= GPU_TOLERANCE)) throw new Error(`${what}: relative L2 error ${error.toExponential(3)} above ${GPU_TOLERANCE}`);
}

/**
 * Runs `run` on `resident` and on a copy of it whose keys and values lie `spareRows` rows apart
 * per slot (`withSpareRows`, as a `GpuKVCache`'s view has them), and throws unless the outputs and
 * log-sum-exps agree: every kernel `run` reaches must read keys at `slot · keyStride + key`.
 * Frees the copy; `resident` stays the caller's.
 */
export async function expectKeyStrideHonoured(backend: GpuBackend, what: string, resident: ResidentAttention, run: (r: ResidentAttention) => Promise<unknown>, spareRows = 37): Promise<void> {
  await run(resident);
  const compact = await backend.readOutput(resident);
  const strided = withSpareRows(backend, resident, spareRows);
  try {
    await run(strided.view);
    const spread = await backend.readOutput(strided.view);
    expectClose(`${what} over keys ${spareRows} spare rows apart: output`, spread.output.data, compact.output.data);
    expectLseClose(`${what} over keys ${spareRows} spare rows apart: lse`, spread.lse, compact.lse);
  } finally {
    strided.release();
  }
}

/** A random token selection (per query head, one row per query), some rows empty. */
function randomTokenSelection(batch: number, heads: number, seq: number, keySeq: number, seed: number): Selection {
  const rng = new Rng(seed);
  const builder = new SelectionBuilder({ kind: 'token', headScope: 'query', batch, heads, rows: seq, keySeq });
  const row: number[] = [];
  for (let r = 0; r < batch * heads * seq; r++) {
    row.length = 0;
    if (rng.next() < 0.9) for (let j = 0; j < keySeq; j++) if (rng.next() < 0.3) row.push(j);
    builder.pushRow(row);
  }
  return builder.finish();
}

/** A random block selection (per KV head unless `headScope` says otherwise) with query blocks of `queryBlockSize`. */
function randomBlockSelection(batch: number, heads: number, seq: number, keySeq: number, blockSize: number, queryBlockSize: number, seed: number, headScope: 'kv' | 'query' = 'kv', density = 0.5): Selection {
  const rng = new Rng(seed);
  const rows = Math.ceil(seq / queryBlockSize);
  const blocks = Math.ceil(keySeq / blockSize);
  const builder = new SelectionBuilder({ kind: 'block', blockSize, headScope, batch, heads, rows, queryBlockSize, keySeq });
  const row: number[] = [];
  for (let r = 0; r < batch * heads * rows; r++) {
    row.length = 0;
    for (let j = 0; j < blocks; j++) if (rng.next() < density) row.push(j);
    builder.pushRow(row);
  }
  return builder.finish();
}

/**
 * Token rows (query row t sees keys ≤ t) drawn as blocks of `blockSize`: each row picks random
 * visible blocks and, in each, random visible tokens — some picked blocks get none (an empty
 * mask) — and returns both forms: the token rows, and the block rows (CSR of fixed `stride`) with
 * ⌈blockSize / 32⌉ mask words per entry.
 */
function maskedTokenRows(slots: number, querySeq: number, keySeq: number, blockSize: number, seed: number): { tokens: number[][]; stride: number; words: number; bounds: Uint32Array; blocks: Uint32Array; masks: Uint32Array } {
  const rng = new Rng(seed);
  const words = Math.ceil(blockSize / 32);
  const offset = keySeq - querySeq;
  const rows: { blocks: number[]; masks: number[][]; tokens: number[] }[] = [];
  for (let r = 0; r < slots * querySeq; r++) {
    const t = offset + (r % querySeq);
    const picked = { blocks: [] as number[], masks: [] as number[][], tokens: [] as number[] };
    for (let b = 0; b * blockSize <= t; b++) {
      if (rng.next() > 0.45) continue;
      const mask = new Array<number>(words).fill(0);
      const empty = rng.next() < 0.15;
      for (let j = 0; j < blockSize && b * blockSize + j <= t; j++) {
        if (empty || rng.next() > 0.4) continue;
        mask[j >> 5]! |= 1 << (j & 31);
        picked.tokens.push(b * blockSize + j);
      }
      picked.blocks.push(b);
      picked.masks.push(mask);
    }
    rows.push(picked);
  }
  const stride = Math.max(1, ...rows.map((r) => r.blocks.length));
  const bounds = new Uint32Array(2 * rows.length);
  const blocks = new Uint32Array(rows.length * stride);
  const masks = new Uint32Array(rows.length * stride * words);
  rows.forEach((row, r) => {
    bounds[2 * r] = r * stride;
    bounds[2 * r + 1] = r * stride + row.blocks.length;
    blocks.set(row.blocks, r * stride);
    row.masks.forEach((mask, e) => masks.set(mask.map((x) => x >>> 0), (r * stride + e) * words));
  });
  return { tokens: rows.map((r) => r.tokens), stride, words, bounds, blocks, masks };
}

/** Masked block selections: mask widths of 1, 2 and 4 words (block 16, 64, 100: several key tiles a block), scopes, GQA, offsets, row windows. */
const maskedCases: readonly { label: string; shape: CheckShape; blockSize: number; scope: 'kv' | 'query'; windowBytes?: number }[] = [
  { label: 'per KV head (one query, MHA), block 64', shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 300, headDim: 32 }, blockSize: 64, scope: 'kv' },
  { label: 'per KV head (4 query heads a row), block 16, several row windows', shape: { batch: 1, queryHeads: 8, kvHeads: 2, seq: 203, headDim: 16, valueDim: 24 }, blockSize: 16, scope: 'kv', windowBytes: 64 * 1024 },
  { label: 'per query head, block 100, queries at an offset, several row windows', shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 330, headDim: 32, querySeq: 70 }, blockSize: 100, scope: 'query', windowBytes: 96 * 1024 },
];

const denseShapes: readonly CheckShape[] = [
  { batch: 1, queryHeads: 1, kvHeads: 1, seq: 1, headDim: 16 },
  { batch: 1, queryHeads: 2, kvHeads: 2, seq: 37, headDim: 16 },
  { batch: 2, queryHeads: 4, kvHeads: 2, seq: 130, headDim: 32 },
  { batch: 1, queryHeads: 4, kvHeads: 1, seq: 97, headDim: 16, valueDim: 24 },
  { batch: 1, queryHeads: 2, kvHeads: 2, seq: 70, headDim: 20, causal: false },
  { batch: 1, queryHeads: 4, kvHeads: 2, seq: 77, headDim: 16, querySeq: 5 },
  { batch: 1, queryHeads: 2, kvHeads: 2, seq: 300, headDim: 128 },
  // Head dims that are not multiples of 4 take the scalar-load kernel.
  { batch: 1, queryHeads: 2, kvHeads: 1, seq: 90, headDim: 18, valueDim: 10 },
];

/** Block selections the key-block executor must run like core: scopes, GQA, query blocks, ragged blocks, length 1, offsets, windows. */
const keyBlockCases: readonly { label: string; shape: CheckShape; blockSize: number; queryBlockSize: number; scope: 'kv' | 'query'; maxBinding?: number }[] = [
  { label: 'per query head, block 16', shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32, valueDim: 24 }, blockSize: 16, queryBlockSize: 1, scope: 'query' },
  { label: 'per KV head (4 query heads a row), block 7', shape: { batch: 1, queryHeads: 8, kvHeads: 2, seq: 131, headDim: 16 }, blockSize: 7, queryBlockSize: 1, scope: 'kv' },
  { label: 'per KV head, query blocks of 3', shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 97, headDim: 16, querySeq: 5 }, blockSize: 10, queryBlockSize: 3, scope: 'kv' },
  { label: 'length 1', shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1, headDim: 16 }, blockSize: 16, queryBlockSize: 1, scope: 'query' },
  { label: 'non-causal, scalar head dims', shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 70, headDim: 18, valueDim: 10, causal: false }, blockSize: 16, queryBlockSize: 1, scope: 'query' },
  { label: 'row windows and chunks of a small binding', shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 90, headDim: 16 }, blockSize: 8, queryBlockSize: 1, scope: 'query', maxBinding: 90 * 16 * 4 * 2 },
];

/** Every GPU check, in the order they run. */
export const gpuChecks: readonly GpuCheck[] = [
  ...denseShapes.map((s, i): GpuCheck => ({
    name: `dense equals referenceAttention: ${describeCheckShape(s)}`,
    async run(backend) {
      const input = checkInput(s, 10 + i);
      const gpu = await backend.denseAttention(input);
      const ref = referenceAttention(input);
      expectClose('output', gpu.output.data, ref.output.data);
      expectLseClose('lse', gpu.lse, ref.lse);
      if (gpu.backend.backend !== 'gpu' || !gpu.backend.kernel.startsWith('webgpu-wgsl')) throw new Error(`backend recorded as ${JSON.stringify(gpu.backend)}`);
    },
  })),
  {
    name: 'readAll reads several buffers (whole, or a prefix of a size not a multiple of 16 B) in one readback, as read does one by one; an unreadable buffer is an error',
    async run(backend) {
      const { device } = backend.context;
      const values = [new Float32Array([1, 2, 3, 4]), Float32Array.from({ length: 10 }, (_, i) => i - 4.5), Float32Array.from({ length: 250 }, (_, i) => Math.sin(i))];
      const buffers = values.map((v) => {
        const buffer = device.createBuffer({ size: v.byteLength, usage: WEBGPU_FLAGS.STORAGE | WEBGPU_FLAGS.COPY_SRC | WEBGPU_FLAGS.COPY_DST });
        device.queue.writeBuffer(buffer, 0, v);
        return buffer;
      });
      const same = (what: string, actual: Float32Array, expected: Float32Array) => {
        if (actual.length !== expected.length || actual.some((x, i) => x !== expected[i])) throw new Error(`${what}: read [${Array.from(actual).slice(0, 8).join(', ')}…] (${actual.length}), wrote [${Array.from(expected).slice(0, 8).join(', ')}…] (${expected.length})`);
      };
      try {
        const all = await backend.readAll([{ buffer: buffers[0]! }, { buffer: buffers[1]!, bytes: 7 * 4 }, { buffer: buffers[2]! }]);
        same('first (whole)', all[0]!, values[0]!);
        same('second (7 of 10 floats)', all[1]!, values[1]!.subarray(0, 7));
        same('third (whole)', all[2]!, values[2]!);
        same('read, one by one', await backend.read(buffers[2]!), values[2]!);
        if ((await backend.readAll([])).length !== 0) throw new Error('readAll of nothing read something');
        // A buffer without COPY_SRC cannot be read back: an error, not zeros.
        const sealed = device.createBuffer({ size: 16, usage: WEBGPU_FLAGS.STORAGE });
        buffers.push(sealed);
        let message = '';
        try {
          await backend.readAll([{ buffer: buffers[0]! }, { buffer: sealed }]);
        } catch (error) {
          message = (error as Error).message;
        }
        if (!/validation error/.test(message)) throw new Error(`reading a buffer without COPY_SRC: ${message || 'no error'}`);
      } finally {
        for (const b of buffers) b.destroy();
      }
    },
  },
  {
    name: 'a validation error in a call (its own submission, or one submission) rejects that call, and later calls run',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 2, seq: 40, headDim: 16 }, 61);
      const d = validateAttentionInput(input);
      const resident = backend.upload(input, d);
      try {
        // 70 000 workgroups in x: above WebGPU's 65 535 per dimension.
        const bad = () =>
          backend.runKernels(resident, async (e) => {
            const pool = await e.pipeline(blockPoolWgsl());
            const out = () => e.scratch(4 * 16);
            e.dispatch(pool, [e.uniform(POOL_PARAMS, { keySeq: 40, blockSize: 8, blocks: 1, slots: 1, tilesX: 70000, dim: 16 }), e.chunk.k, out(), out(), out()], 70000, 1);
          });
        const rejects = async (what: string, call: () => Promise<unknown>) => {
          try {
            await call();
          } catch (error) {
            if (/WebGPU validation error/.test((error as Error).message)) return;
            throw new Error(`${what}: rejected with ${(error as Error).message}, expected a WebGPU validation error`);
          }
          throw new Error(`${what}: did not reject`);
        };
        await rejects('its own submission', bad);
        await rejects('one submission', () => backend.oneSubmission(bad));
        await backend.runDense(resident);
        const { output } = await backend.readOutput(resident);
        expectClose('dense after the rejected calls', output.data, referenceAttention(input).output.data);
      } finally {
        backend.release(resident);
      }
    },
  },
  {
    name: 'dense at S=2048, D=128 (many 64×64 tiles) equals core denseAttention',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 2048, headDim: 128 }, 77, 'structured');
      const gpu = await backend.denseAttention(input);
      expectClose('output', gpu.output.data, denseAttention(input).output.data);
    },
  },
  {
    name: 'dense over a KV-cache view (seqCapacity > seq) equals referenceAttention',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 45, headDim: 16 }, 5);
      const cache = new KVCache({ batch: 1, kvHeads: 2, headDim: 16, valueDim: 16, initialCapacity: 64 });
      cache.append(input.k, input.v);
      const viewInput = { q: input.q, k: cache.keys(), v: cache.values(), causal: true };
      const gpu = await backend.denseAttention(viewInput);
      expectClose('output', gpu.output.data, referenceAttention(input).output.data);
    },
  },
  {
    name: 'sparse executor, token selection per query head (empty rows, GQA) equals core sparseAttention',
    async run(backend) {
      const input = checkInput({ batch: 2, queryHeads: 4, kvHeads: 2, seq: 41, headDim: 16 }, 21);
      const selection = randomTokenSelection(2, 4, 41, 41, 3);
      const gpu = await backend.sparseAttention(input, selection);
      const cpu = sparseAttention(input, selection);
      expectClose('output', gpu.output.data, cpu.output.data);
      expectLseClose('lse', gpu.lse, cpu.lse);
      if (gpu.stats.pairs !== cpu.stats.pairs) throw new Error(`pairs ${gpu.stats.pairs}, core counts ${cpu.stats.pairs}`);
    },
  },
  {
    name: 'a host selection uploaded for a resident call (uploadSelection) attends as core sparseAttention, reads back unchanged, and a mismatched one throws',
    async run(backend) {
      const input = checkInput({ batch: 2, queryHeads: 4, kvHeads: 2, seq: 41, headDim: 16 }, 23);
      const d = validateAttentionInput(input);
      const selection = randomTokenSelection(2, 4, 41, 41, 5);
      const resident = backend.upload(input, d);
      try {
        const uploaded = backend.uploadSelection(resident, selection);
        try {
          await backend.runSparse(resident, uploaded);
          const { output, lse } = await backend.readOutput(resident);
          const cpu = sparseAttention(input, selection);
          expectClose('output', output.data, cpu.output.data);
          expectLseClose('lse', lse, cpu.lse);
          const back = await backend.readSelection(uploaded);
          if (back.offsets.some((x, i) => x !== selection.offsets[i]) || back.indices.some((x, i) => x !== selection.indices[i]) || back.indices.length !== selection.indices.length) throw new Error('the uploaded selection read back differently');
        } finally {
          backend.releaseSelection(uploaded);
        }
        const wrongKeys = randomTokenSelection(2, 4, 41, 50, 5);
        let threw = false;
        try {
          backend.uploadSelection(resident, wrongKeys);
        } catch (error) {
          threw = error instanceof ShapeError || error instanceof ConfigError;
        }
        if (!threw) throw new Error('a selection over 50 keys was uploaded for a call of 41 keys');
      } finally {
        backend.release(resident);
      }
    },
  },
  {
    // Head dims that are not multiples of 4 take the scalar-load kernel; with one query row per
    // selection row this once chose its 16-row variant, which stalls SwiftShader.
    name: 'sparse executor at head dims not multiples of 4 (D 18, Dv 10; token and block rows of one query) equals core sparseAttention',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 100, headDim: 18, valueDim: 10 }, 23);
      for (const selection of [randomTokenSelection(1, 2, 100, 100, 5), randomBlockSelection(1, 1, 100, 100, 16, 1, 6)]) {
        const gpu = await backend.sparseAttention(input, selection);
        const cpu = sparseAttention(input, selection);
        expectClose(`${selection.kind} output`, gpu.output.data, cpu.output.data);
        expectLseClose(`${selection.kind} lse`, gpu.lse, cpu.lse);
      }
    },
  },
  ...([[16, 16, 2], [64, 64, 1], [7, 1, 4], [10, 33, 2]] as const).map(([blockSize, queryBlockSize, group], i): GpuCheck => ({
    name: `sparse executor, block selection per KV head (block ${blockSize}, query block ${queryBlockSize}, group ${group}) equals core sparseAttention`,
    async run(backend) {
      const seq = 150;
      const input = checkInput({ batch: 1, queryHeads: 2 * group, kvHeads: 2, seq, headDim: 32, valueDim: 24 }, 30 + i);
      const selection = randomBlockSelection(1, 2, seq, seq, blockSize, queryBlockSize, 40 + i);
      const gpu = await backend.sparseAttention(input, selection);
      const cpu = sparseAttention(input, selection);
      expectClose('output', gpu.output.data, cpu.output.data);
      expectLseClose('lse', gpu.lse, cpu.lse);
    },
  })),
  ...keyBlockCases.map(({ label, shape, blockSize, queryBlockSize, scope, maxBinding }, i): GpuCheck => ({
    name: `key-block, rows and split-K executors (block selections) equal core sparseAttention: ${label}, ${describeCheckShape(shape)}`,
    async run(backend) {
      const input = checkInput(shape, 110 + i);
      const d = validateAttentionInput(input);
      const heads = scope === 'kv' ? shape.kvHeads : shape.queryHeads;
      const selection = randomBlockSelection(shape.batch, heads, d.querySeq, shape.seq, blockSize, queryBlockSize, 120 + i, scope, 0.4);
      const cpu = sparseAttention(input, selection);
      // A backend of its own: the mode is per backend, and a small binding forces several row windows and chunks.
      const gpuBackend = new GpuBackend(maxBinding ? { ...backend.context, maxBinding } : backend.context);
      for (const mode of ['key-blocks', 'rows', 'split-k'] as const) {
        gpuBackend.sparseExecutor = mode;
        if (gpuBackend.executorFor(selection, d) !== mode) throw new Error(`executorFor chose ${gpuBackend.executorFor(selection, d)}, forced ${mode}`);
        const gpu = await gpuBackend.sparseAttention(input, selection);
        expectClose(`${mode} output`, gpu.output.data, cpu.output.data);
        expectLseClose(`${mode} lse`, gpu.lse, cpu.lse);
      }
    },
  })),
  ...maskedCases.map(({ label, shape, blockSize, scope, windowBytes }, i): GpuCheck => ({
    name: `masked block selection (a token selection as its blocks + key masks, empty masks included) on the key-block executor equals core sparseAttention over the tokens: ${label}, ${describeCheckShape(shape)}`,
    async run(backend) {
      const input = checkInput(shape, 160 + i);
      const d = validateAttentionInput(input);
      const heads = scope === 'kv' ? shape.kvHeads : shape.queryHeads;
      const masked = maskedTokenRows(shape.batch * heads, d.querySeq, d.keySeq, blockSize, 170 + i);
      const tokens = new SelectionBuilder({ kind: 'token', blockSize: 1, headScope: scope, batch: shape.batch, heads, rows: d.querySeq, queryBlockSize: 1, keySeq: d.keySeq });
      for (const row of masked.tokens) tokens.pushRow(row);
      const cpu = sparseAttention(input, tokens.finish());
      // A backend of its own: small windows put most rows' masks at an offset (rowStart · stride).
      const gpuBackend = new GpuBackend(backend.context);
      if (windowBytes) gpuBackend.keyBlockWindowBytes = windowBytes;
      const resident = gpuBackend.upload(input, d);
      const device = backend.context.device;
      const made: GPUBuffer[] = [];
      const make = (data: Uint32Array) => {
        const buffer = device.createBuffer({ size: Math.max(16, data.byteLength), usage: 0x80 | 0x08 | 0x04 });
        device.queue.writeBuffer(buffer, 0, data);
        made.push(buffer);
        return buffer;
      };
      try {
        if (resident.chunks.length !== 1) throw new Error('the check expects one chunk');
        const layout = { kind: 'block' as const, blockSize, headScope: scope, rows: d.querySeq, queryBlockSize: 1, batch: shape.batch, heads, keySeq: d.keySeq, offsets: new Int32Array(shape.batch * heads * d.querySeq + 1), indices: new Int32Array(0) };
        const chunk = { rows: masked.tokens.length, bounds: make(masked.bounds), indices: make(masked.blocks), masks: make(masked.masks) };
        const selection = { layout, stride: masked.stride, chunks: [chunk], maskWords: masked.words };
        if (gpuBackend.executorFor(layout, d) !== 'key-blocks') throw new Error(`auto chose ${gpuBackend.executorFor(layout, d)}`);
        await gpuBackend.runSparse(resident, selection);
        const { output, lse } = await gpuBackend.readOutput(resident);
        expectClose('output', output.data, cpu.output.data);
        expectLseClose('lse', lse, cpu.lse);
        let wrong: unknown;
        await gpuBackend.runSparse(resident, { ...selection, maskWords: masked.words + 1 }).catch((error: unknown) => (wrong = error));
        if (!(wrong instanceof Error) || !wrong.message.includes('mask words')) throw new Error(`a wrong mask width should throw a ConfigError, got ${String(wrong)}`);
        gpuBackend.sparseExecutor = 'rows';
        let rows: unknown;
        await gpuBackend.runSparse(resident, selection).catch((error: unknown) => (rows = error));
        if (!(rows instanceof Error) || !rows.message.includes('key-block executor only')) throw new Error(`a masked selection on the rows executor should throw, got ${String(rows)}`);
      } finally {
        for (const buffer of made) buffer.destroy();
        gpuBackend.release(resident);
      }
    },
  })),
  {
    name: "key-block executor: 'auto' takes it for per-query block rows (S 300, one query per row) and the result equals core sparseAttention",
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 300, headDim: 64 }, 131, 'structured');
      const d = validateAttentionInput(input);
      const selection = randomBlockSelection(1, 2, 300, 300, 32, 1, 132, 'query', 0.3);
      if (backend.sparseExecutor !== 'auto' || backend.executorFor(selection, d) !== 'key-blocks') throw new Error(`auto chose ${backend.executorFor(selection, d)}`);
      if (backend.executorFor({ ...selection, rows: 8 }, d) !== 'rows') throw new Error('auto should keep per-row execution for a handful of rows');
      const gpu = await backend.sparseAttention(input, selection);
      const cpu = sparseAttention(input, selection);
      expectClose('output', gpu.output.data, cpu.output.data);
      expectLseClose('lse', gpu.lse, cpu.lse);
    },
  },
  {
    // Decode-shaped calls: a few queries at the end of the keys, rows cut by causality inside a
    // block, empty rows, token and block rows per query head and per KV head, keys split over
    // several partitions (S 1500: up to ~24 partitions of 64 keys).
    name: "split-K executor: 'auto' takes it for ≤ 16 queries per head (decode steps) and equals core sparseAttention (token and block rows, per query and per KV head, GQA)",
    async run(backend) {
      const shape = { batch: 2, queryHeads: 4, kvHeads: 2, seq: 1500, headDim: 32, valueDim: 24, querySeq: 3 };
      const input = checkInput(shape, 141);
      const d = validateAttentionInput(input);
      const selections = [
        randomTokenSelection(2, 4, 3, 1500, 142),
        randomBlockSelection(2, 4, 3, 1500, 64, 1, 143, 'query', 0.5),
        randomBlockSelection(2, 2, 3, 1500, 48, 3, 144, 'kv', 0.7),
      ];
      for (const selection of selections) {
        if (backend.sparseExecutor !== 'auto' || backend.executorFor(selection, d) !== 'split-k') throw new Error(`auto chose ${backend.executorFor(selection, d)}`);
        const gpu = await backend.sparseAttention(input, selection);
        const cpu = sparseAttention(input, selection);
        expectClose(`${selection.kind} ${selection.headScope} output`, gpu.output.data, cpu.output.data);
        expectLseClose(`${selection.kind} ${selection.headScope} lse`, gpu.lse, cpu.lse);
      }
    },
  },
  ...([
    { config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 700, headDim: 64 } },
    { config: { blockSize: 16, queryBlockSize: 16, topK: 3, scoring: 'mean' }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32 } },
    { config: { blockSize: 32, queryBlockSize: 8, topK: 2, sinkBlocks: 0 }, shape: { batch: 1, queryHeads: 8, kvHeads: 1, seq: 200, headDim: 16 } },
    { config: { blockSize: 64, queryBlockSize: 64, topK: 4 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 2000, headDim: 128 } },
    // groupSize · queryBlockSize ≤ 16 (a scoring tile this small once stalled SwiftShader).
    { config: { blockSize: 16, queryBlockSize: 16, topK: 1, sinkBlocks: 0, scoring: 'mean' }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 52, headDim: 16 } },
    { config: { blockSize: 8, queryBlockSize: 4, topK: 2 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 37, headDim: 16 } },
  ] as const).map(({ config, shape }, i): GpuCheck => ({
    name: `block top-k on the GPU picks the CPU's blocks and equals core sparseAttention over them: ${JSON.stringify(config)} S${shape.seq} D${shape.headDim}`,
    async run(backend) {
      const resolved = blockTopKConfigSchema.parse(config);
      const input = checkInput(shape, 60 + i, 'structured');
      const gpu = await backend.blockTopKAttention(input, resolved);
      checkTopKAgainstCpu(input, gpu.selection, resolved);
      const exact = sparseAttention(input, gpu.selection);
      expectClose('output', gpu.output.data, exact.output.data);
    },
  })),
  {
    // The decode-shaped scoring kernels (≤ 16 queries): a row's score of a block sums each
    // query's softmax mass, each query normalised by its own lse. One query head's queries are
    // scaled ×8 (a peaked softmax), the others ×0.1 (near-flat ones), so sums of unnormalised
    // e^{z − max} would follow the flat heads and pick other blocks.
    name: "decode-shaped block top-k (≤ 16 queries, GQA 4, one head peaked, three flat) picks the CPU's blocks and equals core sparseAttention over them (quest and mean scoring)",
    async run(backend) {
      for (const [i, config] of [{ blockSize: 16, queryBlockSize: 4, topK: 2 }, { blockSize: 8, queryBlockSize: 2, topK: 3, sinkBlocks: 0, scoring: 'mean' as const }].entries()) {
        const resolved = blockTopKConfigSchema.parse(config);
        const input = checkInput({ batch: 2, queryHeads: 8, kvHeads: 2, seq: 203, headDim: 32, querySeq: 5 }, 140 + i, 'structured');
        const q = input.q.data.slice();
        // [b][h][Sq][D] with H = 8, Sq = 5, D = 32: head 0 of each batch ×8, the rest ×0.1 (near-flat softmaxes).
        for (let b = 0; b < 2; b++) for (let h = 0; h < 8; h++) for (let x = 0; x < 5 * 32; x++) q[(b * 8 + h) * 5 * 32 + x]! *= h === 0 ? 8 : 0.1;
        const call = { ...input, q: { ...input.q, data: q } };
        const gpu = await backend.blockTopKAttention(call, resolved);
        checkTopKAgainstCpu(call, gpu.selection, resolved);
        const exact = sparseAttention(call, gpu.selection);
        expectClose(`${JSON.stringify(config)} output`, gpu.output.data, exact.output.data);
      }
    },
  },
  {
    name: 'gpu.js is attached to the backend device and its block pooling equals the CPU pooling (mean, max, min)',
    async run(backend) {
      const bridge = backend.gpuJs.bridge;
      if (!bridge) throw new Error(`gpu.js not attached: ${backend.gpuJs.reason}`);
      const input = checkInput({ batch: 2, queryHeads: 6, kvHeads: 3, seq: 203, headDim: 24 }, 95);
      const d = validateAttentionInput(input);
      const resident = backend.upload(input, d);
      try {
        const chunk = resident.chunks[0]!;
        if (resident.chunks.length !== 1) throw new Error('expected one chunk');
        const blockSize = 16;
        const blocks = Math.ceil(203 / blockSize);
        const pooled = await poolKeyBlocksGpuJs(bridge, chunk.k, { slots: chunk.slots, keySeq: 203, keyStride: 203, blockSize, blocks, dim: 24 }, true);
        const cpu = poolKeyBlocks(input, blockSize);
        const bytes = cpu.mean.length * 4;
        expectClose('mean', await backend.read(pooled.mean.buffer, bytes), cpu.mean);
        expectClose('max', await backend.read(pooled.max!.buffer, bytes), cpu.max);
        expectClose('min', await backend.read(pooled.min!.buffer, bytes), cpu.min);
        for (const p of [pooled.mean, pooled.max!, pooled.min!]) p.delete();
      } finally {
        backend.release(resident);
      }
      const result = await backend.blockTopKAttention(checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 100, headDim: 16 }, 96), { blockSize: 16, queryBlockSize: 16, topK: 2 });
      if (!result.backend.kernel.includes('gpu.js')) throw new Error(`block top-k recorded ${JSON.stringify(result.backend)}`);
    },
  },
  {
    name: 'calls larger than one binding are split into chunks with the same results',
    async run(backend) {
      const input = checkInput({ batch: 2, queryHeads: 6, kvHeads: 3, seq: 64, headDim: 16 }, 90);
      // No gpu.js on this one: the WGSL pooling fallback runs, and results say so.
      const small = new GpuBackend({ ...backend.context, maxBinding: 2 * 2 * 64 * 16 * 4 });
      const gpu = await small.denseAttention(input);
      expectClose('dense output', gpu.output.data, referenceAttention(input).output.data);
      for (const scoring of ['quest', 'mean'] as const) {
        const config = blockTopKConfigSchema.parse({ blockSize: 16, queryBlockSize: 16, topK: 1, scoring });
        const blocks = await small.blockTopKAttention(input, config);
        checkTopKAgainstCpu(input, blocks.selection, config);
        expectClose('block top-k output', blocks.output.data, sparseAttention(input, blocks.selection).output.data);
        if (!blocks.backend.fallbackReason?.includes('WGSL')) throw new Error(`fallback not recorded: ${JSON.stringify(blocks.backend)}`);
      }
    },
  },
  {
    name: 'dense, the sparse executors (rows, split-K, key-blocks) and block top-k read keys at slot · keyStride (a KV cache view with spare rows) as over compact keys',
    async run(backend) {
      const shape = { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32, valueDim: 24 };
      const input = checkInput(shape, 91);
      const resident = backend.upload(input);
      const mode = backend.sparseExecutor;
      try {
        await expectKeyStrideHonoured(backend, 'dense', resident, (r) => backend.runDense(r));
        const config = blockTopKConfigSchema.parse({ blockSize: 16, queryBlockSize: 16, topK: 3 });
        await expectKeyStrideHonoured(backend, 'block top-k (pooling, scoring, selection, attention)', resident, (r) => backend.runBlockTopK(r, config));
        const selection = randomBlockSelection(2, 2, shape.seq, shape.seq, 16, 1, 92, 'kv', 0.4);
        for (const executor of ['rows', 'key-blocks', 'split-k'] as const) {
          backend.sparseExecutor = executor;
          await expectKeyStrideHonoured(backend, `the ${executor} executor`, resident, async (r) => {
            const gpu = backend.uploadSelection(r, selection);
            try {
              await backend.runSparse(r, gpu);
            } finally {
              backend.releaseSelection(gpu);
            }
          });
        }
        const decode = checkInput({ ...shape, querySeq: 1 }, 93);
        const step = backend.upload(decode);
        try {
          await expectKeyStrideHonoured(backend, 'the split-K decode kernel', step, (r) => runDecodeAttention(backend, r));
        } finally {
          backend.release(step);
        }
      } finally {
        backend.sparseExecutor = mode;
        backend.release(resident);
      }
    },
  },
  {
    // Dense, the split-K and key-block executors and reads inside one recorded submission: a read
    // must submit what was recorded before it, and the key-block executor's kept scratch must be
    // given back only after the submission.
    name: 'oneSubmission: calls recorded into one submission give the results of separate calls; reads inside it see the work before them; it does not nest; it reports the GPU time of its passes (per pass in lastPassMs) where the device has timestamps',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 300, headDim: 32 }, 151);
      const decode = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 300, headDim: 32, querySeq: 2 }, 152);
      const blocks = randomBlockSelection(1, 4, 300, 300, 32, 1, 153, 'query', 0.5);
      const decodeBlocks = randomBlockSelection(1, 4, 2, 300, 32, 1, 154, 'query', 0.5);
      const d = validateAttentionInput(input);
      if (backend.executorFor(blocks, d) !== 'key-blocks' || backend.executorFor(decodeBlocks, validateAttentionInput(decode)) !== 'split-k') throw new Error('the check expects the key-block and split-K executors');
      const resident = backend.upload(input, d);
      try {
        backend.gpuTiming = true;
        const { value, ms, gpuMs } = await backend.oneSubmission(async () => ({
          dense: await backend.denseAttention(input),
          keyBlocks: await backend.sparseAttention(input, blocks),
          splitK: await backend.sparseAttention(decode, decodeBlocks),
          denseMs: await backend.runDense(resident),
        }));
        expectClose('dense output', value.dense.output.data, referenceAttention(input).output.data);
        expectClose('key-block output', value.keyBlocks.output.data, sparseAttention(input, blocks).output.data);
        expectClose('split-K output', value.splitK.output.data, sparseAttention(decode, decodeBlocks).output.data);
        if (value.denseMs !== 0 || !(ms > 0)) throw new Error(`recorded calls resolve with 0 ms and the submission with its time, got ${value.denseMs} and ${ms}`);
        backend.gpuTiming = false;
        // The reads inside split the recording into several passes: their GPU times are summed.
        const gpuOk = backend.context.timestamps ? gpuMs !== undefined && gpuMs > 0 && gpuMs <= ms : gpuMs === undefined;
        if (!gpuOk) throw new Error(`gpuMs should be in (0, ${ms}] where the device has timestamps (${backend.context.timestamps}) and absent otherwise, got ${gpuMs}`);
        // lastPassMs: each pass's time (at least two: the reads split the recording), summing to gpuMs.
        const passes = backend.lastPassMs;
        const passSum = passes?.reduce((a, b) => a + b, 0);
        const passesOk = backend.context.timestamps ? passes !== undefined && passes.length >= 2 && passes.every((p) => p >= 0) && Math.abs(passSum! - gpuMs!) <= 1e-9 * gpuMs! : passes === undefined;
        if (!passesOk) throw new Error(`lastPassMs should hold each pass's GPU time summing to gpuMs ${gpuMs} (timestamps: ${backend.context.timestamps}), got ${JSON.stringify(passes)}`);
        const untimed = await backend.oneSubmission(() => backend.runDense(resident));
        if (untimed.gpuMs !== undefined || backend.lastPassMs !== undefined) throw new Error(`without gpuTiming a submission reports no GPU time, got ${untimed.gpuMs} and passes ${JSON.stringify(backend.lastPassMs)}`);
        const { output } = await backend.readOutput(resident);
        expectClose('resident dense output', output.data, referenceAttention(input).output.data);
        let nested: unknown;
        await backend.oneSubmission(() => backend.oneSubmission(async () => 0)).catch((error: unknown) => (nested = error));
        if (!(nested instanceof Error) || !nested.message.includes('does not nest')) throw new Error(`a nested oneSubmission should throw, got ${String(nested)}`);
        // After a body that threw, calls submit on their own again.
        if (!((await backend.runDense(resident)) > 0)) throw new Error('runDense after oneSubmission should be timed on its own');
      } finally {
        backend.gpuTiming = false;
        backend.release(resident);
      }
    },
  },
  {
    // The benchmark's timed calls ask for one submission (`oneSubmissionCheck` covers their
    // results); the row then takes its split from as many calls with separate submissions.
    name: 'the gpu-attention suite times block top-k in one submission and reports its split from separate calls, GPU times where the device has timestamps, a loaded twin of every decode row, and the submission floor under a decode step',
    async run(backend) {
      const rows = await runGpuBenchmark(backend, { quick: true, seqLengths: [512], repeats: 2, seed: 1, backend: 'gpu' }, { heads: 2, headDim: 16 }, { methods: [{ definition: gpuBlockTopKMethod }] });
      const row = rows.find((r) => r.method === gpuBlockTopKMethod.id && r.workload === 'gaussian-gpu');
      const m: Readonly<Record<string, number | undefined>> = row?.metrics ?? {};
      const positive = ['ms', 'splitMs', 'selectionMs', 'attentionMs'].every((key) => (m[key] ?? 0) > 0);
      if (m['oneSubmission'] !== 1 || !positive || !Number.isFinite(m['speedupVsDense'])) throw new Error(`suite row ${JSON.stringify(row)}`);
      // With timestamps, the GPU time of the timed calls and of dense's, and their ratio.
      const dense = rows.find((r) => r.method === 'dense' && r.workload === 'gaussian-gpu')?.metrics ?? {};
      // (From calls of their own, so a row's gpuMs need not be below its ms: SwiftShader's were 5% above.)
      const timed = (x: Readonly<Record<string, number | undefined>>) => (x['gpuMs'] ?? 0) > 0 && Number.isFinite(x['gpuMs']);
      if (backend.context.timestamps ? !timed(m) || !timed(dense) || !Number.isFinite(m['gpuSpeedupVsDense']) : m['gpuMs'] !== undefined) throw new Error(`suite rows' GPU times (timestamps: ${backend.context.timestamps}): ${JSON.stringify({ row: m, dense })}`);
      // The runtime's floor under a decode step: 1 and 3 counted dispatches, each against dense's step.
      const floors = rows.filter((r) => r.method === 'submission-floor');
      const floorOk = (n: number) => floors.some((r) => r.workload === 'gaussian-gpu-decode' && r.metrics['dispatches'] === n && (r.metrics['ms'] ?? 0) > 0 && Number.isFinite(r.metrics['speedupVsDense']));
      if (floors.length !== 2 || !floorOk(1) || !floorOk(3)) throw new Error(`submission-floor rows ${JSON.stringify(floors)}`);
      // Every decode row (dense's always) has its twin timed after dense work, with the ratio to dense's loaded step.
      const decodeRows = rows.filter((r) => r.workload === 'gaussian-gpu-decode' && r.method !== 'submission-floor');
      if (!decodeRows.some((r) => r.method === 'dense')) throw new Error(`no dense decode row: ${JSON.stringify(rows.map((r) => [r.method, r.workload]))}`);
      for (const r of decodeRows) {
        const twin = rows.find((x) => x.method === r.method && x.workload === 'gaussian-gpu-decode-loaded')?.metrics ?? {};
        const ratioOk = r.method === 'dense' ? twin['speedupVsDense'] === undefined : Number.isFinite(twin['speedupVsDense']);
        if (!((twin['ms'] ?? 0) > 0 && twin['loadSeq'] === 256 && ratioOk)) throw new Error(`${r.method}'s loaded decode row ${JSON.stringify(twin)}`);
      }
    },
  },
  {
    name: 'the gpu-decoders suite steps the dense and block top-k decoders after a context, on an idle and a loaded GPU, and reports each step\'s time, density and ratio to the dense decoder',
    async run(backend) {
      const context = { quick: false, seqLengths: [1500], repeats: 1, seed: 1, backend: 'gpu' as const };
      const rows = await runGpuDecoderBenchmark(backend, context, [gpuBlockTopKMethod], { shape: { heads: 4, kvHeads: 2, headDim: 16 }, warmupSteps: 1, timedSteps: 2, loadSeq: 128 });
      const workloads = ['uniform-gpu-decoder-gqa2', 'uniform-gpu-decoder-gqa2-loaded'];
      if (rows.length !== 4 || rows.some((r) => !workloads.includes(r.workload) || r.seqLength !== 1500)) throw new Error(`rows ${JSON.stringify(rows)}`);
      for (const workload of workloads) {
        const row = (id: string) => rows.find((r) => r.method === id && r.workload === workload)?.metrics ?? {};
        const dense = row('dense');
        const blocks = row(gpuBlockTopKMethod.id);
        // The context's time is on the idle rows only (one context serves both).
        const idle = workload === workloads[0];
        if (!((dense['ms'] ?? 0) > 0 && dense['density'] === 1 && dense['speedupVsDense'] === undefined && (dense['contextMs'] !== undefined) === idle)) throw new Error(`dense row ${JSON.stringify(dense)}`);
        const density = blocks['density'] ?? 0;
        if (!((blocks['ms'] ?? 0) > 0 && density > 0 && density < 1 && Number.isFinite(blocks['speedupVsDense']) && (idle ? (blocks['contextMs'] ?? -1) >= 0 : blocks['contextMs'] === undefined))) throw new Error(`block top-k row ${JSON.stringify(blocks)}`);
      }
    },
  },
  {
    // Creating a buffer costs Dawn ~30 ms per GiB on the H100, so large per-call buffers are kept
    // for the next call of the same size: a kept one must come back zeroed, and none beyond the cap.
    name: 'large per-call buffers (above 4 MiB) are kept for the next call of the same size, zeroed on reuse, and not beyond keptBufferBytes',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 64, headDim: 16 }, 155);
      const resident = backend.upload(input, validateAttentionInput(input));
      const cap = backend.keptBufferBytes;
      try {
        const bytes = 5 * 1024 * 1024;
        const first = backend.scratchBuffer(bytes);
        backend.context.device.queue.writeBuffer(first, 0, new Float32Array([7, 7, 7, 7]));
        backend.discard(first);
        const again = backend.scratchBuffer(bytes);
        if (again !== first) throw new Error('a large buffer of the same size was not reused');
        await backend.runDense(resident);
        const head = await backend.read(again, 16);
        if (head.some((x) => x !== 0)) throw new Error(`a reused large buffer was not zeroed: ${Array.from(head).join(', ')}`);
        backend.keptBufferBytes = bytes - 1;
        backend.discard(again);
        const fresh = backend.scratchBuffer(bytes);
        if (fresh === again) throw new Error('a buffer above keptBufferBytes was kept');
        backend.discard(fresh);
      } finally {
        backend.keptBufferBytes = cap;
        backend.release(resident);
      }
    },
  },
  {
    name: "device.onuncapturederror can be assigned (Dawn's setter is replaced once at initialisation)",
    async run(backend) {
      const device = backend.context.device;
      const handler = () => undefined;
      device.onuncapturederror = handler;
      if (device.onuncapturederror !== handler) throw new Error('onuncapturederror did not keep the assigned handler');
      device.onuncapturederror = null;
    },
  },
];

/**
 * Checks a GPU block selection against CPU scores: every row has the CPU's row count, keeps
 * every forced block, and is a valid top-k under the CPU scores up to float32 rounding (a block
 * the GPU kept may differ from the CPU's only where their scores tie within 1e-4 relative).
 */
export function checkTopKAgainstCpu(input: AttentionInput, selection: Selection, config: BlockTopKConfig): void {
  const d = validateAttentionInput(input);
  const pooled = poolKeyBlocks(input, config.blockSize);
  const scores = scoreKeyBlocks(input, pooled, config);
  const rows = Math.ceil(d.querySeq / config.queryBlockSize);
  for (let slot = 0; slot < d.batch * d.kvHeads; slot++) {
    for (let r = 0; r < rows; r++) {
      const row = slot * rows + r;
      const g = rowGeometry(d, config, pooled.blocks, r);
      const picked = new Set(Array.from(selection.indices.subarray(selection.offsets[row]!, selection.offsets[row + 1]!)));
      const forced = (j: number) => j < config.sinkBlocks || j >= g.localStart;
      let forcedCount = 0;
      for (let j = 0; j < g.visible; j++) if (forced(j)) forcedCount++;
      const expected = Math.min(g.visible, forcedCount + config.topK);
      if (picked.size !== expected) throw new Error(`row ${row}: GPU picked ${picked.size} blocks, expected ${expected}`);
      let minPicked = Infinity;
      let maxOther = -Infinity;
      for (let j = 0; j < g.visible; j++) {
        const score = scores[row * pooled.blocks + j]!;
        if (forced(j)) {
          if (!picked.has(j)) throw new Error(`row ${row}: forced block ${j} missing`);
        } else if (picked.has(j)) minPicked = Math.min(minPicked, score);
        else maxOther = Math.max(maxOther, score);
      }
      for (const j of picked) if (j >= g.visible) throw new Error(`row ${row}: block ${j} is after the row's last query`);
      if (maxOther > minPicked + 1e-4 * Math.max(1, Math.abs(minPicked))) {
        throw new Error(`row ${row}: GPU kept a block scoring ${minPicked} over one scoring ${maxOther}`);
      }
    }
  }
}
