import { denseMethod, type MethodDefinition } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { parseBudgets, parseSweepArgs } from '../src/cli-options.js';
import { countAllocations } from '../src/memory-tracker.js';
import { sweepResultsSchema } from '../src/results-schema.js';
import { FAMILY_PACKAGES, loadRegistry, resolveMethod } from '../src/registry.js';
import { addSpeedups, selectBudgets, suiteRowOf } from '../src/run-sweep.js';
import { summarise } from '../src/timing.js';
import { formatTable, suiteMetricKeys, suiteMetricText } from '../src/terminal-table.js';

describe('countAllocations', () => {
  it('counts new typed arrays, not views, and restores the globals', () => {
    const original = Float32Array;
    const existing = new Float32Array(8);
    const { result, allocatedBytes } = countAllocations(() => {
      const a = new Float32Array(100);
      const view = a.subarray(10, 20);
      const b = new Int32Array(a.buffer, 0, 4);
      const c = Float64Array.from([1, 2, 3]);
      return { a, view, b, c, existingIsFloat32: existing instanceof Float32Array };
    });
    expect(allocatedBytes).toBe(400 + 24);
    expect(result.existingIsFloat32).toBe(true);
    expect(Float32Array).toBe(original);
    expect(result.a instanceof Float32Array).toBe(true);
  });
});

describe('selectBudgets', () => {
  const labels = ['a', 'b', 'c', 'd', 'e'];
  const definition = { ...denseMethod, budgets: () => labels.map((label) => ({ label, config: { label } })) } as unknown as MethodDefinition;
  it('keeps the sparsest point and spaces the rest evenly, leaving out the last (covering) point unless every point is asked for', () => {
    expect(selectBudgets(definition, 100, { kind: 'count', count: 3 }).map((b) => b.label)).toEqual(['a', 'c', 'd']);
    expect(selectBudgets(definition, 100, { kind: 'count', count: 2 }).map((b) => b.label)).toEqual(['a', 'd']);
    expect(selectBudgets(definition, 100, { kind: 'count', count: 5 }).map((b) => b.label)).toEqual(labels);
    expect(selectBudgets(definition, 100, { kind: 'count', count: 9 }).map((b) => b.label)).toEqual(labels);
    expect(selectBudgets(definition, 100, { kind: 'count', count: 1 }).map((b) => b.label)).toEqual(['a']);
    expect(selectBudgets(definition, 100, { kind: 'labels', labels: ['d', 'zz'] }).map((b) => b.label)).toEqual(['d']);
    expect(selectBudgets(definition, 100, { kind: 'all' })).toHaveLength(5);
  });
  it('a method without a sweep runs once with its defaults', () => {
    expect(selectBudgets(denseMethod as unknown as MethodDefinition, 100, { kind: 'count', count: 3 })).toEqual([{ label: 'default', config: {} }]);
  });
});

describe('flags', () => {
  it('parses lengths with k suffixes, budgets and defaults', () => {
    const line = parseSweepArgs(['--seq', '1k,4K,300', '--budgets', 'all', '--no-ort']);
    expect(line.options.seqLengths).toEqual([1024, 4096, 300]);
    expect(line.options.decodeLengths).toEqual([1024, 4096, 300]);
    expect(line.options.budgets).toEqual({ kind: 'all' });
    expect(line.options.ort).toBe(false);
    expect(parseBudgets('2', { kind: 'all' })).toEqual({ kind: 'count', count: 2 });
    expect(parseBudgets('k=4,k=8', { kind: 'all' })).toEqual({ kind: 'labels', labels: ['k=4', 'k=8'] });
  });
  it('a negative number after a flag reaches the flag\'s own check', () => {
    expect(() => parseSweepArgs(['--time-budget', '-1'])).toThrow(/--time-budget: expected seconds ≥ 0 .*'-1'/);
    expect(parseSweepArgs(['--time-budget', '0', '--quick']).options.timeBudgetMs).toBe(0);
    expect(() => parseSweepArgs(['--out', '-x'])).toThrow(/argument is ambiguous/);
  });
  it('family suites: quick sizes by default, full with --full-suites or --large; time budget off with --large', () => {
    expect(parseSweepArgs([]).options).toMatchObject({ suiteQuick: true, suiteSeqLengths: [1024], timeBudgetMs: 420_000 });
    expect(parseSweepArgs(['--full-suites']).options).toMatchObject({ suiteQuick: false, suiteSeqLengths: [1024] });
    expect(parseSweepArgs(['--large']).options).toMatchObject({ suiteQuick: false, suiteSeqLengths: [1024, 4096, 16384], timeBudgetMs: 0 });
    expect(parseSweepArgs(['--suite-seq', '2k']).options.suiteSeqLengths).toEqual([2048]);
  });
  it('--large extends the default sweep to 16k', () => {
    expect(parseSweepArgs(['--large']).options.seqLengths).toEqual([1024, 4096, 16384]);
  });
});

