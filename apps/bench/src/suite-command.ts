/**
 * Family benchmark suites in child processes. A suite is one opaque async call, so the only way
 * to bound its time, and to survive a crash, an out-of-memory kill or a hang inside it, is to run
 * it in its own process: `bench suite --id ID --context JSON` (internal) runs one suite and prints
 * its rows as one JSON line; the sweep spawns it with a deadline and records a failure otherwise.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { ConfigError, type BenchmarkContext, type BenchmarkSuite } from '@sparse-attn/core';
import { z } from 'zod';
import type { CommandIo } from './command-io.js';
import { loadRegistry } from './registry.js';
import { suiteRowSchema, type SuiteRow } from './results-schema.js';
import { suiteRowOf } from './run-sweep.js';

/** Runs one suite and returns its rows; throws with a one-line reason when it fails. */
export type SuiteRunner = (suite: BenchmarkSuite, context: BenchmarkContext, timeoutMs: number) => Promise<SuiteRow[]>;

/** The suite context passed on the command line (progress is a callback, so it is not). */
const contextSchema = z
  .object({
    quick: z.boolean(),
    seqLengths: z.array(z.number().int().positive()),
    repeats: z.number().int().positive(),
    seed: z.number().int(),
    backend: z.enum(['cpu', 'gpu']),
    methods: z.array(z.string()).optional(),
  })
  .strict();

/** A suite that failed in its child process; the message already names the error kind. */
export class SuiteProcessError extends Error {
  override readonly name = 'SuiteProcessError';
}

/** Prefix of the child's progress lines on stderr. */
const PROGRESS = 'progress: ';

/** In this process: no deadline can be enforced (used by tests and when the CLI path is unknown). */
export const runSuiteInProcess: SuiteRunner = async (suite, context) => (await suite.run(context)).map(suiteRowOf);

/**
 * A runner that spawns `node <cliPath> suite …` per suite and kills it at the deadline. The
 * child's progress lines are forwarded to `context.progress`; its last stdout line holds the rows.
 */
export function childSuiteRunner(cliPath: string): SuiteRunner {
  return (suite, context, timeoutMs) =>
    new Promise<SuiteRow[]>((resolve, reject) => {
      const { progress, ...plain } = context;
      const child = spawn(process.execPath, [cliPath, 'suite', '--id', suite.id, '--context', JSON.stringify(plain)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderrTail = '';
      let pending = '';
      let timedOut = false;
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const line of lines) {
          if (line.startsWith(PROGRESS)) progress?.(line.slice(PROGRESS.length));
          // The child's `error: …` line (see main.ts) without its prefix.
          else if (line.trim()) stderrTail = line.trim().replace(/^error: /, '');
        }
      });
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, Math.max(1, timeoutMs))
        : undefined;
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (timedOut) return reject(new SuiteProcessError(`timed out: killed at its ${Math.round(timeoutMs / 1000)} s share of the time budget (raise --time-budget, 0 = none)`));
        if (code !== 0) {
          const why = stderrTail || pending.trim() || `exit code ${code}${signal ? `, signal ${signal}` : ''}`;
          return reject(new SuiteProcessError(signal ? `killed by ${signal}: ${why}` : why));
        }
        try {
          const last = stdout.trim().split('\n').pop() ?? '';
          resolve(z.array(suiteRowSchema).parse(JSON.parse(last)));
        } catch (error) {
          reject(new SuiteProcessError(`suite process printed no valid rows (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`));
        }
      });
    });
}

/** `bench suite --id ID --context JSON` (internal): one suite in this process, rows as one JSON line. */
export async function suiteCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: [...args], options: { id: { type: 'string' }, context: { type: 'string' } }, strict: true, allowPositionals: false });
  if (!values.id || !values.context) throw new ConfigError('bench suite: --id and --context are required (internal command of the sweep)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(values.context);
  } catch {
    throw new ConfigError(`--context: not valid JSON, got '${values.context}'`);
  }
  const checked = contextSchema.safeParse(parsed);
  if (!checked.success) throw new ConfigError(`--context: ${checked.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const { suites } = await loadRegistry();
  const suite = suites.find((s) => s.id === values.id);
  if (!suite) throw new ConfigError(`--id: unknown suite '${values.id}'; available: ${suites.map((s) => s.id).join(', ')}`);
  const rows = await runSuiteInProcess(suite, { ...checked.data, progress: (message) => io.stderr(`${PROGRESS}${message}`) }, Infinity);
  io.stdout(JSON.stringify(rows));
  return 0;
}
