/**
 * The main job: every selected method × workload × sequence length × budget, prefill and
 * per-token decode, against fast dense (core's `denseMethod`) and onnxruntime-node's dense
 * `Attention` measured in the same run, plus every family benchmark suite.
 *
 * Per cell: one untimed run counts allocations and gives the quality figures (relative L2 error
 * vs dense, attention-mass recall and top-64 recall on sampled queries, needle retrieval,
 * density), then core's `measure` times repeated runs (median, 20/80 quantiles). Decode: a fresh
 * decoder's cache is filled with the prompt once (chunked `step`), then single-token steps are
 * timed one by one at the requested context length. Failures are recorded as rows with a status,
 * never dropped (spec §3 "Failure accounting").
 */
import {
  ConfigError,
  NumericError,
  SparseAttnError,
  attentionMassRecall,
  createWorkload,
  denseAttention,
  maxAbsDiff,
  needleRetrieval,
  relativeL2Error,
  sliceSeq,
  topKRecall,
  type AttentionInput,
  type AttentionResult,
  type BenchmarkRow,
  type BenchmarkSuite,
  type BudgetPoint,
  type MethodDefinition,
  type MethodRegistry,
  type Tensor,
  type Workload,
  type WorkloadKind,
} from '@sparse-attn/core';
import { gpuDefinition, gpuPrefill, type GpuSession } from './gpu-sweep.js';
import { machineInfo } from './machine-info.js';
import { countAllocations } from './memory-tracker.js';
import { OrtDenseAttention, ortShapeOf } from './ort-attention.js';
import type { FamilyFailure } from './registry.js';
import { SuiteProcessError, runSuiteInProcess, type SuiteRunner } from './suite-command.js';
import { sweepResultsSchema, type SuiteRow, type SweepConfig, type SweepResults, type SweepRow, type Timing } from './results-schema.js';
import { summarise, timeAsync, timeSync } from './timing.js';

/** Which budget points of each method's sweep to run. */
export type BudgetSelector = { readonly kind: 'all' } | { readonly kind: 'count'; readonly count: number } | { readonly kind: 'labels'; readonly labels: readonly string[] };

/** Progress reporting: the CLI draws a bar, tests pass nothing. */
export interface ProgressSink {
  start(total: number): void;
  tick(label: string): void;
  /** Updates the label of the current cell without advancing (a suite's own progress lines). */
  note(label: string): void;
  stop(): void;
}

/** Everything a sweep needs besides the registry. */
export interface SweepOptions extends Omit<SweepConfig, 'budgets' | 'workloads' | 'decodeWorkloads'> {
  readonly workloads: readonly WorkloadKind[];
  readonly decodeWorkloads: readonly WorkloadKind[];
  readonly budgets: BudgetSelector;
  /** Stop adding timed repeats to a cell once this many milliseconds were spent timing it. */
  readonly cellBudgetMs: number;
  /** Queries sampled per (batch, head) for mass/top-k recall. */
  readonly metricQueries: number;
  /** Prompt tokens per decoder `step` while filling a decode cache. */
  readonly fillChunk: number;
  readonly progress?: ProgressSink;
  /** How each suite runs: in a child process with a deadline (the CLI) or in this process (default). */
  readonly runSuite?: SuiteRunner;
  /** `backend: 'gpu'`: the GPU backend and its methods (from `@sparse-attn/backend-gpu`). */
  readonly gpu?: GpuSession;
  /** Family packages that failed to load: recorded in the results so the gap is visible. */
  readonly familyFailures?: readonly FamilyFailure[];
}

/** Family of the onnxruntime rows. */
export const ORT_METHOD = 'onnxruntime';

