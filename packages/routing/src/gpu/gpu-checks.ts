/**
 * GPU-vs-CPU agreement checks of the routing family (framework-free: they run in headless
 * Chromium under vitest, and in Node wherever Dawn loads). Each check runs the GPU method and the
 * CPU method on the same input and requires the same selection (exactly) and output / lse within
 * `GPU_TOLERANCE` relative L2.
 */
import {
  ConfigError,
  rowOffset,
  ShapeError,
  sliceSeq,
  sparseAttention,
  validateAttentionInput,
  type AttentionInput,
  type AttentionResult,
} from '@sparse-attn/core';
import { GpuBackend, checkInput, describeCheckShape, expectClose, expectKeyStrideHonoured, expectLseClose, expectSameSelection, type CheckShape, type GpuAttentionMethod, type GpuCheck } from '@sparse-attn/backend-gpu';
import { biformerConfigSchema, biformerMethod } from '../biformer-attention.js';
import { gpuBiformerMethod } from './gpu-biformer.js';
import { headSeed } from '../balanced-routing-attention.js';
import { normalizeRows } from '../normalize-rows.js';
import { resolveClusters, resolveSampleSize, routingConfigSchema } from '../routing-config.js';
import { assignTopClusters, dotRows, sphericalKMeans } from '../spherical-kmeans.js';
import { fitRoutingGpu } from './gpu-routing-kmeans.js';
import { gpuRoutingMethod, runRouting, runRoutingResident } from './gpu-routing.js';
import { routingMethod } from '../routing-method.js';

/**
 * The GPU result against the CPU method's: same selection, output and lse within tolerance (the
 * CPU method does not return lse, so its lse is core's executor over the CPU selection), same
 * pair count.
 */
export function expectMatchesCpu(input: AttentionInput, gpu: AttentionResult & { readonly lse?: Float32Array }, cpu: AttentionResult): void {
  if (!gpu.selection || !cpu.selection) throw new Error('both results must carry their selection');
  expectSameSelection('prefill', gpu.selection, cpu.selection);
  expectClose('output', gpu.output.data, cpu.output.data);
  const exact = sparseAttention(input, cpu.selection);
  if (!gpu.lse) throw new Error('GPU result has no lse');
  expectLseClose('lse', gpu.lse, exact.lse!);
  if (gpu.stats.pairs !== cpu.stats.pairs) throw new Error(`pairs: GPU ${gpu.stats.pairs}, CPU ${cpu.stats.pairs}`);
  if (gpu.backend.backend !== 'gpu') throw new Error(`backend recorded as ${JSON.stringify(gpu.backend)}`);
}

/**
 * `runRoutingResident` (the cluster-major executor, seeded on the host as the CPU seeds) on an
 * upload of `input`: the CPU method's output, lse (core's executor over the CPU selection) and
 * density.
 */
async function expectClusterExecutorMatchesCpu(backend: GpuBackend, input: AttentionInput, config: Record<string, unknown>, cpu: AttentionResult): Promise<void> {
  const d = validateAttentionInput(input);
  const resident = backend.upload(input, d);
  try {
    const result = await runRoutingResident(backend, resident, routingConfigSchema.parse(config), { seeding: 'cpu' });
    const { output, lse } = await backend.readOutput(resident);
    expectClose('cluster executor output', output.data, cpu.output.data);
    expectLseClose('cluster executor lse', lse, sparseAttention(input, cpu.selection!).lse!);
    if (Math.abs(result.density - cpu.stats.density) > 1e-12) throw new Error(`cluster executor density ${result.density}, CPU ${cpu.stats.density}`);
  } finally {
    backend.release(resident);
  }
}

/** Runs `fn` and requires it to throw an error of `type` with the same message the CPU throws. */
/**
 * The benchmark's timed calls: `runResident(…, { density: false, oneSubmission: true })` on a fresh upload writes the
 * CPU output and reports no density (nothing read back to count pairs).
 */
