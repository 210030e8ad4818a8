import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QUICK_SWEEP } from '../src/cli-options.js';
import { loadRegistry } from '../src/registry.js';
import { sweepResultsSchema } from '../src/results-schema.js';
import { runSweep } from '../src/run-sweep.js';
import { runCli, temporaryDirectory } from './helpers.js';

describe('bench report', () => {
  it('joins suite rows from separate runs into one validated JSON + HTML report; bad inputs are one line', async () => {
    const results = await runSweep((await loadRegistry()).registry, [], {
      ...QUICK_SWEEP,
      methods: ['dense'],
      workloads: ['needle'],
      decodeWorkloads: ['needle'],
      seqLengths: [64],
      decodeLengths: [64],
      suiteSeqLengths: [64],
      suiteQuick: true,
      backend: 'cpu',
      quick: true,
      seed: 1,
      suites: [],
      ort: false,
    });
    const dir = temporaryDirectory('bench-report-');
    const input = join(dir, 'results.json');
    writeFileSync(input, JSON.stringify(results));
    const rows = join(dir, 'rows.json');
    writeFileSync(rows, JSON.stringify([{ suite: 'gpu-attention', method: 'dense', workload: 'gaussian-gpu', seqLength: 4096, backend: 'gpu: webgpu-wgsl on test', metrics: { ms: 7 } }]));
    const ok = await runCli(['report', '--in', input, '--suite-rows', rows, '--out', join(dir, 'out')]);
    expect(ok.code, ok.stderr.join('\n')).toBe(0);
    const written = ok.stdout.join('\n').match(/wrote (\S+\.json) and (\S+\.html)/)!;
    const merged = sweepResultsSchema.parse(JSON.parse(readFileSync(written[1]!, 'utf8')));
    expect(merged.rows).toHaveLength(results.rows.length);
    expect(merged.suiteRows.map((r) => r.suite)).toEqual(['gpu-attention']);
    expect(merged.config.suites).toEqual(['gpu-attention']);
    expect(readFileSync(written[2]!, 'utf8')).toContain('gpu-attention');

    writeFileSync(rows, JSON.stringify([{ suite: 'x' }]));
    const bad = await runCli(['report', '--in', input, '--suite-rows', rows]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toEqual([expect.stringMatching(/^error: ConfigError: --suite-rows .*not a list of suite rows/)]);
    const missing = await runCli(['report', '--in', join(dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toEqual([expect.stringMatching(/^error: ConfigError: --in .*nope\.json/)]);
  });
});