/** The budget points to run for a method at a sequence length. */
export function selectBudgets(definition: MethodDefinition, seq: number, selector: BudgetSelector): BudgetPoint[] {
  const all = definition.budgets?.(seq) ?? [];
  if (all.length === 0) return [{ label: 'default', config: {} }];
  if (selector.kind === 'all') return [...all];
  if (selector.kind === 'labels') return all.filter((b) => selector.labels.includes(b.label));
  if (selector.count >= all.length) return [...all];
  if (selector.count === 1) return [all[0]!];
  // Sweeps run sparsest to densest and usually end with a point covering every key (equal to
  // dense by conformance, and the slowest). A partial selection spends its points on the sparse
  // part instead: evenly spaced over every point but the last, keeping the sparsest.
  const candidates = all.slice(0, -1);
  const count = Math.min(selector.count, candidates.length);
  const picked = new Set<number>();
  for (let i = 0; i < count; i++) picked.add(count === 1 ? 0 : Math.round((i * (candidates.length - 1)) / (count - 1)));
  return [...picked].sort((a, b) => a - b).map((i) => candidates[i]!);
}

function errorMessage(error: unknown): string {
  if (error instanceof SparseAttnError) return `${error.name}: ${error.message}`;
  if (error instanceof SuiteProcessError) return error.message;
  return error instanceof Error ? `${error.name}: ${error.message.split('\n')[0]}` : String(error);
}

function isFinite(t: Tensor): boolean {
  for (const x of t.data) if (x - x !== 0) return false;
  return true;
}

function flopsOf(pairs: number, input: AttentionInput): number {
  return 2 * (input.q.shape[3]! + input.v.shape[3]!) * pairs;
}

/** Mutable helper to build a row's quality block from outputs and selections. */
function qualityOf(input: AttentionInput, workload: Workload, result: AttentionResult, reference: Tensor, metricQueries: number): SweepRow['quality'] {
  const selection = result.selection;
  return {
    relativeL2Error: relativeL2Error(result.output, reference),
    maxAbsError: maxAbsDiff(result.output, reference),
    ...(selection
      ? {
          massRecall: attentionMassRecall(input, selection, { maxQueries: metricQueries, seed: workload.seed }),
          topKRecall: topKRecall(input, selection, 64, { maxQueries: Math.min(8, metricQueries), seed: workload.seed }),
        }
      : {}),
    ...(workload.needle ? needleFields(needleRetrieval(input, workload.needle, result.output, selection)) : {}),
  };
}

function needleFields(n: { selected: number; dominated: number }) {
  return { needleSelected: n.selected, needleDominated: n.dominated };
}