async function expectTimedCallMatchesCpu(backend: GpuBackend, method: GpuAttentionMethod, input: AttentionInput, cpu: AttentionResult): Promise<void> {
  const resident = backend.upload(input, validateAttentionInput(input));
  try {
    const timed = await method.runResident!(resident, { density: false, oneSubmission: true });
    if (timed.oneSubmission !== true) throw new Error('the timed call should have run as one submission');
    if (timed.density !== undefined) throw new Error(`density ${timed.density} reported without being asked for`);
    expectClose('output (density: false)', (await backend.readOutput(resident)).output.data, cpu.output.data);
  } finally {
    backend.release(resident);
  }
}

async function expectSameError(what: string, gpu: () => Promise<unknown>, cpu: () => unknown, type: typeof ConfigError | typeof ShapeError): Promise<void> {
  let cpuError: unknown;
  try {
    cpu();
  } catch (error) {
    cpuError = error;
  }
  if (!(cpuError instanceof type)) throw new Error(`${what}: the CPU method did not throw ${type.name} (${String(cpuError)})`);
  try {
    await gpu();
  } catch (error) {
    if (!(error instanceof type) || error.message !== cpuError.message) throw new Error(`${what}: GPU threw ${String(error)}, CPU ${String(cpuError)}`);
    return;
  }
  throw new Error(`${what}: the GPU method did not throw`);
}

const biformerCases: readonly { readonly config: Record<string, unknown>; readonly shape: CheckShape; readonly kind?: 'structured' }[] = [
  // Length not a multiple of the region size.
  { config: { regionSize: 16, topK: 3 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 203, headDim: 32 } },
  // Head dims that are not a multiple of 4 (the affinity kernel's and the attention's scalar loads), GQA.
  { config: { regionSize: 16, topK: 3 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 130, headDim: 18, valueDim: 10 } },
  // GQA, batch 2, per-head routing and the shared routing graph.
  { config: { regionSize: 16, topK: 4 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 16 } },
  { config: { regionSize: 16, topK: 4, routingScope: 'shared' }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 16, valueDim: 24 } },
  // Length 1.
  { config: { regionSize: 8, topK: 2 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1, headDim: 16 } },
  // Non-causal, with and without the diagonal.
  { config: { regionSize: 16, topK: 3, includeDiagonal: false }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 100, headDim: 16, causal: false } },
  { config: { regionSize: 10, topK: 2, routingScope: 'shared' }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 95, headDim: 20, causal: false } },
  // A query chunk starting mid-region (one selection row per query) and one starting on a boundary.
  { config: { regionSize: 16, topK: 2 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 77, headDim: 16, querySeq: 5 } },
  { config: { regionSize: 16, topK: 2, includeDiagonal: false }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 96, headDim: 16, querySeq: 32 } },
  // Every region routed (dense), and the defaults at a longer length on the structured workload.
  { config: { regionSize: 8, topK: 100 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 60, headDim: 16 } },
  { config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1000, headDim: 64 }, kind: 'structured' },
  // More than 64 regions (several 64×64 affinity tiles, the one above the diagonal skipped), shared
  // graph; then k = 20 > 16, the workgroup top-k kernel instead of the register one.
  { config: { regionSize: 4, topK: 5, routingScope: 'shared' }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 290, headDim: 16 } },
  { config: { regionSize: 4, topK: 20 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 300, headDim: 16 } },
];

const kmeansCases: readonly { readonly config: Record<string, unknown>; readonly shape: CheckShape }[] = [
  // Every key in the fit (S ≤ sample), GQA, batch 2.
  { config: { clusters: 6 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 16 } },
  // A head dim that is not a multiple of 4 (the k-means kernels' scalar channel loop).
  { config: { clusters: 4 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 90, headDim: 18 } },
  // A seeded subsample, layernorm, three clusters per key and query.
  { config: { clusters: 5, kmeansSampleSize: 100, normalization: 'layernorm', keyClusters: 3, queryClusters: 3 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 301, headDim: 24 } },
  // Defaults (C = round(√S) = 32, sample 512 of 1000 keys), a query chunk, length 1.
  { config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 1000, headDim: 64, querySeq: 200 } },
  { config: {}, shape: { batch: 1, queryHeads: 1, kvHeads: 1, seq: 1, headDim: 16 } },
];

