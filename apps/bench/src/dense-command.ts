/**
 * `bench dense`: issue 2's dense benchmark. Causal attention, B=1, H=8, D=64, S = 1k, 4k, 16k:
 * the double-precision reference (1k only: it is slow by design), our fast dense kernel, and
 * onnxruntime-node's opset-23 `Attention`, measured in the same run. Reports median time,
 * GFLOP/s with causal FLOPs = 2·S²·D·H (the issue's convention), the ratio vs onnxruntime and
 * peak RSS. Each case runs in its own child process so its peak RSS is its own.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ConfigError, createWorkload, denseAttention, referenceAttention, relativeL2Error } from '@sparse-attn/core';
import { parseDenseArgs } from './cli-options.js';
import type { CommandIo } from './command-io.js';
import { machineInfo } from './machine-info.js';
import { OrtDenseAttention, ortShapeOf } from './ort-attention.js';
import { denseCaseSchema, denseResultsSchema, type DenseCase, type DenseResults } from './results-schema.js';
import { denseTable } from './terminal-table.js';
import { timeAsync, timeSync } from './timing.js';
import { writeResultFiles } from './write-results.js';

/** The implementations compared, in table order. */
export const DENSE_IMPLEMENTATIONS = ['reference', 'fast-dense', 'onnxruntime'] as const;
type Implementation = (typeof DENSE_IMPLEMENTATIONS)[number];

/** The reference only runs up to this length: beyond it, it takes minutes. */
export const REFERENCE_MAX_SEQ = 1024;

/** Causal FLOPs by the convention: 2·S²·D·H. */
export function causalFlops(seq: number, headDim: number, heads: number): number {
  return 2 * seq * seq * headDim * heads;
}

/** Runs one case in this process and returns its row (without the cross-case ratio). */
export async function runDenseCase(implementation: Implementation, seq: number, heads: number, headDim: number, repeats: number): Promise<DenseCase> {
  const { input } = createWorkload('gaussian', { seqLength: seq, queryHeads: heads, kvHeads: heads, headDim, seed: 1 });
  // Long cases get no warm-up run: one 16k run already takes tens of seconds, long past JIT warm-up.
  const timing = { warmup: seq >= 16384 ? 0 : 1, repeats, budgetMs: 20_000 };
  let result: Pick<DenseCase, 'timing' | 'backend'>;
  let output;
  if (implementation === 'onnxruntime') {
    const ort = await OrtDenseAttention.create(ortShapeOf(input));
    try {
      output = await ort.run(input);
      result = {
        timing: await timeAsync(() => ort.run(input), timing),
        backend: { backend: 'cpu', kernel: ort.kernel, device: `${ort.threads} intra-op threads`, ...(ort.fallbackReason ? { fallbackReason: ort.fallbackReason } : {}) },
      };
    } finally {
      await ort.release();
    }
  } else {
    const run = implementation === 'reference' ? () => referenceAttention(input) : () => denseAttention(input);
    const first = run();
    output = first.output;
    result = { timing: timeSync(run, { ...timing, warmup: 0 }), backend: first.backend };
  }
  // Cross-check against the fast kernel where that is cheap (fast dense is O(S) memory, so RSS is unaffected).
  const check = implementation !== 'fast-dense' && seq <= 4096 ? relativeL2Error(output, denseAttention(input).output) : undefined;
  return {
    implementation,
    seqLength: seq,
    status: 'ok',
    ...result,
    gflops: causalFlops(seq, headDim, heads) / (result.timing!.medianMs * 1e6),
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    ...(check !== undefined ? { relativeL2ErrorVsFast: check } : {}),
  };
}

const execFileAsync = promisify(execFile);

async function runInChild(cliPath: string, implementation: Implementation, seq: number, heads: number, repeats: number, quick: boolean): Promise<DenseCase> {
  const args = [cliPath, 'dense', '--case', `${implementation}:${seq}`, '--heads', String(heads), '--repeats', String(repeats), ...(quick ? ['--quick'] : [])];
  try {
    const { stdout } = await execFileAsync(process.execPath, args, { maxBuffer: 1 << 20 });
    return denseCaseSchema.parse(JSON.parse(stdout.trim().split('\n').pop()!));
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim().split('\n').pop();
    return { implementation, seqLength: seq, status: 'error', error: stderr || (error instanceof Error ? error.message.split('\n')[0]! : String(error)) };
  }
}

/** The command: every case (each in a child process when the CLI path is known), then the table and files. */
export async function denseCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const options = parseDenseArgs(args);
  if (options.case !== undefined) {
    const [implementation, seqText] = options.case.split(':');
    if (!DENSE_IMPLEMENTATIONS.includes(implementation as Implementation) || !/^\d+$/.test(seqText ?? '')) {
      throw new ConfigError(`--case: expected IMPLEMENTATION:SEQ with IMPLEMENTATION one of ${DENSE_IMPLEMENTATIONS.join(', ')}, got '${options.case}'`);
    }
    io.stdout(JSON.stringify(await runDenseCase(implementation as Implementation, Number(seqText), options.heads, options.headDim, options.repeats)));
    return 0;
  }
  const started = performance.now();
  const cases: DenseCase[] = [];
  for (const seq of options.seqLengths) {
    for (const implementation of DENSE_IMPLEMENTATIONS) {
      if (implementation === 'reference' && seq > REFERENCE_MAX_SEQ) continue;
      io.stderr(`bench dense: ${implementation} S=${seq} …`);
      cases.push(
        io.cliPath
          ? await runInChild(io.cliPath, implementation, seq, options.heads, options.repeats, options.quick)
          : await runDenseCase(implementation, seq, options.heads, options.headDim, options.repeats),
      );
    }
  }
  for (const [i, c] of cases.entries()) {
    const ort = cases.find((o) => o.implementation === 'onnxruntime' && o.seqLength === c.seqLength && o.timing);
    if (c.timing && ort?.timing) cases[i] = { ...c, ratioVsOrt: ort.timing.medianMs / c.timing.medianMs };
  }
  const ortCase = cases.find((c) => c.implementation === 'onnxruntime' && c.backend);
  const results: DenseResults = denseResultsSchema.parse({
    schemaVersion: 1,
    kind: 'dense',
    createdAt: new Date().toISOString(),
    wallMs: performance.now() - started,
    machine: machineInfo(ortCase?.backend ? { onnxruntime: ortCase.backend.kernel.split(':')[0]!.replace('onnxruntime-node-', '') } : {}),
    config: { batch: 1, heads: options.heads, headDim: options.headDim, seqLengths: options.seqLengths, repeats: options.repeats },
    cases,
  });
  io.stdout(denseTable(results));
  const written = writeResultFiles(options.out, 'dense-', { json: `${JSON.stringify(results, null, 1)}\n` });
  io.stdout(`\nwrote ${written.join(', ')}${io.cliPath ? '' : ' (cases ran in-process: peak RSS is the whole process)'}`);
  return 0;
}