/** Runs the sweep and the suites; returns the validated results document. */
export async function runSweep(registry: MethodRegistry, suites: readonly BenchmarkSuite[], options: SweepOptions): Promise<SweepResults> {
  const started = performance.now();
  const gpu = options.gpu;
  if (options.backend === 'gpu' && !gpu) throw new ConfigError('runSweep: backend gpu needs a GPU session (options.gpu)');
  const definitions = options.methods.map((id) => (gpu ? gpuDefinition(gpu, id) : registry.get(id, options.backend)));
  const rows: SweepRow[] = [];
  const progress = options.progress;
  const shape = { batch: options.batch, queryHeads: options.queryHeads, kvHeads: options.kvHeads, headDim: options.headDim };

  // Plan every cell first so the progress bar knows its total.
  type Cell = { kind: 'prefill' | 'decode'; workload: WorkloadKind; seq: number; definition?: MethodDefinition; budget?: BudgetPoint };
  const cells: Cell[] = [];
  const phases = (seq: number) => [
    ...(options.seqLengths.includes(seq) ? [{ kind: 'prefill' as const, workloads: options.workloads }] : []),
    // GPU methods have no decoder: a GPU sweep is prefill only.
    ...(options.decodeLengths.includes(seq) && !gpu ? [{ kind: 'decode' as const, workloads: options.decodeWorkloads }] : []),
  ];
  // Budget-rank-major, then length (shortest first): every method's sparsest point at every
  // length and workload (prefill, then decode) before anyone's second point. If the time budget
  // runs out, what is skipped is extra budget points, not methods or lengths.
  const lengths = [...new Set([...options.seqLengths, ...options.decodeLengths])].sort((a, b) => a - b);
  const budgetsAt = new Map(lengths.map((seq) => [seq, new Map(definitions.map((d) => [d, selectBudgets(d, seq, options.budgets)]))]));
  const ranks = Math.max(1, ...[...budgetsAt.values()].flatMap((m) => [...m.values()].map((b) => b.length)));
  for (let rank = 0; rank < ranks; rank++) {
    for (const seq of lengths) {
      for (const phase of phases(seq)) {
        for (const workload of phase.workloads) {
          if (rank === 0 && options.ort) cells.push({ kind: phase.kind, workload, seq });
          for (const [definition, budgets] of budgetsAt.get(seq)!) {
            const budget = budgets[rank];
            if (budget) cells.push({ kind: phase.kind, workload, seq, definition, budget });
          }
        }
      }
    }
  }
  const selectedSuites = suites.filter((s) => options.suites.includes(s.id));
  progress?.start(cells.length + selectedSuites.length);
  // Cells stop starting once the suites' reserved share of the budget is all that is left.
  const cellDeadlineMs = options.timeBudgetMs * (selectedSuites.length ? 1 - options.suiteShare : 1);

  const workloads = new Map<string, Workload>();
  const workloadFor = (kind: WorkloadKind, seq: number): Workload => {
    const key = `${kind}:${seq}`;
    let w = workloads.get(key);
    if (!w) {
      w = createWorkload(kind, { ...shape, seqLength: seq, seed: options.seed });
      workloads.set(key, w);
    }
    return w;
  };
  // Dense references: fast dense over the whole sequence (prefill) or over the decoded tail (decode).
  const references = new Map<string, Tensor>();
  const referenceFor = (kind: Cell['kind'], workload: Workload, seq: number, steps: number): Tensor => {
    const key = `${kind}:${workload.kind}:${seq}`;
    let ref = references.get(key);
    if (!ref) {
      const input = kind === 'prefill' ? workload.input : { ...workload.input, q: sliceSeq(workload.input.q, seq - steps, seq) };
      ref = denseAttention(input).output;
      references.set(key, ref);
    }
    return ref;
  };

  let ortVersion: string | undefined;
  let ortThreads: number | undefined;
  for (const cell of cells) {
    const label = `${cell.kind} ${cell.definition?.id ?? ORT_METHOD}${cell.budget ? ` ${cell.budget.label}` : ''} ${cell.workload} S=${cell.seq}`;
    progress?.tick(label);
    const workload = workloadFor(cell.workload, cell.seq);
    const steps = Math.max(1, Math.min(options.decodeSteps, cell.seq - 1));
    const reference = referenceFor(cell.kind, workload, cell.seq, steps);
    const base = {
      method: cell.definition?.id ?? ORT_METHOD,
      family: cell.definition?.family ?? 'baseline',
      budget: cell.budget?.label ?? 'default',
      budgetConfig: { ...(cell.budget?.config ?? {}) },
      workload: cell.workload,
      seqLength: cell.seq,
      phase: cell.kind,
    } as const;
    if (options.timeBudgetMs > 0 && performance.now() - started > cellDeadlineMs) {
      const share = `${Math.round(cellDeadlineMs / 1000)} s of the ${Math.round(options.timeBudgetMs / 1000)} s time budget`;
      rows.push({ ...base, status: 'skipped', error: `the cells' ${share} was spent before this cell (raise --time-budget, 0 = none)` });
      continue;
    }
    const cellStarted = performance.now();
    try {
      if (!cell.definition) {
        const row = await ortCell(workload, cell.kind, cell.seq, steps, reference, options);
        ortVersion = row.version;
        ortThreads = row.threads;
        rows.push({ ...base, ...row.fields });
      } else if (gpu) {
        rows.push({ ...base, ...(await gpuPrefillCell(gpu, cell.definition, cell.budget!, workload, reference, options)) });
      } else if (cell.kind === 'prefill') {
        rows.push({ ...base, ...prefillCell(cell.definition, cell.budget!, workload, reference, options) });
      } else {
        rows.push({ ...base, ...decodeCell(cell.definition, cell.budget!, workload, cell.seq, steps, reference, options) });
      }
    } catch (error) {
      rows.push({ ...base, status: error instanceof NumericError ? 'nan' : 'error', error: errorMessage(error) });
    }
    rows[rows.length - 1] = { ...rows[rows.length - 1]!, cellWallMs: performance.now() - cellStarted };
  }
  addSpeedups(rows);

  // Family suites after the cells, each in its own process where the CLI runs (so a suite that
  // hangs, crashes or runs past its share of the time budget is killed and recorded, never fatal).
  // Each suite may use an even share of what is left of the budget; time a fast suite leaves
  // unused passes on to the next.
  const suiteRows: SuiteRow[] = [];
  const suiteFailures: { suite: string; error: string }[] = [];
  const runSuite = options.runSuite ?? runSuiteInProcess;
  for (const [i, suite] of selectedSuites.entries()) {
    progress?.tick(`suite ${suite.id}`);
    const left = options.timeBudgetMs > 0 ? options.timeBudgetMs - (performance.now() - started) : Infinity;
    if (left <= 0) {
      suiteFailures.push({ suite: suite.id, error: `skipped: time budget of ${Math.round(options.timeBudgetMs / 1000)} s spent before this suite (raise --time-budget, 0 = none)` });
      continue;
    }
    const suiteStarted = performance.now();
    try {
      const context = {
        quick: options.suiteQuick,
        seqLengths: options.suiteSeqLengths,
        repeats: options.repeats,
        seed: options.seed,
        backend: options.backend,
        progress: (message: string) => progress?.note(`suite ${suite.id}: ${message}`),
      };
      suiteRows.push(...(await runSuite(suite, context, left / (selectedSuites.length - i))));
    } catch (error) {
      const after = error instanceof SuiteProcessError ? '' : ` (after ${((performance.now() - suiteStarted) / 1000).toFixed(0)} s)`;
      suiteFailures.push({ suite: suite.id, error: `${errorMessage(error)}${after}` });
    }
  }

  progress?.stop();

  const { cellBudgetMs: _b, metricQueries: _m, fillChunk: _f, progress: _p, runSuite: _r, gpu: _g, familyFailures = [], budgets, ...config } = options;
  const document: SweepResults = {
    schemaVersion: 1,
    kind: 'sweep',
    createdAt: new Date().toISOString(),
    wallMs: performance.now() - started,
    machine: machineInfo({ ...(ortVersion ? { onnxruntime: ortVersion } : {}), ...(ortThreads ? { ortThreads } : {}) }),
    config: { ...config, suiteSeqLengths: [...config.suiteSeqLengths], methods: [...config.methods], workloads: [...config.workloads], decodeWorkloads: [...config.decodeWorkloads], budgets: budgetLabel(budgets) },
    rows,
    suiteRows,
    suiteFailures,
    familyFailures: familyFailures.map((f) => ({ ...f })),
  };
  return sweepResultsSchema.parse(document);
}

