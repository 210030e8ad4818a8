import { densePairCount, type AttentionDims, type BenchmarkContext, type BenchmarkRow, type BenchmarkSuite } from '@sparse-attn/core';
import { blockTopKConfigSchema } from './block-top-k.js';
import { blockScratchBytesPerSlot, createGpuBackend, describeBackend, type GpuBackend, type ResidentAttention } from './gpu-backend.js';
import { lastQueryView, runDecodeAttention } from './gpu-decode.js';
import { gpuBlockTopKMethod, type GpuMethodDefinition, type ResidentDecodeStepper, type ResidentRun } from './gpu-methods.js';
import { measureAsync } from './measure-async.js';
import { timeSubmissionFloor } from './submission-floor.js';
import { createGpuDecoderSuite } from './gpu-decoder-benchmarks.js';
import { causalDims, gpuLoad, timeSteps, type GpuLoad } from './gpu-load.js';

/** Shape of the GPU benchmark: the issue's causal B=1, H=32, D=128 (small in quick mode). */
export interface GpuBenchShape {
  readonly heads: number;
  readonly headDim: number;
  /** KV heads (default `heads`: MHA); fewer give GQA, whose groups share per-KV-head selections. */
  readonly kvHeads?: number;
}

/** One GPU method the benchmark times against dense: a definition with `runResident`, and its config. */
export interface GpuBenchMethod {
  readonly definition: GpuMethodDefinition;
  /** Config overrides (default: the method's defaults). */
  readonly config?: Record<string, unknown>;
  /** Label of the config in the rows' `budget` field. */
  readonly budget?: string;
}

/** Options of {@link runGpuBenchmark}. */
export interface GpuBenchOptions {
  /** Time only our dense kernel. */
  readonly denseOnly?: boolean;
  /** The sparse methods to time (default: this package's block top-k). Methods without `runResident` are skipped with a row saying so. */
  readonly methods?: readonly GpuBenchMethod[];
  /** Called after each method's row, for streaming output on long device runs. */
  readonly onRow?: (row: BenchmarkRow) => void;
  /**
   * Tokens of the dense call run before each step of the decode rows' loaded twins (`…-decode-loaded`;
   * default 4096, 256 in quick mode; 0: no loaded rows), with the benchmark's heads and head size.
   */
  readonly loadSeq?: number;
}

/**
 * Dense WGSL attention and each GPU method on seeded N(0, 1) inputs generated on the GPU, timed
 * from submission to queue completion (data resident, no transfers), with each method's speedup
 * over our dense kernel measured in the same run: prefill methods against dense prefill, decode-time
 * methods (`phase: 'decode'`) against a dense split-K decode step of the last query, which gets its
 * own row (`workload: gaussian-gpu-decode`). A prefill method whose CPU twin is causally
 * consistent (a decode step equals its prefill row) and that has a GPU decoder also gets a decode
 * row: a step of the last query over every resident key against that dense decode step (e.g.
 * landmark-retrieval, whose headline on the CPU is decode), with the state its decoder keeps
 * between steps where the method offers `decodeResident` (row metric `keptState: 1`), else its
 * `runResident` on the one-query call, which rebuilds that state. Every decode row, dense's included,
 * has a loaded twin (`…-decode-loaded`): the same step timed right after a few milliseconds of dense
 * attention work each time (`gpu-load.ts`), as in a model whose other layers run between its
 * attention steps; the prefill rows keep the GPU at its boost clock here, so what the load changes
 * is what the caches hold (sparse steps 0.02–0.4 ms slower at 64k on the H100, dense's 0.08 ms).
 * Beside dense's decode row, `submission-floor` rows time the runtime's bare round trip of 1 and 3
 * dependent one-workgroup dispatches (`submission-floor.ts`): their `speedupVsDense` is the most any
 * decode step that needs that many kernels can gain over dense's by wall time in this run.
 * PyTorch's SDPA reference is timed by
 * `bench/torch_sdpa.py`. A method that throws gets a row with `failed: 1` (the message goes to
 * `progress`), and the run goes on.
 */
/**
 * Timed runs of a decode step (dense and sparse; steps take 0.2–10 ms). Medians over 5 moved up
 * to 2× between runs of the suite on the H100; over 31 they still move up to ~2.5× for the
 * sub-millisecond steps (backend-gpu's README), which the rows' `madMs` shows.
 */
const DECODE_REPEATS = 31;