const routingCases: readonly { readonly config: Record<string, unknown>; readonly shape: CheckShape; readonly kind?: 'structured' }[] = [
  // Length not a multiple of the window, defaults otherwise (balanced+nearest, sinks 4, local always).
  // (Head dims that are not multiples of 4 are left out: routing's cluster-major attention, the flash
  // kernel's `lists` mode with scalar loads, loses the device in Chromium/SwiftShader, with D or Dv
  // not a multiple of 4. They pass on the H100; see the README.)
  { config: { clusters: 6 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 150, headDim: 16 } },
  // GQA, batch 2.
  { config: { clusters: 5 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 130, headDim: 16, valueDim: 24 } },
  // Length 1.
  { config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1, headDim: 16 } },
  // Non-causal, local window only for uncovered queries.
  { config: { clusters: 4, local: 'uncovered' }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 100, headDim: 16, causal: false } },
  // Reference semantics: balanced top-w only, no sinks, no local window (uncovered queries output 0).
  { config: { clusters: 6, membership: 'balanced', local: 'never', sinkTokens: 0 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 120, headDim: 16 } },
  // A query chunk, layernorm, r_k 3 / r_q 1, a configured window (clusters overlap: C·w > S), a subsample.
  { config: { clusters: 8, window: 40, keyClusters: 3, queryClusters: 1, normalization: 'layernorm', local: 'uncovered', kmeansSampleSize: 120 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 200, headDim: 20, querySeq: 40 } },
  // Every query in all 40 clusters (past the 16 kept in registers for de-duplication), keys in two or three.
  { config: { clusters: 40, window: 1, queryClusters: 40, keyClusters: 2, local: 'never', sinkTokens: 0 }, shape: { batch: 1, queryHeads: 2, kvHeads: 2, seq: 90, headDim: 16 } },
  // The defaults (C = round(√S) = 32, sample 512) at S = 1000 on the structured workload.
  { config: {}, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1000, headDim: 64 }, kind: 'structured' },
  // C = 100 (w = 10 ≤ 16 blocks of 64 positions: the top-w from the candidates of the blocks at or above the w-th block key).
  { config: { clusters: 100 }, shape: { batch: 1, queryHeads: 2, kvHeads: 1, seq: 1000, headDim: 64 }, kind: 'structured' },
];

