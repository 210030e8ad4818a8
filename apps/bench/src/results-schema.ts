/**
 * The results file (`results/<timestamp>.json`): every figure of a run plus the machine and
 * config it ran on. The zod schema is the contract: the bench validates its own output before
 * writing, tests validate files against it, and the HTML report reads only what it declares.
 * Metric names follow the benchmark spec (shared/specs/benchmarks.md §3, §5.3).
 */
import { z } from 'zod';

/** Timing of repeated runs: median with 20/80 quantiles and robust spread (spec §3 "Cost (measured)"). */
export const timingSchema = z.object({
  medianMs: z.number().nonnegative().describe('Median of the timed runs (per token for decode rows).'),
  p20Ms: z.number().nonnegative().describe('20th percentile of the timed runs.'),
  p80Ms: z.number().nonnegative().describe('80th percentile of the timed runs.'),
  minMs: z.number().nonnegative(),
  maxMs: z.number().nonnegative(),
  madMs: z.number().nonnegative().describe('Median absolute deviation: spread robust to one noisy run.'),
  samples: z.number().int().positive().describe('How many timed runs the figures summarise.'),
});

/** Which implementation ran (core's `BackendInfo`), recorded on every row, never guessed. */
export const backendSchema = z.object({
  backend: z.enum(['cpu', 'gpu']),
  kernel: z.string().min(1),
  device: z.string().optional(),
  fallbackReason: z.string().optional(),
});

/** Attention-level fidelity against dense attention on the same input (spec §3). */
export const qualitySchema = z.object({
  relativeL2Error: z.number().nonnegative().describe('‖õ − o‖₂ / ‖o‖₂ against fast dense attention.'),
  maxAbsError: z.number().nonnegative(),
  massRecall: z.number().min(0).max(1.000001).optional().describe('Share of dense softmax mass on the selected keys (sampled queries); absent for methods without a selection.'),
  topKRecall: z.number().min(0).max(1).optional().describe('Share of each sampled query’s 64 highest-probability keys that the selection holds.'),
  needleSelected: z.number().min(0).max(1).optional().describe('needle workload: share of needle queries whose selection holds the needle key.'),
  needleDominated: z.number().min(0).max(1).optional().describe('needle workload: share of needle queries whose output aligns (cos ≥ 0.9) with the needle value.'),
});

/** Counted costs (deterministic) from the method's own stats (spec §3 "Cost (counted)"). */
export const costSchema = z.object({
  pairs: z.number().nonnegative().describe('Query–key pairs scored (per token for decode rows).'),
  densePairs: z.number().nonnegative(),
  density: z.number().min(0).describe('pairs / dense causal pairs.'),
  attentionFlops: z.number().nonnegative().describe('2·(D + Dv)·pairs: QKᵀ and PV multiply-adds actually computed.'),
  kvBytesRead: z.number().nonnegative().describe('K/V bytes read (per token for decode rows).'),
  selectionMs: z.number().nonnegative().describe('Time the method reports spending on selection (last timed run).'),
  attentionMs: z.number().nonnegative(),
  allocatedBytes: z.number().nonnegative().optional().describe('Typed-array bytes allocated by one call (counted, see memory-tracker); absent on the GPU, where async calls cannot be counted.'),
});

/** Outcome of one cell; failures are kept, never dropped (spec §3 "Failure accounting"). */
export const statusSchema = z.enum(['ok', 'error', 'nan', 'unsupported', 'skipped']);

/** One method × workload × sequence length × budget × phase cell. */
export const sweepRowSchema = z.object({
  method: z.string(),
  family: z.string(),
  budget: z.string().describe('Budget label of the sweep point (`default` when the method has no sweep).'),
  budgetConfig: z.record(z.string(), z.unknown()),
  workload: z.string(),
  seqLength: z.number().int().positive().describe('Prefill length, or the context length a decode step attends to.'),
  phase: z.enum(['prefill', 'decode']),
  status: statusSchema,
  error: z.string().optional(),
  backend: backendSchema.optional(),
  timing: timingSchema.optional(),
  quality: qualitySchema.optional(),
  cost: costSchema.optional(),
  speedupVsDense: z.number().positive().optional().describe('Fast dense median / this median, same workload, length and phase.'),
  speedupVsOrt: z.number().positive().optional().describe('onnxruntime-node dense median / this median.'),
  diagnostics: z.record(z.string(), z.number()).optional(),
  cellWallMs: z.number().nonnegative().optional().describe('Wall time the whole cell took (quality run, metrics, timed runs): what sizing a sweep needs.'),
});