/**
 * Untimed decode steps before the timed ones (dense's and each method's). A decoder runs thousands
 * of steps; its first hundreds run its host code before V8 has optimised the encoding paths (on
 * the H100 a landmark step took 0.5–0.95 ms for its first ten calls and 0.26–0.32 ms from the
 * hundredth on; the indexer's step 0.31 ms as a median of its first 800, 0.26 ms over the next
 * 800). What remains is variation between processes: the same indexer step measured 0.23–0.61 ms
 * as the median of hundreds of warm steps in different runs on the device. The loaded twins run
 * after the idle rows (the code is warm) and warm up for {@link LOADED_WARMUP} steps, each after
 * its load.
 */
const DECODE_WARMUP = 300;
const LOADED_WARMUP = 10;

/**
 * The `submission-floor` rows (`submission-floor.ts`): one dependent dispatch, a step's least, and
 * three, MoBA's step (route, attend, merge). Each round trip takes ~0.05 ms on the H100.
 */
const SUBMISSION_FLOOR_DISPATCHES = [1, 3] as const;
const SUBMISSION_FLOOR_REPEATS = 101;

export async function runGpuBenchmark(backend: GpuBackend, context: BenchmarkContext, shape?: GpuBenchShape, options: GpuBenchOptions = {}): Promise<BenchmarkRow[]> {
  const { heads, headDim, kvHeads = heads } = shape ?? (context.quick ? { heads: 4, headDim: 64 } : { heads: 32, headDim: 128 });
  // MHA rows keep the plain workload names; GQA rows say their group (e.g. gaussian-gpu-gqa4).
  const gqa = kvHeads === heads ? '' : `-gqa${heads / kvHeads}`;
  const methods = options.methods ?? [{ definition: gpuBlockTopKMethod, budget: `K=${blockTopKConfigSchema.parse({}).topK}` }];
  const rows: BenchmarkRow[] = [];
  const push = (row: BenchmarkRow) => {
    rows.push(row);
    options.onRow?.(row);
  };
  const label = describeBackend(backend.info);
  const loadSeq = options.loadSeq ?? (context.quick ? 256 : 4096);
  const load: GpuLoad | undefined = options.denseOnly || loadSeq === 0 ? undefined : await gpuLoad(backend, { heads, headDim }, loadSeq, context.seed);
  // Quick mode (the checks' small shapes, SwiftShader in CI) keeps its decode warm-ups short.
  const decodeWarmup = context.quick ? 5 : DECODE_WARMUP;
  const loadedOptions = { warmup: context.quick ? 2 : LOADED_WARMUP, repeats: DECODE_REPEATS };
  try {
    for (const seq of context.quick ? [512] : context.seqLengths) {
      context.progress?.(`gpu: causal B=1 H=${heads} D=${headDim} S=${seq}`);
      const d = causalDims(heads, seq, headDim, kvHeads);
      const resident = await backend.randomResident(d, context.seed + seq, blockScratchBytesPerSlot(d, blockTopKConfigSchema.parse({})));
      try {
        // At most 5 samples at 64k (a dense sample takes 1.3 s on the H100): the device's slow spells
        // caught 1 of 3 samples often enough to move a median by 30–40%.
        const repeats = seq >= 65536 ? Math.min(context.repeats, 5) : context.repeats;
        // Half a second of dense runs first: an idle GPU starts at low clocks (345 MHz on the H100)
        // and one warm-up run at 4k is over before it boosts, which read as 7.3 vs 6.0 ms.
        for (const started = performance.now(); performance.now() - started < 500; ) await backend.runDense(resident);
        const dense = await measureAsync(() => backend.runDense(resident), { warmup: 1, repeats });
        const denseGpuMs = await medianGpuMs(backend, GPU_TIMED_CALLS, async () => (await backend.oneSubmission(() => backend.runDense(resident))).gpuMs);
        const flops = 4 * densePairCount(d) * headDim;
        push({
          suite: 'gpu-attention',
          method: 'dense',
          workload: `gaussian-gpu${gqa}`,
          seqLength: seq,
          backend: label,
          metrics: { ms: dense.medianMs, madMs: dense.madMs, tflops: flops / dense.medianMs / 1e9, ...(denseGpuMs === undefined ? {} : { gpuMs: denseGpuMs }), heads, kvHeads, headDim },
        });
        if (options.denseOnly) continue;
        // Dense decode: one step of the last query over all resident keys (split-K), the baseline of
        // decode-time methods (`phase: 'decode'`) and the GPU decode figure itself.
        let denseDecodeMs: number | undefined;
        let denseDecodeGpuMs: number | undefined;
        let denseDecodeLoadedMs: number | undefined;
        const denseDecode = async (): Promise<number> => {
          if (denseDecodeMs === undefined) {
            const { view, release } = await lastQueryView(backend, resident);
            try {
              denseDecodeMs = (await measureAsync(() => runDecodeAttention(backend, view), { warmup: decodeWarmup, repeats: DECODE_REPEATS })).medianMs;
              denseDecodeGpuMs = await medianGpuMs(backend, GPU_TIMED_DECODE_CALLS, async () => (await backend.oneSubmission(() => runDecodeAttention(backend, view))).gpuMs);
              if (load) {
                const loaded = await timeSteps(() => runDecodeAttention(backend, view), loadedOptions, load);
                denseDecodeLoadedMs = loaded.medianMs;
                push({ suite: 'gpu-attention', method: 'dense', workload: `gaussian-gpu${gqa}-decode-loaded`, seqLength: seq, backend: label, metrics: { ms: loaded.medianMs, madMs: loaded.madMs, loadSeq, heads, kvHeads, headDim } });
              }
            } finally {
              release();
            }
            push({ suite: 'gpu-attention', method: 'dense', workload: `gaussian-gpu${gqa}-decode`, seqLength: seq, backend: label, metrics: { ms: denseDecodeMs, ...(denseDecodeGpuMs === undefined ? {} : { gpuMs: denseDecodeGpuMs }), heads, kvHeads, headDim } });
            // The runtime's floor under any decode step: its ratio to the dense step bounds every
            // method's decode speedup by wall time in this run.
            for (const dispatches of SUBMISSION_FLOOR_DISPATCHES) {
              const floor = await timeSubmissionFloor(backend.context.device, dispatches, { warmup: decodeWarmup, repeats: SUBMISSION_FLOOR_REPEATS });
              push({ suite: 'gpu-attention', method: 'submission-floor', workload: `gaussian-gpu${gqa}-decode`, seqLength: seq, budget: `${dispatches} dispatch${dispatches === 1 ? '' : 'es'}`, backend: label, metrics: { ms: floor.medianMs, madMs: floor.madMs, dispatches, speedupVsDense: denseDecodeMs / floor.medianMs } });
            }
          }
          return denseDecodeMs;
        };
        if (!options.denseOnly) await denseDecode();
        // Dense is the baseline row above; a `dense` entry in `methods` (the GPU family's list) is not timed twice.
        const wanted = (id: string) => id !== 'dense' && (!context.methods || context.methods.includes(id));
        for (const { definition, config, budget } of methods.filter((m) => wanted(m.definition.id))) {
          // Each method starts from the same device state: scratch the previous method kept for its
          // next call (the key-block executor's window, families' pools) is freed first.
          backend.releaseScratch();
          const base = { suite: 'gpu-attention', method: definition.id, workload: `gaussian-gpu${gqa}`, seqLength: seq, ...(budget ? { budget } : {}) };
          const method = definition.create(backend, config);
          if (!method.runResident) {
            push({ ...base, backend: label, metrics: { skipped: 1 } });
            continue;
          }
          context.progress?.(`gpu: ${definition.id}${budget ? ` ${budget}` : ''} S=${seq}`);
          // The density is asked for on the first (warm-up) call only: the timed calls skip work a
          // method does just to report it (reading its selection back).
          // The timed calls are recorded into one submission where the method can (`oneSubmission`).
          const timeMethod = async (call: ResidentAttention, decodeStep: boolean, run: (call: ResidentAttention, first: boolean) => Promise<ResidentRun> = (c, first) => method.runResident!(c, { density: first, oneSubmission: !first })) => {
            // The row's ms is the median wall time of the timed calls. Selection and attention are
            // timed separately by the method where its calls are separate submissions; their
            // medians are reported beside it with hostMs, the wall time outside them (the medians
            // need not add up exactly). Where the timed calls ran as one submission (only their
            // sum is timed), as many calls with separate submissions follow for the split.
            const warmup = decodeStep ? decodeWarmup : 1;
            const split: { selection: number[]; attention: number[]; wall: number[]; phases: Map<string, number[]> } = { selection: [], attention: [], wall: [], phases: new Map() };
            let density = Number.NaN;
            let phase = decodeStep ? 'decode' : ('prefill' as 'prefill' | 'decode');
            let oneSubmission = false;
            let splitWarmup = false;
            // Wall time of the timed calls outside what the method timed (all of it is timed in one submission).
            const host: number[] = [];
            let calls = 0;
            const record = (result: ResidentRun, wallMs: number) => {
              split.selection.push(result.selectionMs);
              split.attention.push(result.attentionMs);
              // A method's own breakdown of its selection (e.g. routing's k-means / membership).
              for (const [name, ms] of Object.entries(result.phases ?? {})) split.phases.set(name, [...(split.phases.get(name) ?? []), ms]);
              split.wall.push(wallMs);
            };
            // Each sample is the call's wall time: its selection and attention plus whatever the
            // method does on the host around them (plans, uploads, small readbacks), which the
            // method's own phase times leave out.
            const sparse = await measureAsync(
              async () => {
                const index = calls++;
                const started = performance.now();
                const result = await run(call, index === 0);
                const wallMs = performance.now() - started;
                density = result.density ?? density;
                if (!decodeStep) phase = result.phase ?? 'prefill';
                if (index === 0) splitWarmup = result.oneSubmission !== true;
                if (index >= warmup) {
                  oneSubmission = result.oneSubmission === true;
                  host.push(Math.max(0, wallMs - result.selectionMs - result.attentionMs));
                  if (!oneSubmission) record(result, wallMs);
                }
                return wallMs;
              },
              { warmup, repeats: decodeStep ? Math.max(repeats, DECODE_REPEATS) : repeats },
            );
            const splitCalls = oneSubmission && splitWarmup ? (decodeStep ? Math.max(repeats, DECODE_REPEATS) : repeats) : 0;
            for (let i = 0; i < splitCalls; i++) {
              const started = performance.now();
              const result = await method.runResident!(call, { density: false });
              record(result, performance.now() - started);
            }
            const hasSplit = split.selection.length > 0;
            const baseline = phase === 'decode' ? await denseDecode() : dense.medianMs;
            // GPU time (timestamps) from calls of their own: timing the passes costs the timed calls a resolve and a readback.
            const gpuMs = oneSubmission ? await medianGpuMs(backend, decodeStep ? GPU_TIMED_DECODE_CALLS : GPU_TIMED_CALLS, async () => (await run(call, false)).gpuMs) : undefined;
            const gpuBaseline = phase === 'decode' ? denseDecodeGpuMs : denseGpuMs;
            push({
              ...base,
              ...(phase === 'decode' ? { workload: `gaussian-gpu${gqa}-decode` } : {}),
              backend: definition.id === gpuBlockTopKMethod.id ? describeBackend(backend.blockInfo) : label,
              metrics: {
                ms: sparse.medianMs,
                madMs: sparse.madMs,
                ...(oneSubmission ? { oneSubmission: 1 } : {}),
                // With oneSubmission, splitMs is the median wall time of the calls that gave the split.
                ...(oneSubmission && hasSplit ? { splitMs: median(split.wall) } : {}),
                ...(hasSplit ? { selectionMs: median(split.selection), attentionMs: median(split.attention) } : {}),
                hostMs: median(host),
                density,
                speedupVsDense: baseline / sparse.medianMs,
                // GPU time (timestamps; no host encoding, submission or wait) and its ratio to dense's.
                ...(gpuMs === undefined ? {} : { gpuMs, ...(gpuBaseline === undefined ? {} : { gpuSpeedupVsDense: gpuBaseline / gpuMs }) }),
                // 1: a decode step with the state the method's decoder keeps (`decodeResident`).
                ...(decodeStep && method.decodeResident ? { keptState: 1 } : {}),
                ...Object.fromEntries([...split.phases].map(([name, samples]) => [`phase.${name}`, median(samples)])),
                heads,
                kvHeads,
                headDim,
              },
            });
            if (phase === 'decode' && load) {
              // The loaded twin: the same step right after dense work each time (see the suite's comment).
              const loaded = await timeSteps(() => run(call, false), loadedOptions, load);
              push({
                ...base,
                workload: `gaussian-gpu${gqa}-decode-loaded`,
                backend: definition.id === gpuBlockTopKMethod.id ? describeBackend(backend.blockInfo) : label,
                metrics: {
                  ms: loaded.medianMs,
                  madMs: loaded.madMs,
                  ...(oneSubmission ? { oneSubmission: 1 } : {}),
                  density,
                  ...(denseDecodeLoadedMs === undefined ? {} : { speedupVsDense: denseDecodeLoadedMs / loaded.medianMs }),
                  ...(decodeStep && method.decodeResident ? { keptState: 1 } : {}),
                  loadSeq,
                  heads,
                  kvHeads,
                  headDim,
                },
              });
            }
            return phase;
          };
          let phase: 'prefill' | 'decode';
          try {
            phase = await timeMethod(resident, false);
          } catch (error) {
            context.progress?.(`gpu: ${definition.id} S=${seq} failed: ${(error as Error).message.split('\n')[0]}`);
            push({ ...base, backend: label, metrics: { failed: 1 } });
            continue;
          }
          // A causally consistent method's decode step: the one new query over the cache, with the
          // state its decoder keeps (`decodeResident`) or else its prefill kernels, timed on the last
          // query against a dense split-K decode step.
          if (phase === 'prefill' && method.createDecoder && definition.cpu.create(config).capabilities.causalConsistent) {
            const { view, release } = await lastQueryView(backend, resident);
            let stepper: ResidentDecodeStepper | undefined;
            try {
              // With the decoder's kept state where the method has it: its first (warm-up) step builds it.
              stepper = await method.decodeResident?.(view);
              const kept = stepper;
              await timeMethod(view, true, kept ? () => kept.step() : undefined);
            } catch (error) {
              context.progress?.(`gpu: ${definition.id} decode S=${seq} failed: ${(error as Error).message.split('\n')[0]}`);
              push({ ...base, workload: `gaussian-gpu${gqa}-decode`, backend: label, metrics: { failed: 1 } });
            } finally {
              stepper?.release();
              release();
            }
          }
        }
      } finally {
        backend.release(resident);
      }
    }
  } finally {
    load?.release();
  }
  return rows;
}

