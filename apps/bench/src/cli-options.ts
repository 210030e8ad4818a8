/**
 * Command-line parsing: `node:util` `parseArgs` in strict mode (unknown flags are errors), then
 * zod for values, so every bad flag becomes one `ConfigError` line naming the flag, what was
 * expected and what was given.
 */
import { parseArgs } from 'node:util';
import { ConfigError, type WorkloadKind } from '@sparse-attn/core';
import { z } from 'zod';
import type { BudgetSelector, SweepOptions } from './run-sweep.js';

/** Defaults of `pnpm bench` with no flags: chosen so the run ends in well under 10 minutes on 2 cores. */
export const DEFAULT_SWEEP = {
  seqLengths: [1024, 4096],
  workloads: ['gaussian', 'needle', 'structured'] as WorkloadKind[],
  decodeWorkloads: ['needle'] as WorkloadKind[],
  decodeSteps: 9,
  budgets: { kind: 'count', count: 2 } as BudgetSelector,
  repeats: 3,
  batch: 1,
  queryHeads: 4,
  kvHeads: 2,
  headDim: 64,
  cellBudgetMs: 1500,
  metricQueries: 16,
  fillChunk: 512,
  /** Leaves room for the build step of `pnpm bench` within its 10 minutes. */
  timeBudgetMs: 420_000,
  /** Share of the time budget kept for the family suites, which run after the cells. */
  suiteShare: 0.25,
};

/** `--quick`: tiny sizes for CI smoke tests (seconds). */
export const QUICK_SWEEP = {
  ...DEFAULT_SWEEP,
  seqLengths: [64, 200],
  decodeSteps: 3,
  budgets: { kind: 'count', count: 2 } as BudgetSelector,
  repeats: 1,
  queryHeads: 2,
  kvHeads: 1,
  headDim: 16,
  cellBudgetMs: 50,
  metricQueries: 4,
  fillChunk: 64,
  timeBudgetMs: 0,
};

/** `--large`: the longer sweep (prefill and decode up to 16k, suites at every length, no time budget); tens of minutes on 2 cores. */
export const LARGE_SEQ = [1024, 4096, 16384];

const workloadKind = z.enum(['gaussian', 'needle', 'structured']);

/** Parses `1024`, `4k`, `16K`: a positive length. */
function parseLength(flag: string, text: string): number {
  const match = /^(\d+)([kK]?)$/.exec(text.trim());
  const value = match ? Number(match[1]) * (match[2] ? 1024 : 1) : NaN;
  if (!(Number.isSafeInteger(value) && value > 0)) throw new ConfigError(`${flag}: expected positive lengths like 1024 or 4k, got '${text}'`);
  return value;
}

function list(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

function positiveInt(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!(Number.isSafeInteger(value) && value > 0)) throw new ConfigError(`${flag}: expected a positive integer, got '${text}'`);
  return value;
}

function workloads(flag: string, text: string | undefined, fallback: readonly WorkloadKind[]): WorkloadKind[] {
  if (text === undefined) return [...fallback];
  const names = list(text);
  if (names.length === 0) throw new ConfigError(`${flag}: expected a comma-separated list of gaussian, needle, structured, got '${text}'`);
  return names.map((n) => {
    const parsed = workloadKind.safeParse(n);
    if (!parsed.success) throw new ConfigError(`${flag}: unknown workload '${n}'; expected gaussian, needle or structured`);
    return parsed.data;
  });
}

function nonNegativeSeconds(text: string): number {
  const value = Number(text);
  if (!(Number.isFinite(value) && value >= 0)) throw new ConfigError(`--time-budget: expected seconds ≥ 0 (0 = no limit), got '${text}'`);
  return value;
}

/**
 * `parseArgs` refuses a string flag's value that starts with `-` ("argument is ambiguous"), so
 * `--time-budget -1` would never reach the flag's own check. Values that look like negative
 * numbers are joined to their flag (`--time-budget=-1`) so that check names what was expected.
 */