/**
 * A family suite's row as the results file stores it. JSON has no NaN or Infinity, so a
 * non-finite figure is moved out of `metrics` into `nonFiniteMetrics` (`name=NaN`): recorded and
 * visible in the table and report, never silently dropped or written as `null`.
 */
export function suiteRowOf(row: BenchmarkRow): SuiteRow {
  const metrics: Record<string, number> = {};
  const nonFinite: string[] = [];
  for (const [name, value] of Object.entries(row.metrics)) {
    if (Number.isFinite(value)) metrics[name] = value;
    else nonFinite.push(`${name}=${String(value)}`);
  }
  return { ...row, metrics, ...(nonFinite.length ? { nonFiniteMetrics: nonFinite } : {}) };
}

/** How the budget selector is written in the results file. */
export function budgetLabel(b: BudgetSelector): string {
  return b.kind === 'all' ? 'all' : b.kind === 'count' ? `count:${b.count}` : `labels:${b.labels.join(',')}`;
}

type CellFields = Omit<SweepRow, 'method' | 'family' | 'budget' | 'budgetConfig' | 'workload' | 'seqLength' | 'phase'>;

function timingOptions(options: SweepOptions, firstRunMs: number) {
  // The untimed quality run already warmed the JIT; add a warm-up run only for quick calls.
  return { warmup: firstRunMs < 200 ? 1 : 0, repeats: options.repeats, budgetMs: options.cellBudgetMs };
}