/**
 * The suite `bench --backend gpu` runs, timing `methods` (default: this package's block top-k)
 * against our dense kernel; apps/bench builds it with every family's GPU methods. On
 * `--backend cpu` it returns no rows (the CPU sweep already covers these methods); on `gpu` it
 * fails loudly when no adapter exists rather than reporting CPU numbers under a GPU label.
 */
export function createGpuAttentionSuite(methods?: readonly GpuBenchMethod[]): BenchmarkSuite {
  const ids = (methods ?? [{ definition: gpuBlockTopKMethod }]).map((m) => m.definition.id);
  return {
    id: 'gpu-attention',
    family: 'backend-gpu',
    description: `WebGPU dense flash-style attention vs ${ids.join(', ')} on the GPU (causal, B=1, H=32, D=128; MHA, then GQA with 8 KV heads).`,
    async run(context) {
      if (context.backend !== 'gpu') return [];
      const backend = await createGpuBackend();
      try {
        // Each row also goes out as a progress line, so a long device run shows figures as they come.
        const onRow = (row: BenchmarkRow) => context.progress?.(`row ${JSON.stringify(row)}`);
        const options = methods ? { methods, onRow } : { onRow };
        const rows = await runGpuBenchmark(backend, context, undefined, options);
        if (context.quick) return rows;
        // The same methods with GQA 32/8: per-KV-head selections are then shared by 4 query heads.
        return [...rows, ...(await runGpuBenchmark(backend, context, { heads: 32, headDim: 128, kvHeads: 8 }, options))];
      } finally {
        backend.destroy();
      }
    },
  };
}

