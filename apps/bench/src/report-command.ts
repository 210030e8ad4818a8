/**
 * `bench report --in RESULTS.json [--suite-rows ROWS.json …] [--out DIR]`: re-renders a sweep's
 * JSON and HTML report, appending suite rows produced by separate `bench suite` runs (the GPU
 * device run times its gpu-attention suite in its own process, then the sweep's cells, and joins
 * them here into one report). Both inputs are validated against the results schema.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '@sparse-attn/core';
import { z } from 'zod';
import type { CommandIo } from './command-io.js';
import { renderHtmlReport } from './html-report.js';
import { suiteRowSchema, sweepResultsSchema } from './results-schema.js';
import { writeResultFiles } from './write-results.js';

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`${what} ${path}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  }
}

export async function reportCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: [...args], options: { in: { type: 'string' }, 'suite-rows': { type: 'string', multiple: true }, out: { type: 'string' } }, strict: true, allowPositionals: false });
  if (!values.in) throw new ConfigError('bench report: --in RESULTS.json is required');
  const parsed = sweepResultsSchema.safeParse(readJson(values.in, '--in'));
  if (!parsed.success) throw new ConfigError(`--in ${values.in}: not a sweep results file (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`);
  const suiteRows = [...parsed.data.suiteRows];
  for (const path of values['suite-rows'] ?? []) {
    const rows = z.array(suiteRowSchema).safeParse(readJson(path, '--suite-rows'));
    if (!rows.success) throw new ConfigError(`--suite-rows ${path}: not a list of suite rows (${rows.error.issues[0]?.path.join('.')}: ${rows.error.issues[0]?.message})`);
    suiteRows.push(...rows.data);
  }
  const results = { ...parsed.data, suiteRows, config: { ...parsed.data.config, suites: [...new Set([...parsed.data.config.suites, ...suiteRows.map((r) => r.suite)])] } };
  const written = writeResultFiles(values.out ?? 'results', 'report-', { json: `${JSON.stringify(results, null, 1)}\n`, html: await renderHtmlReport(results) });
  io.stdout(`wrote ${written.join(' and ')} (${results.rows.length} cells, ${suiteRows.length} suite rows)`);
  return 0;
}
