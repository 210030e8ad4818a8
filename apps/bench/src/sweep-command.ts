import { ConfigError } from '@sparse-attn/core';
import { parseSweepArgs } from './cli-options.js';
import { renderHtmlReport } from './html-report.js';
import { progressBar } from './progress-bar.js';
import { defaultSuiteIds, loadRegistry, resolveMethod } from './registry.js';
import { openGpuSession } from './gpu-sweep.js';
import { runSweep } from './run-sweep.js';
import { childSuiteRunner } from './suite-command.js';
import { sweepTable } from './terminal-table.js';
import { writeResultFiles } from './write-results.js';
import type { CommandIo } from './command-io.js';

/**
 * `pnpm bench [flags]`: the default sweep. Resolves method and suite ids against the registry
 * (unknown ids are one `ConfigError` line), runs, prints the table and writes JSON + HTML.
 * The fast dense baseline always runs (every speedup is relative to it), even if not listed.
 * `--backend gpu` runs the GPU family's methods (prefill, on `@sparse-attn/backend-gpu`) and the
 * GPU families' suites; with no adapter it fails with one line instead of reporting CPU numbers.
 */
export async function sweepCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const line = parseSweepArgs(args);
  const { registry, suites, families, failures } = await loadRegistry();
  const backend = line.options.backend;
  const suiteIds = suites.map((s) => s.id);
  for (const id of line.suites ?? []) {
    if (!suiteIds.includes(id)) throw new ConfigError(`--suites: unknown suite '${id}'; available: ${suiteIds.join(', ') || '(none)'}`);
  }
  // The methods a backend runs: the CPU registry, or the GPU family's GPU methods.
  const provider = families.find((f) => f.gpuProvider)?.gpuProvider;
  const registered = backend === 'gpu' ? (provider?.methods.map((m) => m.id) ?? []) : registry.list('cpu').map((d) => d.id);
  if (registered.length === 0 && backend === 'cpu') throw new ConfigError('no methods are registered on the cpu backend');
  const requested = line.methods ?? registered;
  for (const id of requested) {
    if (backend === 'cpu') resolveMethod(registry, failures, id, backend);
    else if (!registered.includes(id)) throw new ConfigError(`unknown method '${id}' for backend gpu; registered: ${registered.join(', ') || '(none)'}`);
  }
  const methods = requested.includes('dense') || !registered.includes('dense') ? requested : ['dense', ...requested];
  const whyNoProvider = failures.map((f) => `${f.family}: ${f.error}`).join('; ') || 'no family exports gpuMethods and createGpuBackend';
  const gpu = backend === 'gpu' ? await openGpuSession(provider, whyNoProvider) : undefined;
  let results;
  try {
    results = await runSweep(registry, suites, {
      ...line.options,
      methods,
      ort: line.options.ort && methods.length > 0,
      suites: line.suites ?? defaultSuiteIds(backend, families),
      familyFailures: failures,
      ...(gpu ? { gpu } : {}),
      ...(io.cliPath ? { runSuite: childSuiteRunner(io.cliPath) } : {}),
      ...(line.progress && io.progress ? { progress: progressBar() } : {}),
    });
  } finally {
    gpu?.backend.destroy();
  }
  io.stdout(sweepTable(results));
  const files: Record<string, string> = { json: `${JSON.stringify(results, null, 1)}\n` };
  if (line.html) files['html'] = await renderHtmlReport(results);
  const written = writeResultFiles(line.out, '', files);
  io.stdout(`\nwrote ${written.join(' and ')} (${(results.wallMs / 1000).toFixed(1)} s)`);
  return 0;
}