/** {@link createGpuAttentionSuite} with this package's methods only. */
export const gpuAttentionSuite: BenchmarkSuite = createGpuAttentionSuite();

/** Benchmarks this package contributes to apps/bench (which rebuilds both over every family's GPU methods). */
export const benchmarks: BenchmarkSuite[] = [gpuAttentionSuite, createGpuDecoderSuite([gpuBlockTopKMethod])];

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}


/** Calls timed on the GPU for a prefill row's `gpuMs`, and for a decode row's. */
const GPU_TIMED_CALLS = 3;
const GPU_TIMED_DECODE_CALLS = 11;

/**
 * Median GPU time (timestamp queries: no host encoding, submission or wait, the figure CUDA-event
 * timings give) of `count` calls of `run` with the backend's pass timing on; undefined where the
 * device has no timestamps or a call reports none.
 */
async function medianGpuMs(backend: GpuBackend, count: number, run: () => Promise<number | undefined>): Promise<number | undefined> {
  if (!backend.context.timestamps) return undefined;
  backend.gpuTiming = true;
  try {
    const samples: number[] = [];
    for (let i = 0; i < count; i++) {
      const ms = await run();
      if (ms === undefined) return undefined;
      samples.push(ms);
    }
    return median(samples);
  } finally {
    backend.gpuTiming = false;
  }
}