/** Rows contributed by a family's `BenchmarkSuite` (core's `BenchmarkRow`), kept as reported. */
export const suiteRowSchema = z.object({
  suite: z.string(),
  method: z.string(),
  workload: z.string(),
  seqLength: z.number(),
  budget: z.string().optional(),
  backend: z.string(),
  metrics: z.record(z.string(), z.number()),
  nonFiniteMetrics: z.array(z.string()).optional().describe('Figures the suite reported as NaN or ±Infinity (`name=NaN`), kept out of `metrics` because JSON cannot hold them.'),
});

/** A suite that failed as a whole. */
export const suiteFailureSchema = z.object({ suite: z.string(), error: z.string() });

/** A family package the bench could not load or register (its methods and suites did not run). */
export const familyFailureSchema = z.object({ family: z.string(), error: z.string() });

/** The machine a run happened on. */
export const machineSchema = z.object({
  node: z.string(),
  platform: z.string(),
  arch: z.string(),
  cpuModel: z.string(),
  cores: z.number().int().positive(),
  totalMemoryBytes: z.number().nonnegative(),
  onnxruntime: z.string().optional(),
  ortThreads: z.number().int().positive().optional(),
  peakRssBytes: z.number().nonnegative().describe('Process peak resident set size at the end of the run.'),
});

/** The resolved options of a sweep run. */
export const sweepConfigSchema = z.object({
  methods: z.array(z.string()),
  workloads: z.array(z.string()),
  seqLengths: z.array(z.number().int().positive()),
  decodeLengths: z.array(z.number().int().positive()),
  decodeWorkloads: z.array(z.string()),
  decodeSteps: z.number().int().positive(),
  budgets: z.string(),
  repeats: z.number().int().positive(),
  backend: z.enum(['cpu', 'gpu']),
  quick: z.boolean(),
  batch: z.number().int().positive(),
  queryHeads: z.number().int().positive(),
  kvHeads: z.number().int().positive(),
  headDim: z.number().int().positive(),
  seed: z.number().int(),
  suites: z.array(z.string()),
  suiteSeqLengths: z.array(z.number().int().positive()).describe('Sequence lengths passed to the family suites.'),
  suiteQuick: z.boolean().describe('Whether the family suites ran at their quick sizes (the default run; --large and --full-suites run them at full size).'),
  suiteShare: z.number().min(0).max(1).describe('Share of the time budget reserved for the family suites (they run after the cells).'),
  ort: z.boolean(),
  timeBudgetMs: z.number().nonnegative().describe('Cells that would start after this much wall time are recorded as skipped (0 = no limit).'),
});

/** `results/<timestamp>.json` of `pnpm bench`. */
export const sweepResultsSchema = z.object({
  schemaVersion: z.literal(1),
  kind: z.literal('sweep'),
  createdAt: z.string(),
  wallMs: z.number().nonnegative(),
  machine: machineSchema,
  config: sweepConfigSchema,
  rows: z.array(sweepRowSchema),
  suiteRows: z.array(suiteRowSchema),
  suiteFailures: z.array(suiteFailureSchema),
  familyFailures: z.array(familyFailureSchema).describe('Family packages that failed to load or register: none of their methods or suites ran.'),
});

/** One case of `bench dense` (issue 2's dense benchmark). */
export const denseCaseSchema = z.object({
  implementation: z.enum(['reference', 'fast-dense', 'onnxruntime']),
  seqLength: z.number().int().positive(),
  status: statusSchema,
  error: z.string().optional(),
  backend: backendSchema.optional(),
  timing: timingSchema.optional(),
  gflops: z.number().nonnegative().optional().describe('Causal FLOPs 2·S²·D·H over the median time.'),
  ratioVsOrt: z.number().positive().optional().describe('onnxruntime median / this median: > 1 is faster than onnxruntime.'),
  peakRssBytes: z.number().nonnegative().optional().describe('Peak RSS of the child process that ran only this case.'),
  relativeL2ErrorVsFast: z.number().nonnegative().optional(),
});

/** `results/dense-<timestamp>.json` of `bench dense`. */
export const denseResultsSchema = z.object({
  schemaVersion: z.literal(1),
  kind: z.literal('dense'),
  createdAt: z.string(),
  wallMs: z.number().nonnegative(),
  machine: machineSchema,
  config: z.object({ batch: z.number(), heads: z.number(), headDim: z.number(), seqLengths: z.array(z.number()), repeats: z.number() }),
  cases: z.array(denseCaseSchema),
});

export type Timing = z.infer<typeof timingSchema>;
export type SweepRow = z.infer<typeof sweepRowSchema>;
export type SuiteRow = z.infer<typeof suiteRowSchema>;
export type Machine = z.infer<typeof machineSchema>;
export type SweepConfig = z.infer<typeof sweepConfigSchema>;
export type SweepResults = z.infer<typeof sweepResultsSchema>;
export type DenseCase = z.infer<typeof denseCaseSchema>;
export type DenseResults = z.infer<typeof denseResultsSchema>;
