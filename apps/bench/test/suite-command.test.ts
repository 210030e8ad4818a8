import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BenchmarkSuite } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { sweepResultsSchema } from '../src/results-schema.js';
import { runSweep } from '../src/run-sweep.js';
import { QUICK_SWEEP } from '../src/cli-options.js';
import { childSuiteRunner, type SuiteRunner } from '../src/suite-command.js';
import { loadRegistry } from '../src/registry.js';

// The built CLI (turbo builds before it tests).
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const context = { quick: true, seqLengths: [64], repeats: 1, seed: 1, backend: 'cpu' as const };
const fake = (id: string): BenchmarkSuite => ({ id, family: 'test', description: 'not in the registry', run: () => [] });

describe('family suites in child processes', () => {
  it('a real suite runs in a child and its rows and progress lines come back', async () => {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: build the package first`);
    const progress: string[] = [];
    const rows = await childSuiteRunner(cli)(fake('routing-scaling'), { ...context, progress: (m) => progress.push(m) }, 60_000);
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows.map((r) => r.suite))).toEqual(new Set(['routing-scaling']));
    expect(progress.some((m) => m.startsWith('routing-scaling'))).toBe(true);
  }, 70_000);

  it('a suite that fails in its process is a one-line error, not a crash', async () => {
    await expect(childSuiteRunner(cli)(fake('no-such-suite'), context, 60_000)).rejects.toThrow(/unknown suite 'no-such-suite'/);
  }, 70_000);

  it('a suite past its deadline is killed and reported as timed out', async () => {
    const started = performance.now();
    await expect(childSuiteRunner(cli)(fake('model-throughput'), { ...context, quick: false, seqLengths: [1024] }, 300)).rejects.toThrow(/timed out: killed at its 0 s share of the time budget/);
    expect(performance.now() - started).toBeLessThan(10_000);
  }, 70_000);

  it('the sweep records a failing or over-budget suite and still returns the other results', async () => {
    const { registry } = await loadRegistry();
    const failing: SuiteRunner = async (suite) => {
      if (suite.id === 'bad') throw new Error('boom');
      return [{ suite: suite.id, method: 'm', workload: 'w', seqLength: 64, backend: 'cpu', metrics: { x: 1 } }];
    };
    const results = await runSweep(registry, [fake('good'), fake('bad')], {
      ...QUICK_SWEEP,
      methods: ['dense'],
      workloads: ['gaussian'],
      decodeWorkloads: ['gaussian'],
      seqLengths: [64],
      decodeLengths: [64],
      suiteSeqLengths: [64],
      suiteQuick: true,
      backend: 'cpu',
      quick: true,
      seed: 1,
      suites: ['good', 'bad'],
      ort: false,
      runSuite: failing,
    });
    expect(sweepResultsSchema.parse(results).suiteRows.map((r) => r.suite)).toEqual(['good']);
    expect(results.suiteFailures).toEqual([{ suite: 'bad', error: expect.stringMatching(/^Error: boom \(after \d+ s\)$/) }]);
    expect(results.rows.map((r) => r.status)).toEqual(['ok', 'ok']);
  });
});