/**
 * Times a cell: repeated runs after the counted quality run, except when that run alone took
 * longer than the cell budget. Then it is the single sample (allocation counting only wraps
 * constructors, a negligible cost next to a call that long), so slow methods cost one run, not two.
 */
function timeCell(run: () => unknown, options: SweepOptions, firstRunMs: number): Timing {
  return firstRunMs >= options.cellBudgetMs ? summarise([firstRunMs]) : timeSync(run, timingOptions(options, firstRunMs));
}

function prefillCell(definition: MethodDefinition, budget: BudgetPoint, workload: Workload, reference: Tensor, options: SweepOptions): CellFields {
  const method = definition.create(budget.config);
  const input = workload.input;
  const t0 = performance.now();
  const { result, allocatedBytes } = countAllocations(() => method.prefill(input));
  const firstMs = performance.now() - t0;
  if (!isFinite(result.output)) return { status: 'nan', backend: result.backend, error: 'output holds NaN or Infinity' };
  const quality = qualityOf(input, workload, result, reference, options.metricQueries);
  const timing = timeCell(() => method.prefill(input), options, firstMs);
  return prefillFields(result, input, quality, timing, allocatedBytes);
}

/** A prefill row's fields from the counted run's result, its quality and the timing. */
function prefillFields(result: AttentionResult, input: AttentionInput, quality: SweepRow['quality'], timing: Timing, allocatedBytes?: number): CellFields {
  const s = result.stats;
  return {
    status: 'ok',
    backend: result.backend,
    timing,
    quality,
    cost: {
      pairs: s.pairs,
      densePairs: s.densePairs,
      density: s.density,
      attentionFlops: flopsOf(s.pairs, input),
      kvBytesRead: s.kvBytesRead,
      selectionMs: s.selectionMs,
      attentionMs: s.attentionMs,
      ...(allocatedBytes !== undefined ? { allocatedBytes } : {}),
    },
    ...(result.diagnostics ? { diagnostics: { ...result.diagnostics } } : {}),
  };
}

/**
 * A prefill cell on the GPU: the same quality figures against the CPU dense reference, timed
 * with the async twin of `measure` (each call ends with the output read back, so the queue has
 * drained). JS-side allocation counting cannot follow an async call, so `allocatedBytes` is absent.
 */
async function gpuPrefillCell(session: GpuSession, definition: MethodDefinition, budget: BudgetPoint, workload: Workload, reference: Tensor, options: SweepOptions): Promise<CellFields> {
  const prefill = gpuPrefill(session, definition.id, budget.config);
  const input = workload.input;
  const t0 = performance.now();
  const result = await prefill(input);
  const firstMs = performance.now() - t0;
  if (result.backend.backend !== 'gpu') return { status: 'error', backend: result.backend, error: `a GPU method reported backend ${result.backend.backend}` };
  if (!isFinite(result.output)) return { status: 'nan', backend: result.backend, error: 'output holds NaN or Infinity' };
  const quality = qualityOf(input, workload, result, reference, options.metricQueries);
  const timing = firstMs >= options.cellBudgetMs ? summarise([firstMs]) : await timeAsync(() => prefill(input), timingOptions(options, firstMs));
  return prefillFields(result, input, quality, timing);
}