describe('timing summary and speedups', () => {
  it('median, 20/80 quantiles and MAD', () => {
    const t = summarise([5, 1, 4, 2, 3]);
    expect(t).toMatchObject({ medianMs: 3, minMs: 1, maxMs: 5, madMs: 1, samples: 5 });
    expect(t.p20Ms).toBeCloseTo(1.8, 9);
    expect(t.p80Ms).toBeCloseTo(4.2, 9);
  });
  it('speedups are dense (or ORT) median over the row median, same workload, length and phase', () => {
    const timing = (medianMs: number) => summarise([medianMs]);
    const base = { family: 'x', budget: 'default', budgetConfig: {}, workload: 'gaussian', seqLength: 64, phase: 'prefill' as const, status: 'ok' as const };
    const rows = [
      { ...base, method: 'dense', timing: timing(10) },
      { ...base, method: 'onnxruntime', timing: timing(20) },
      { ...base, method: 'fast', timing: timing(2) },
      { ...base, method: 'other-phase', phase: 'decode' as const, timing: timing(1) },
    ];
    addSpeedups(rows);
    expect(rows[2]).toMatchObject({ speedupVsDense: 5, speedupVsOrt: 10 });
    expect(rows[0]).toMatchObject({ speedupVsDense: 1, speedupVsOrt: 2 });
    expect(rows[3]).not.toHaveProperty('speedupVsDense');
  });
});

describe('results schema', () => {
  it('rejects documents with missing or wrongly typed figures', () => {
    expect(sweepResultsSchema.safeParse({ schemaVersion: 1, kind: 'sweep' }).success).toBe(false);
    const row = { method: 'm', family: 'f', budget: 'b', budgetConfig: {}, workload: 'w', seqLength: 0, phase: 'prefill', status: 'ok' };
    const issues = sweepResultsSchema.shape.rows.safeParse([row]).error?.issues ?? [];
    expect(issues.map((i) => i.path.join('.'))).toEqual(['0.seqLength']);
  });
});

describe('formatTable', () => {
  it('aligns columns: first two left, the rest right', () => {
    expect(formatTable([['a', 'b', 'n'], ['long', 'x', '1.5']]).split('\n')).toEqual(['a     b    n', '────  ─  ───', 'long  x  1.5']);
  });
});

describe('suite rows', () => {
  it('moves non-finite figures out of metrics into nonFiniteMetrics, and the table shows them', () => {
    const reported = { suite: 's', method: 'm', workload: 'w', seqLength: 8, backend: 'cpu' };
    const row = suiteRowOf({ ...reported, metrics: { a: 1.23456, b: Number.NaN, c: Number.POSITIVE_INFINITY } });
    expect(row.metrics).toEqual({ a: 1.23456 });
    expect(row.nonFiniteMetrics).toEqual(['b=NaN', 'c=Infinity']);
    expect(sweepResultsSchema.shape.suiteRows.safeParse([row]).success).toBe(true);
    expect(suiteMetricKeys([row])).toEqual(['a', 'b', 'c']);
    expect(['a', 'b', 'c', 'd'].map((k) => suiteMetricText(row, k))).toEqual(['1.235', 'NaN', 'Infinity', '–']);
    expect(suiteRowOf({ ...reported, metrics: { a: 1 } })).not.toHaveProperty('nonFiniteMetrics');
  });
});