/** Every GPU check of the routing family, in the order they run. */
export const gpuChecks: readonly GpuCheck[] = [
  ...biformerCases.map(({ config, shape, kind }, i): GpuCheck => ({
    name: `biformer on the GPU routes the CPU's regions and equals its output: ${JSON.stringify(config)} ${describeCheckShape(shape)}`,
    async run(backend) {
      const input = checkInput(shape, 100 + i, kind);
      const gpu = await gpuBiformerMethod.create(backend, config).prefill(input);
      const cpu = biformerMethod.create(config).prefill(input);
      expectMatchesCpu(input, gpu, cpu);
      for (const key of Object.keys(cpu.diagnostics ?? {})) {
        if (gpu.diagnostics?.[key] !== cpu.diagnostics?.[key]) throw new Error(`diagnostics.${key}: GPU ${gpu.diagnostics?.[key]}, CPU ${cpu.diagnostics?.[key]}`);
      }
    },
  })),
  {
    name: 'biformer on the GPU split into chunks (a batch across chunks, shared graph) equals the CPU method',
    async run(backend) {
      const shape: CheckShape = { batch: 2, queryHeads: 6, kvHeads: 3, seq: 64, headDim: 16 };
      const input = checkInput(shape, 130);
      // One KV slot per chunk: the shared graph of a batch reads query means written by other chunks.
      const small = new GpuBackend({ ...backend.context, maxBinding: 2 * 64 * 16 * 4 }, { reason: 'not needed' });
      for (const routingScope of ['shared', 'head'] as const) {
        const config = { regionSize: 8, topK: 3, routingScope };
        const gpu = await gpuBiformerMethod.create(small, config).prefill(input);
        expectMatchesCpu(input, gpu, biformerMethod.create(config).prefill(input));
      }
    },
  },
  {
    name: 'biformer runResident on resident inputs writes the CPU output and reports its density (uploaded and seeded GPU inputs)',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 300, headDim: 32 }, 131);
      const d = validateAttentionInput(input);
      const config = { regionSize: 32, topK: 3 };
      const method = gpuBiformerMethod.create(backend, config);
      const cpu = biformerMethod.create(config).prefill(input);
      const uploaded = backend.upload(input, d);
      try {
        const result = await method.runResident!(uploaded);
        if (result.density !== cpu.stats.density) throw new Error(`density ${result.density}, CPU ${cpu.stats.density}`);
        expectClose('output', (await backend.readOutput(uploaded)).output.data, cpu.output.data);
        if (!(result.selectionMs >= 0 && result.attentionMs >= 0)) throw new Error('timings missing');
      } finally {
        backend.release(uploaded);
      }
      await expectTimedCallMatchesCpu(backend, method, input, cpu);
      // Seeded inputs (as the benchmark uses): causal with the diagonal forced, the pair count does not
      // depend on which earlier regions win, so the CPU's density on any input of these dims is the expected one.
      const seeded = await backend.randomResident(d, 7);
      try {
        const result = await method.runResident!(seeded);
        if (result.density !== cpu.stats.density) throw new Error(`seeded density ${result.density}, expected ${cpu.stats.density}`);
        const { output } = await backend.readOutput(seeded);
        if (!output.data.every(Number.isFinite) || output.data.every((x) => x === 0)) throw new Error('seeded run wrote no finite output');
      } finally {
        backend.release(seeded);
      }
    },
  },
  {
    name: "biformer on the GPU throws the CPU method's typed errors on bad config and bad input",
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 2, seq: 20, headDim: 16 }, 140);
      await expectSameError('regionSize 0', async () => gpuBiformerMethod.create(backend, { regionSize: 0 }), () => biformerMethod.create({ regionSize: 0 }), ConfigError);
      await expectSameError('routingScope global', async () => gpuBiformerMethod.create(backend, { routingScope: 'global' }), () => biformerMethod.create({ routingScope: 'global' } as never), ConfigError);
      const bad: AttentionInput = { ...input, k: sliceSeq(input.k, 0, 10) };
      const config = biformerConfigSchema.parse({ regionSize: 8 });
      await expectSameError('keys shorter than values', () => gpuBiformerMethod.create(backend, config).prefill(bad), () => biformerMethod.create(config).prefill(bad), ShapeError);
    },
  },
  ...kmeansCases.map(({ config, shape }, i): GpuCheck => ({
    name: `routing k-means and nearest-centroid membership on the GPU equal the CPU's: ${JSON.stringify(config)} ${describeCheckShape(shape)}`,
    async run(backend) {
      const input = checkInput(shape, 150 + i, 'structured');
      expectRoutingFitMatchesCpu(input, config, await fitRoutingGpu(backend, input, routingConfigSchema.parse(config)));
    },
  })),
  ...[...kmeansCases.map((c) => ({ ...c, config: { ...c.config, kmeansIterations: 0 } })), ...kmeansCases].map(({ config, shape }, i): GpuCheck => ({
    name: `routing k-means++ seeding on the GPU (the CPU's draws) then k-means equal the CPU's: ${JSON.stringify(config)} ${describeCheckShape(shape)}`,
    async run(backend) {
      const input = checkInput(shape, 150 + (i % kmeansCases.length), 'structured');
      expectRoutingFitMatchesCpu(input, config, await fitRoutingGpu(backend, input, routingConfigSchema.parse(config), 'gpu'));
    },
  })),
  ...routingCases.map(({ config, shape, kind }, i): GpuCheck => ({
    name: `routing on the GPU selects the CPU's keys and equals its output: ${JSON.stringify(config)} ${describeCheckShape(shape)}`,
    async run(backend) {
      const input = checkInput(shape, 170 + i, kind);
      const gpu = await gpuRoutingMethod.create(backend, config).prefill(input);
      const cpu = routingMethod.create(config).prefill(input);
      expectMatchesCpu(input, gpu, cpu);
      for (const key of Object.keys(gpu.diagnostics ?? {})) {
        if (gpu.diagnostics?.[key] !== cpu.diagnostics?.[key]) throw new Error(`diagnostics.${key}: GPU ${gpu.diagnostics?.[key]}, CPU ${cpu.diagnostics?.[key]}`);
      }
      // The cluster-major executor (runResident) on the same centroids: the CPU output, lse and pairs.
      await expectClusterExecutorMatchesCpu(backend, input, config, cpu);
    },
  })),
  // Similarity ties at every cluster's w-th key, ranked by position: S = 100 (fewer 64-position
  // blocks than w: the whole column is radix-selected), S = 2000 (the top-w ranks the ~200 tied
  // candidates of the blocks at or above the w-th block key), S = 2048 with every key equal (more
  // candidates than the top-w keeps in workgroup memory: the whole column again).
  ...[
    { seq: 100, period: 10 },
    { seq: 2000, period: 10 },
    { seq: 2048, period: 1 },
  ].map(({ seq, period }): GpuCheck => ({
    name: `routing on the GPU with keys repeated every ${period} positions at S = ${seq} (similarity ties at every cluster's w-th key: ranked by position) selects the CPU's keys`,
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq, headDim: 16 }, 196);
      const k = input.k.data;
      for (let i = period; i < seq; i++) k.copyWithin(i * 16, (i % period) * 16, (i % period) * 16 + 16);
      const config = { clusters: 4, window: 25, sinkTokens: 0, local: 'never' as const, membership: 'balanced' as const };
      const gpu = await gpuRoutingMethod.create(backend, config).prefill(input);
      const cpu = routingMethod.create(config).prefill(input);
      expectMatchesCpu(input, gpu, cpu);
      await expectClusterExecutorMatchesCpu(backend, input, config, cpu);
    },
  })),
  {
    name: 'routing on the GPU split into chunks (one KV slot each) equals the CPU method',
    async run(backend) {
      const input = checkInput({ batch: 2, queryHeads: 4, kvHeads: 2, seq: 64, headDim: 64 }, 190);
      // One KV slot's queries fill a binding; its selection (≈ 40 keys per row) fits in one.
      const small = new GpuBackend({ ...backend.context, maxBinding: 2 * 64 * 64 * 4 }, { reason: 'not needed' });
      const config = { clusters: 4 };
      expectMatchesCpu(input, await gpuRoutingMethod.create(small, config).prefill(input), routingMethod.create(config).prefill(input));
      // A selection that outgrows the binding is refused with a ConfigError, not truncated.
      const tiny = new GpuBackend({ ...backend.context, maxBinding: 2 * 64 * 16 * 4 }, { reason: 'not needed' });
      const narrow = checkInput({ batch: 1, queryHeads: 2, kvHeads: 1, seq: 64, headDim: 16 }, 193);
      let thrown: unknown;
      try {
        await gpuRoutingMethod.create(tiny, config).prefill(narrow);
      } catch (error) {
        thrown = error;
      }
      if (!(thrown instanceof ConfigError) || !thrown.message.includes('largest buffer binding')) throw new Error(`expected the binding ConfigError, got ${String(thrown)}`);
    },
  },
  {
    name: 'routing runResident (seeding on the GPU; and on the host from the read-back subsample, streamed by KV slot) writes the CPU output and reports its density',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 300, headDim: 32 }, 191);
      const d = validateAttentionInput(input);
      const config = { clusters: 10, kmeansSampleSize: 150 };
      const method = gpuRoutingMethod.create(backend, config);
      const cpu = routingMethod.create(config).prefill(input);
      const uploaded = backend.upload(input, d);
      try {
        const result = await method.runResident!(uploaded);
        if (Math.abs(result.density! - cpu.stats.density) > 1e-12) throw new Error(`density ${result.density}, CPU ${cpu.stats.density}`);
        expectClose('output', (await backend.readOutput(uploaded)).output.data, cpu.output.data);
      } finally {
        backend.release(uploaded);
      }
      await expectTimedCallMatchesCpu(backend, method, input, cpu);
      // Streamed one KV slot at a time (copies in and out), as at long lengths.
      const streamed = backend.upload(input, d);
      try {
        const result = await runRoutingResident(backend, streamed, routingConfigSchema.parse(config), { slotsPerGroup: 1, seeding: 'cpu' });
        if (Math.abs(result.density - cpu.stats.density) > 1e-12) throw new Error(`streamed density ${result.density}, CPU ${cpu.stats.density}`);
        expectClose('streamed output', (await backend.readOutput(streamed)).output.data, cpu.output.data);
      } finally {
        backend.release(streamed);
      }
      const seeded = await backend.randomResident(d, 9);
      try {
        const result = await method.runResident!(seeded);
        if (!(result.density! > 0 && result.density! <= 1)) throw new Error(`seeded density ${result.density}`);
        const { output } = await backend.readOutput(seeded);
        if (!output.data.every(Number.isFinite) || output.data.every((x) => x === 0)) throw new Error('seeded run wrote no finite output');
      } finally {
        backend.release(seeded);
      }
    },
  },
  {
    name: 'routing runResident at S = 2048, D = 128 (the benchmark head dim) with the defaults (C = 45, a partial centroid tile; sample 720; GQA) writes the CPU output and density',
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 2048, headDim: 128 }, 195, 'structured');
      const d = validateAttentionInput(input);
      const cpu = routingMethod.create({}).prefill(input);
      const resident = backend.upload(input, d);
      try {
        const result = await gpuRoutingMethod.create(backend, {}).runResident!(resident);
        if (Math.abs(result.density! - cpu.stats.density) > 1e-12) throw new Error(`density ${result.density}, CPU ${cpu.stats.density}`);
        expectClose('output', (await backend.readOutput(resident)).output.data, cpu.output.data);
      } finally {
        backend.release(resident);
      }
    },
  },
  {
    name: 'routing runResident routes KV-slot groups inside one chunk (slot offsets into its buffers, no copies), and writes the CPU output (also recorded as one submission)',
    async run(backend) {
      const input = checkInput({ batch: 2, queryHeads: 4, kvHeads: 2, seq: 64, headDim: 16 }, 194);
      const d = validateAttentionInput(input);
      const config = { clusters: 4 };
      const cpu = routingMethod.create(config).prefill(input);
      const resident = backend.upload(input, d);
      try {
        if (resident.chunks.length !== 1) throw new Error(`expected one chunk, got ${resident.chunks.length}`);
        // Groups of 3 + 1 of the chunk's four KV slots: the second starts at slot offset 3.
        const result = await runRoutingResident(backend, resident, routingConfigSchema.parse(config), { slotsPerGroup: 3, seeding: 'cpu' });
        if (Math.abs(result.density - cpu.stats.density) > 1e-12) throw new Error(`density ${result.density}, CPU ${cpu.stats.density}`);
        expectClose('output', (await backend.readOutput(resident)).output.data, cpu.output.data);
        const { kmeansMs, membershipMs, selectionMs } = result.phases;
        if (Math.abs(kmeansMs + membershipMs + selectionMs - result.selectionMs) > 1e-6) throw new Error('phases do not sum to selectionMs');
      } finally {
        backend.release(resident);
      }
      // The same groups recorded into one submission (the benchmark's timed calls), seeded on the GPU: the groups share the pool's buffers in order.
      const fresh = backend.upload(input, d);
      try {
        await backend.oneSubmission(() => runRoutingResident(backend, fresh, routingConfigSchema.parse(config), { slotsPerGroup: 3, density: false }));
        expectClose('output (one submission)', (await backend.readOutput(fresh)).output.data, cpu.output.data);
      } finally {
        backend.release(fresh);
      }
    },
  },
  {
    // A GpuKVCache's view has its KV slots `capacity` rows apart in one buffer: every kernel that
    // reads keys or values (normalisation, subsample gather, similarities, region means, the
    // cluster executor, the backend's executors) must read key t of slot s at s · keyStride + t.
    // Both runs of a case use the same config, so the same seed (subsample, k-means++ draws).
    name: 'routing and biformer read keys at slot · keyStride (a KV cache view with spare rows) as over compact keys: runResident, KV-slot groups at slot offsets with host seeding, the rows executor; biformer per-head and shared, a query chunk mid-region, B2 Hq4 Hkv2 S150 D32 Dv24',
    async run(backend) {
      const shape = { batch: 2, queryHeads: 4, kvHeads: 2, seq: 150, headDim: 32, valueDim: 24 };
      const withResident = async (querySeq: number | undefined, seed: number, body: (resident: ReturnType<GpuBackend['upload']>) => Promise<void>) => {
        const input = checkInput({ ...shape, querySeq }, seed, 'structured');
        const resident = backend.upload(input, validateAttentionInput(input));
        try {
          await body(resident);
        } finally {
          backend.release(resident);
        }
      };
      // A subsample of 100 of the 150 keys (the gather reads picked rows of each slot).
      const config = { clusters: 6, kmeansSampleSize: 100 };
      const parsed = routingConfigSchema.parse(config);
      await withResident(undefined, 197, async (resident) => {
        const method = gpuRoutingMethod.create(backend, config);
        await expectKeyStrideHonoured(backend, `routing runResident ${JSON.stringify(config)}`, resident, (r) => method.runResident!(r, { density: false }));
        await expectKeyStrideHonoured(backend, 'routing runRoutingResident in KV-slot groups of 3 + 1 (slot offset 3), seeded on the host', resident, (r) => runRoutingResident(backend, r, parsed, { slotsPerGroup: 3, seeding: 'cpu', density: false }));
        await expectKeyStrideHonoured(backend, 'routing runRouting (k-means in the membership pass, the rows executor)', resident, async (r) => {
          const run = await runRouting(backend, r, parsed, 'gpu');
          if (run.selection) backend.releaseSelection(run.selection);
        });
      });
      const chunkConfig = { clusters: 5, normalization: 'layernorm', keyClusters: 2, queryClusters: 2 };
      await withResident(40, 198, async (resident) => {
        const method = gpuRoutingMethod.create(backend, chunkConfig);
        await expectKeyStrideHonoured(backend, `routing runResident ${JSON.stringify(chunkConfig)} (40 queries)`, resident, (r) => method.runResident!(r, { density: false }));
      });
      for (const [querySeq, biformer] of [
        [undefined, { regionSize: 16, topK: 4 }],
        [undefined, { regionSize: 16, topK: 4, routingScope: 'shared' }],
        [5, { regionSize: 16, topK: 2 }],
      ] as const) {
        await withResident(querySeq, 199, async (resident) => {
          const method = gpuBiformerMethod.create(backend, biformer);
          await expectKeyStrideHonoured(backend, `biformer runResident ${JSON.stringify(biformer)}${querySeq ? ` (${querySeq} queries)` : ''}`, resident, (r) => method.runResident!(r, { density: false }));
        });
      }
    },
  },
  {
    name: "routing on the GPU throws the CPU method's typed errors, and ConfigError for the CPU-only modes, before any GPU work",
    async run(backend) {
      const input = checkInput({ batch: 1, queryHeads: 2, kvHeads: 2, seq: 20, headDim: 16 }, 192);
      await expectSameError('clusters -1', async () => gpuRoutingMethod.create(backend, { clusters: -1 }), () => routingMethod.create({ clusters: -1 }), ConfigError);
      await expectSameError('membership nearest', async () => gpuRoutingMethod.create(backend, { membership: 'nearest' }), () => routingMethod.create({ membership: 'nearest' } as never), ConfigError);
      const bad: AttentionInput = { ...input, k: sliceSeq(input.k, 0, 10) };
      await expectSameError('keys shorter than values', () => gpuRoutingMethod.create(backend, {}).prefill(bad), () => routingMethod.create({}).prefill(bad), ShapeError);
      for (const config of [{ sharedQK: true }, { combine: 'mean' }]) {
        let thrown: unknown;
        try {
          gpuRoutingMethod.create(backend, config);
        } catch (error) {
          thrown = error;
        }
        if (!(thrown instanceof ConfigError)) throw new Error(`${JSON.stringify(config)}: expected a ConfigError, got ${String(thrown)}`);
      }
    },
  },
];