function decodeCell(definition: MethodDefinition, budget: BudgetPoint, workload: Workload, seq: number, steps: number, reference: Tensor, options: SweepOptions): CellFields {
  const method = definition.create(budget.config);
  const { q, k, v } = workload.input;
  const [batch, queryHeads, , headDim] = q.shape as [number, number, number, number];
  const decoder = method.createDecoder({ batch, queryHeads, kvHeads: k.shape[1]!, headDim, valueDim: v.shape[3]! });
  const prompt = seq - steps;
  for (let t = 0; t < prompt; t += options.fillChunk) {
    const end = Math.min(prompt, t + options.fillChunk);
    decoder.step({ q: sliceSeq(q, t, end), k: sliceSeq(k, t, end), v: sliceSeq(v, t, end) });
  }
  // Step 0 is untimed (it counts allocations and warms the step path); steps 1.. are timed one by one.
  const samples: number[] = [];
  const outputs: Tensor[] = [];
  let allocatedBytes = 0;
  let pairs = 0, densePairs = 0, kvBytesRead = 0, selectionMs = 0, attentionMs = 0;
  let massRecall = 0, massCount = 0, needleSelected = 0, needleDominated = 0, needleCount = 0;
  let last: AttentionResult | undefined;
  const diagnostics: Record<string, number> = {};
  for (let i = 0; i < steps; i++) {
    const p = prompt + i;
    const stepInput = { q: sliceSeq(q, p, p + 1), k: sliceSeq(k, p, p + 1), v: sliceSeq(v, p, p + 1) };
    let result: AttentionResult;
    if (i === 0) {
      const counted = countAllocations(() => decoder.step(stepInput));
      result = counted.result;
      allocatedBytes = counted.allocatedBytes;
    } else {
      const t0 = performance.now();
      result = decoder.step(stepInput);
      samples.push(performance.now() - t0);
    }
    last = result;
    outputs.push(result.output);
    pairs += result.stats.pairs;
    densePairs += result.stats.densePairs;
    kvBytesRead += result.stats.kvBytesRead;
    selectionMs += result.stats.selectionMs;
    attentionMs += result.stats.attentionMs;
    for (const [key, value] of Object.entries(result.diagnostics ?? {})) diagnostics[key] = (diagnostics[key] ?? 0) + value / steps;
    const visible = { q: stepInput.q, k: sliceSeq(k, 0, p + 1), v: sliceSeq(v, 0, p + 1), causal: true };
    if (result.selection && result.selection.keySeq === p + 1) {
      massRecall += attentionMassRecall(visible, result.selection, { maxQueries: 1 });
      massCount++;
    }
    if (workload.needle?.queries.includes(p)) {
      const n = needleRetrieval(visible, workload.needle, result.output, result.selection?.keySeq === p + 1 ? result.selection : undefined);
      needleSelected += n.selected;
      needleDominated += n.dominated;
      needleCount++;
    }
  }
  const output = concatOutputs(outputs);
  if (!isFinite(output)) return { status: 'nan', backend: last!.backend, error: 'decode output holds NaN or Infinity' };
  const timing = samples.length > 0 ? summarise(samples) : undefined;
  const input = workload.input;
  return {
    status: 'ok',
    backend: last!.backend,
    ...(timing ? { timing } : { error: 'only one decode step: nothing timed after the warm-up step' }),
    quality: {
      relativeL2Error: relativeL2Error(output, reference),
      maxAbsError: maxAbsDiff(output, reference),
      ...(massCount ? { massRecall: massRecall / massCount } : {}),
      ...(needleCount ? { needleSelected: needleSelected / needleCount, needleDominated: needleDominated / needleCount } : {}),
    },
    cost: {
      pairs: pairs / steps,
      densePairs: densePairs / steps,
      density: densePairs ? pairs / densePairs : 0,
      attentionFlops: flopsOf(pairs / steps, input),
      kvBytesRead: kvBytesRead / steps,
      selectionMs: selectionMs / steps,
      attentionMs: attentionMs / steps,
      allocatedBytes,
    },
    ...(Object.keys(diagnostics).length ? { diagnostics } : {}),
  };
}