describe('family loading', () => {
  const suite = (id: string) => ({ id, family: 'f', description: 'd', run: () => [] });
  const method = (id: string) => ({ ...denseMethod, id }) as unknown as MethodDefinition;
  const modules: Record<string, object> = {
    good: { methods: [method('good-a')], benchmarks: [suite('s1')] },
    clash: { methods: [method('good-a'), method('other')] },
    malformed: { methods: { id: 'x' } },
    suiteless: { methods: [method('lonely')] },
  };
  const loader = async (name: string) => {
    if (name === 'broken') throw new Error('Cannot find module broken/dist/index.js\n    at somewhere');
    return modules[name]!;
  };

  it('a family that fails to load, is malformed or clashes is recorded; the others still register', async () => {
    const names = ['good', 'broken', 'clash', 'malformed', 'suiteless'].map((name) => ({ name }));
    const loaded = await loadRegistry(names, loader);
    expect(loaded.registry.list().map((d) => d.id)).toEqual(['dense', 'good-a', 'lonely']);
    expect(loaded.suites.map((s) => s.id)).toEqual(['s1']);
    expect(loaded.failures).toEqual([
      { family: 'broken', error: 'could not load: Error: Cannot find module broken/dist/index.js' },
      { family: 'malformed', error: "could not load: ConfigError: malformed: export 'methods' is not an array" },
      { family: 'clash', error: "not registered: method id 'good-a' is already registered by another family" },
    ]);
    expect(() => resolveMethod(loaded.registry, loaded.failures, 'other')).toThrow(/unknown method 'other'.*failed to load: broken, malformed, clash/);
    expect(resolveMethod(loaded.registry, loaded.failures, 'lonely').id).toBe('lonely');
  });

  it("a family's ./gpu twins join the GPU family's sweep methods and suites; a broken ./gpu entry drops only the twins", async () => {
    const twin = (id: string) => ({ id, family: 'fam', cpu: method(id), create: () => ({ prefill: async () => { throw new Error('unused'); } }) });
    const suiteFor = (methods: readonly { definition: { id: string } }[]) => ({ ...suite('gpu-attention'), description: methods.map((m) => m.definition.id).join(',') });
    const decoderSuiteFor = (methods: readonly { id: string }[]) => ({ ...suite('gpu-decoders'), description: methods.map((m) => m.id).join(',') });
    const gpuModules: Record<string, object> = {
      fam: { methods: [method('fam-a')] },
      'fam/gpu': { gpuMethods: [twin('fam-a')], benchmarks: [suite('fam-gpu-only')] },
      other: { methods: [method('other-a')] },
      'gpu-family': { gpuMethods: [twin('gpu-dense')], createGpuBackend: async () => ({}), createGpuAttentionSuite: suiteFor, createGpuDecoderSuite: decoderSuiteFor, benchmarks: [suite('gpu-attention'), suite('gpu-decoders')] },
    };
    const load = async (name: string) => {
      if (name === 'other/gpu') throw new Error('no ./gpu export');
      return gpuModules[name]!;
    };
    const loaded = await loadRegistry([{ name: 'fam', gpuEntry: true }, { name: 'other', gpuEntry: true }, { name: 'gpu-family', gpu: true }], load);
    expect(loaded.registry.list().map((d) => d.id)).toEqual(['dense', 'fam-a', 'other-a']);
    expect(loaded.failures).toEqual([{ family: 'other/gpu', error: 'could not load: Error: no ./gpu export' }]);
    const provider = loaded.families.find((f) => f.gpuProvider)!.gpuProvider!;
    expect(provider.methods.map((m) => m.id)).toEqual(['gpu-dense', 'fam-a']);
    expect(loaded.suites.find((s) => s.id === 'gpu-attention')!.description).toBe('gpu-dense,fam-a');
    expect(loaded.suites.find((s) => s.id === 'gpu-decoders')!.description).toBe('gpu-dense,fam-a');
    // A ./gpu entry's own suites (GPU-only benchmarks) join the family's.
    expect(loaded.suites.map((s) => s.id)).toContain('fam-gpu-only');
  });

  it('the real families all load', async () => {
    const loaded = await loadRegistry();
    expect(loaded.failures).toEqual([]);
    expect(loaded.families.map((f) => f.name)).toEqual(['@sparse-attn/core', ...FAMILY_PACKAGES.map((p) => p.name)]);
  });
});