function joinNegativeValues(args: readonly string[], options: Readonly<Record<string, { type: string }>>): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\d|^-\.\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

/** Parses `--budgets`: `all`, a count of points per method, or budget labels. */
export function parseBudgets(text: string | undefined, fallback: BudgetSelector): BudgetSelector {
  if (text === undefined) return fallback;
  if (text === 'all') return { kind: 'all' };
  if (/^\d+$/.test(text)) return { kind: 'count', count: positiveInt('--budgets', text, 1) };
  const labels = list(text);
  if (labels.length === 0) throw new ConfigError(`--budgets: expected 'all', a count, or budget labels, got '${text}'`);
  return { kind: 'labels', labels };
}

/** Flags of the default sweep command. */
const sweepFlags = {
  methods: { type: 'string' },
  workloads: { type: 'string' },
  seq: { type: 'string' },
  'decode-seq': { type: 'string' },
  'decode-workloads': { type: 'string' },
  'decode-steps': { type: 'string' },
  budgets: { type: 'string' },
  repeats: { type: 'string' },
  backend: { type: 'string' },
  out: { type: 'string' },
  suites: { type: 'string' },
  seed: { type: 'string' },
  'time-budget': { type: 'string' },
  'suite-seq': { type: 'string' },
  'full-suites': { type: 'boolean' },
  quick: { type: 'boolean' },
  large: { type: 'boolean' },
  'no-ort': { type: 'boolean' },
  'no-progress': { type: 'boolean' },
  'no-html': { type: 'boolean' },
} as const;

/** The parsed sweep command line (method and suite ids are checked against the registry later). */
export interface SweepCommandLine {
  readonly options: Omit<SweepOptions, 'methods' | 'suites' | 'progress'>;
  /** `undefined`: every registered method. */
  readonly methods: string[] | undefined;
  /** `undefined`: every suite. */
  readonly suites: string[] | undefined;
  readonly out: string;
  readonly progress: boolean;
  readonly html: boolean;
}

/** Parses the arguments of the default command. */
export function parseSweepArgs(args: readonly string[]): SweepCommandLine {
  const { values } = parseArgs({ args: joinNegativeValues(args, sweepFlags), options: sweepFlags, strict: true, allowPositionals: false });
  const base = values.quick ? QUICK_SWEEP : DEFAULT_SWEEP;
  const seqLengths = values.seq !== undefined ? list(values.seq).map((s) => parseLength('--seq', s)) : values.large ? LARGE_SEQ : base.seqLengths;
  if (seqLengths.length === 0) throw new ConfigError(`--seq: expected at least one length, got '${values.seq}'`);
  // Family suites run their own sweeps (often much slower than one cell): at full size
  // (--full-suites) only at the shortest length unless --large or --suite-seq says otherwise.
  const suiteSeqLengths =
    values['suite-seq'] !== undefined ? list(values['suite-seq']).map((s) => parseLength('--suite-seq', s)) : values.large || values.quick ? seqLengths : [Math.min(...seqLengths)];
  if (suiteSeqLengths.length === 0) throw new ConfigError(`--suite-seq: expected at least one length, got '${values['suite-seq']}'`);
  const decodeLengths = values['decode-seq'] !== undefined ? list(values['decode-seq']).map((s) => parseLength('--decode-seq', s)) : seqLengths;
  const backend = values.backend ?? 'cpu';
  if (backend !== 'cpu' && backend !== 'gpu') throw new ConfigError(`--backend: expected cpu or gpu, got '${backend}'`);
  const decodeSteps = positiveInt('--decode-steps', values['decode-steps'], base.decodeSteps);
  if (decodeSteps < 2) throw new ConfigError(`--decode-steps: needs at least 2 (one warm-up step, then timed steps), got ${decodeSteps}`);
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isSafeInteger(seed)) throw new ConfigError(`--seed: expected an integer, got '${values.seed}'`);
  const workloadList = workloads('--workloads', values.workloads, base.workloads);
  const decodeDefault = workloadList.includes('needle') ? base.decodeWorkloads : [workloadList[0]!];
  return {
    options: {
      ...base,
      seqLengths,
      decodeLengths,
      workloads: workloadList,
      decodeWorkloads: workloads('--decode-workloads', values['decode-workloads'], decodeDefault),
      decodeSteps,
      budgets: parseBudgets(values.budgets, base.budgets),
      repeats: positiveInt('--repeats', values.repeats, base.repeats),
      backend,
      quick: values.quick ?? false,
      seed,
      ort: !values['no-ort'],
      suiteSeqLengths,
      // Family suites at full size take minutes each on 2 cores: the default run uses their quick sizes.
      suiteQuick: values.quick || !(values.large || values['full-suites']),
      timeBudgetMs: values['time-budget'] !== undefined ? nonNegativeSeconds(values['time-budget']) * 1000 : values.large ? 0 : base.timeBudgetMs,
    },
    methods: values.methods === undefined ? undefined : list(values.methods),
    suites: values.suites === undefined ? undefined : list(values.suites),
    out: values.out ?? 'results',
    progress: !values['no-progress'],
    html: !values['no-html'],
  };
}