/** Similarities within this of each other count as a tie float rounding may order either way. */
const NEAR_TIE = 1e-5;

/**
 * The GPU fit against the CPU's: per routing head, the centroids after the Lloyd iterations within
 * `GPU_TOLERANCE` relative L2 of `sphericalKMeans`'s, and every key's / query's top-r centroids equal
 * to `assignTopClusters`' on the CPU centroids, except where the two picks' similarities are within
 * `NEAR_TIE` (then float order may legitimately swap them; such swaps are counted and capped at 1%).
 */
function expectRoutingFitMatchesCpu(input: AttentionInput, raw: Record<string, unknown>, gpu: Awaited<ReturnType<typeof fitRoutingGpu>>): void {
  const config = routingConfigSchema.parse(raw);
  const d = validateAttentionInput(input);
  const D = d.headDim;
  const clusters = resolveClusters(config.clusters, d.keySeq, config.window);
  if (gpu.clusters !== clusters) throw new Error(`clusters ${gpu.clusters}, CPU ${clusters}`);
  let nearTies = 0;
  let compared = 0;
  const compareTop = (what: string, rows: Float32Array, count: number, centroids: Float32Array, r: number, top: Uint32Array, topOffset: number) => {
    const cpu = new Int32Array(count * r);
    assignTopClusters(rows, count, D, centroids, clusters, r, cpu);
    for (let i = 0; i < count * r; i++) {
      compared++;
      const g = top[topOffset + i]!;
      const c = cpu[i]!;
      if (g === c) continue;
      const row = Math.floor(i / r);
      const gap = Math.abs(dotRows(rows, row * D, centroids, g * D, D) - dotRows(rows, row * D, centroids, c * D, D));
      if (!(g < clusters) || gap > NEAR_TIE) throw new Error(`${what} row ${row} pick ${i % r}: GPU centroid ${g}, CPU ${c} (similarities differ by ${gap})`);
      nearTies++;
    }
  };
  const keys = new Float32Array(d.keySeq * D);
  const queries = new Float32Array(d.querySeq * D);
  for (let slot = 0; slot < d.batch * d.kvHeads; slot++) {
    const b = Math.floor(slot / d.kvHeads);
    const kvh = slot % d.kvHeads;
    normalizeRows(input.k.data, rowOffset(d.kDims, b, kvh, 0), keys, 0, d.keySeq, D, config.normalization);
    const fit = sphericalKMeans(keys, d.keySeq, D, { clusters, iterations: config.kmeansIterations, seed: headSeed(config.seed, slot), sampleSize: resolveSampleSize(config.kmeansSampleSize, clusters) });
    if (fit.sampleCount !== gpu.sampleCount) throw new Error(`sample ${gpu.sampleCount}, CPU ${fit.sampleCount}`);
    const slice = gpu.centroids.subarray(slot * clusters * D, (slot + 1) * clusters * D);
    expectClose(`head ${slot} centroids`, slice, fit.centroids);
    compareTop(`head ${slot} key`, keys, d.keySeq, fit.centroids, gpu.keyClusters, gpu.keyTop, slot * d.keySeq * gpu.keyClusters);
    for (let g = 0; g < d.groupSize; g++) {
      const h = kvh * d.groupSize + g;
      normalizeRows(input.q.data, rowOffset(d.qDims, b, h, 0), queries, 0, d.querySeq, D, config.normalization);
      compareTop(`query head ${h}`, queries, d.querySeq, fit.centroids, gpu.queryClusters, gpu.queryTop, (b * d.queryHeads + h) * d.querySeq * gpu.queryClusters);
    }
  }
  if (nearTies > 0.01 * compared) throw new Error(`${nearTies} of ${compared} top-r picks differ at near-ties (over 1%)`);
}
