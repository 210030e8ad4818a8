import { SparseAttnError } from '@sparse-attn/core';
import type { CommandIo } from './command-io.js';
import { denseCommand } from './dense-command.js';
import { gpuCheckCommand } from './gpu-check-command.js';
import { reportCommand } from './report-command.js';
import { listCommand } from './list-command.js';
import { runCommand } from './run-command.js';
import { suiteCommand } from './suite-command.js';
import { sweepCommand } from './sweep-command.js';

/** Usage text printed by `--help`. */
export const USAGE = `usage:
  bench [--methods ID,…] [--workloads gaussian,needle,structured] [--seq 1k,4k] [--decode-seq …]
        [--decode-workloads …] [--decode-steps N] [--budgets all|N|LABEL,…] [--repeats N]
        [--backend cpu|gpu] [--suites ID,…] [--out DIR] [--seed N] [--time-budget SECONDS] [--suite-seq 1k,…] [--full-suites] [--quick] [--large] [--no-ort] [--no-html]
  bench run --method ID [--config JSON] --in q_k_v.safetensors --out result.safetensors [--non-causal]
  bench list [--json]
  bench dense [--seq 1k,4k,16k] [--repeats N] [--heads N] [--quick]
  bench gpu-check [--only TEXT] [--json FILE]   (every package's GPU-vs-CPU checks on this machine's WebGPU)
  bench report --in RESULTS.json [--suite-rows ROWS.json …] [--out DIR]   (re-render a report, joining separate suite runs)`;

/** Exit code for bad flags, unknown methods, invalid configs and malformed files. */
export const EXIT_USAGE = 2;
/** Exit code for failures while running. */
export const EXIT_FAILURE = 1;

/** One line describing an error, never a stack trace. */
export function errorLine(error: unknown): string {
  if (error instanceof SparseAttnError) return `error: ${error.name}: ${error.message.split('\n')[0]}`;
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) return `error: ${(error as Error).message.split('\n')[0]} (see --help)`;
  if (error instanceof Error) return `error: ${error.message.split('\n')[0]}`;
  return `error: ${String(error)}`;
}

function isUsageError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return error instanceof SparseAttnError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'));
}

/** Dispatches a command line; returns the exit code. Every error becomes one line on stderr. */
export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  const [first, ...rest] = argv;
  try {
    if (first === '--help' || first === '-h' || first === 'help') {
      io.stdout(USAGE);
      return 0;
    }
    if (first === 'run') return await runCommand(rest, io);
    if (first === 'list') return await listCommand(rest, io);
    if (first === 'dense') return await denseCommand(rest, io);
    if (first === 'suite') return await suiteCommand(rest, io);
    if (first === 'gpu-check') return await gpuCheckCommand(rest, io);
    if (first === 'report') return await reportCommand(rest, io);
    if (first !== undefined && !first.startsWith('-')) {
      io.stderr(`error: unknown command '${first}'; expected run, list, dense, gpu-check, report or flags of the default sweep (see --help)`);
      return EXIT_USAGE;
    }
    return await sweepCommand(argv, io);
  } catch (error) {
    io.stderr(errorLine(error));
    return isUsageError(error) ? EXIT_USAGE : EXIT_FAILURE;
  }
}