/** Parses `bench run`. */
export function parseRunArgs(args: readonly string[]) {
  const { values } = parseArgs({
    args: [...args],
    options: { method: { type: 'string' }, config: { type: 'string' }, in: { type: 'string' }, out: { type: 'string' }, 'non-causal': { type: 'boolean' } },
    strict: true,
    allowPositionals: false,
  });
  for (const flag of ['method', 'in', 'out'] as const) {
    if (!values[flag]) throw new ConfigError(`bench run: --${flag} is required (usage: bench run --method ID [--config JSON] --in q_k_v.safetensors --out result.safetensors)`);
  }
  let config: unknown = {};
  if (values.config !== undefined) {
    try {
      config = JSON.parse(values.config);
    } catch (error) {
      throw new ConfigError(`--config: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new ConfigError(`--config: expected a JSON object, got ${values.config}`);
  }
  return { method: values.method!, config, input: values.in!, output: values.out!, causal: !values['non-causal'] };
}

/** Parses `bench list`. */
export function parseListArgs(args: readonly string[]) {
  const { values } = parseArgs({ args: [...args], options: { json: { type: 'boolean' }, backend: { type: 'string' } }, strict: true, allowPositionals: false });
  const backend = values.backend ?? 'cpu';
  if (backend !== 'cpu' && backend !== 'gpu') throw new ConfigError(`--backend: expected cpu or gpu, got '${backend}'`);
  return { json: values.json ?? false, backend: backend as 'cpu' | 'gpu' };
}

/** Parses `bench dense` (issue 2's dense benchmark). `--case` is internal: one case in a child process. */
export function parseDenseArgs(args: readonly string[]) {
  const options = { seq: { type: 'string' }, repeats: { type: 'string' }, out: { type: 'string' }, quick: { type: 'boolean' }, heads: { type: 'string' }, case: { type: 'string' } } as const;
  const { values } = parseArgs({
    args: joinNegativeValues(args, options),
    options,
    strict: true,
    allowPositionals: false,
  });
  const quick = values.quick ?? false;
  const seqLengths = values.seq !== undefined ? list(values.seq).map((s) => parseLength('--seq', s)) : quick ? [64, 256] : [1024, 4096, 16384];
  return {
    seqLengths,
    repeats: positiveInt('--repeats', values.repeats, quick ? 1 : 3),
    heads: positiveInt('--heads', values.heads, quick ? 2 : 8),
    headDim: quick ? 16 : 64,
    out: values.out ?? 'results',
    quick,
    case: values.case,
  };
}