function concatOutputs(outputs: readonly Tensor[]): Tensor {
  const [batch, heads, , dim] = outputs[0]!.shape as [number, number, number, number];
  const steps = outputs.length;
  const data = new Float32Array(batch * heads * steps * dim);
  for (const [t, out] of outputs.entries()) {
    for (let bh = 0; bh < batch * heads; bh++) data.set(out.data.subarray(bh * dim, (bh + 1) * dim), (bh * steps + t) * dim);
  }
  return { data, shape: [batch, heads, steps, dim] };
}

async function ortCell(workload: Workload, phase: 'prefill' | 'decode', seq: number, steps: number, reference: Tensor, options: SweepOptions): Promise<{ fields: CellFields; version: string; threads: number }> {
  const full = workload.input;
  // Decode: one query (the last position) over the whole context; the per-token cost at this length.
  const input = phase === 'prefill' ? full : { ...full, q: sliceSeq(full.q, seq - 1, seq) };
  const ort = await OrtDenseAttention.create(ortShapeOf(input));
  try {
    const t0 = performance.now();
    const output = await ort.run(input);
    const firstMs = performance.now() - t0;
    const expected = phase === 'prefill' ? reference : sliceSeq(reference, steps - 1, steps);
    const timing: Timing = await timeAsync(() => ort.run(input), phase === 'prefill' ? timingOptions(options, firstMs) : { warmup: 1, repeats: steps, budgetMs: options.cellBudgetMs });
    const d = ortShapeOf(input);
    const pairs = phase === 'prefill' ? (d.batch * d.queryHeads * seq * (seq + 1)) / 2 : d.batch * d.queryHeads * seq;
    return {
      version: ort.kernel.split(':')[0]!.replace('onnxruntime-node-', ''),
      threads: ort.threads,
      fields: {
        status: 'ok',
        backend: { backend: 'cpu', kernel: ort.kernel, device: `${ort.threads} intra-op threads`, ...(ort.fallbackReason ? { fallbackReason: ort.fallbackReason } : {}) },
        timing,
        quality: {
          relativeL2Error: relativeL2Error(output, expected),
          maxAbsError: maxAbsDiff(output, expected),
          ...(workload.needle ? needleFields(needleRetrieval(input, workload.needle, output)) : {}),
        },
        cost: {
          pairs,
          densePairs: pairs,
          density: 1,
          attentionFlops: flopsOf(pairs, input),
          kvBytesRead: (pairs / (d.queryHeads / d.kvHeads)) * 4 * (d.headDim + d.valueDim),
          selectionMs: 0,
          attentionMs: timing.medianMs,
          allocatedBytes: output.data.byteLength,
        },
      },
    };
  } finally {
    await ort.release();
  }
}

/** Fills `speedupVsDense` / `speedupVsOrt` from the dense and ORT rows of the same workload, length and phase. */
export function addSpeedups(rows: SweepRow[]): void {
  const key = (r: SweepRow) => `${r.workload}|${r.seqLength}|${r.phase}`;
  const dense = new Map<string, number>();
  const ort = new Map<string, number>();
  for (const r of rows) {
    if (r.status !== 'ok' || !r.timing) continue;
    if (r.method === 'dense') dense.set(key(r), r.timing.medianMs);
    if (r.method === ORT_METHOD) ort.set(key(r), r.timing.medianMs);
  }
  for (const [i, r] of rows.entries()) {
    if (r.status !== 'ok' || !r.timing || r.timing.medianMs <= 0) continue;
    const d = dense.get(key(r));
    const o = ort.get(key(r));
    rows[i] = {
      ...r,
      ...(d ? { speedupVsDense: d / r.timing.medianMs } : {}),
      ...(o ? { speedupVsOrt: o / r.timing.medianMs } : {}),
    };
  }
}
