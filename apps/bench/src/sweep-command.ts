import { ConfigError } from '@sparse-attn/core';
import { parseSweepArgs } from './cli-options.js';
import { renderHtmlReport } from './html-report.js';
import { progressBar } from './progress-bar.js';
import { defaultSuiteIds, loadRegistry, resolveMethod } from './registry.js';
import { runSweep } from './run-sweep.js';
import { childSuiteRunner } from './suite-command.js';
import { sweepTable } from './terminal-table.js';
import { writeResultFiles } from './write-results.js';
import type { CommandIo } from './command-io.js';

/**
 * `pnpm bench [flags]`: the default sweep. Resolves method and suite ids against the registry
 * (unknown ids are one `ConfigError` line), runs, prints the table and writes JSON + HTML.
 * The fast dense baseline always runs (every speedup is relative to it), even if not listed.
 * `--backend gpu` runs the methods registered on `gpu` and the GPU families' suites; with no GPU
 * (no adapter) it fails with one line instead of reporting CPU numbers.
 */
export async function sweepCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const line = parseSweepArgs(args);
  const { registry, suites, families, failures } = await loadRegistry();
  const backend = line.options.backend;
  const registered = registry.list(backend).map((d) => d.id);
  if (registered.length === 0 && backend === 'cpu') throw new ConfigError('no methods are registered on the cpu backend');
  if (line.methods && registered.length === 0) {
    throw new ConfigError(`--methods: no methods are registered for backend ${backend}; its benchmarks come from the GPU suites (--suites)`);
  }
  const requested = line.methods ?? registered;
  for (const id of requested) resolveMethod(registry, failures, id, backend);
  const methods = requested.includes('dense') || !registered.includes('dense') ? requested : ['dense', ...requested];
  const suiteIds = suites.map((s) => s.id);
  for (const id of line.suites ?? []) {
    if (!suiteIds.includes(id)) throw new ConfigError(`--suites: unknown suite '${id}'; available: ${suiteIds.join(', ') || '(none)'}`);
  }
  const results = await runSweep(registry, suites, {
    ...line.options,
    methods,
    // No GPU-registered sweep methods: the ORT CPU baseline has nothing to be compared with.
    ort: line.options.ort && methods.length > 0,
    suites: line.suites ?? defaultSuiteIds(backend, families),
    familyFailures: failures,
    ...(io.cliPath ? { runSuite: childSuiteRunner(io.cliPath) } : {}),
    ...(line.progress && io.progress ? { progress: progressBar() } : {}),
  });
  if (backend === 'gpu' && results.rows.length === 0 && results.suiteRows.length === 0) {
    // Never report CPU figures under a GPU label: no GPU result means the run failed.
    throw new ConfigError(`--backend gpu: no GPU results (${results.suiteFailures.map((f) => `${f.suite}: ${f.error}`).join('; ') || 'no GPU suite ran'})`);
  }
  io.stdout(sweepTable(results));
  const files: Record<string, string> = { json: `${JSON.stringify(results, null, 1)}\n` };
  if (line.html) files['html'] = await renderHtmlReport(results);
  const written = writeResultFiles(line.out, '', files);
  io.stdout(`\nwrote ${written.join(' and ')} (${(results.wallMs / 1000).toFixed(1)} s)`);
  return 0;
}
