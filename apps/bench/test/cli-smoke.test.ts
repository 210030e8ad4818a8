import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../src/registry.js';
import { sweepResultsSchema, type SweepResults } from '../src/results-schema.js';
import { runCli, temporaryDirectory } from './helpers.js';

describe('bench --quick (the default sweep at tiny sizes)', () => {
  let results: SweepResults;
  let out: { code: number; stdout: string[]; stderr: string[] };
  let dir: string;

  beforeAll(async () => {
    dir = temporaryDirectory();
    out = await runCli(['--quick', '--out', dir]);
    const json = readdirSync(dir).find((f) => f.endsWith('.json'))!;
    results = sweepResultsSchema.parse(JSON.parse(readFileSync(join(dir, json), 'utf8')));
  }, 120_000);

  it('exits 0, prints the table and writes JSON and HTML side by side', () => {
    expect(out.code, out.stderr.join('\n')).toBe(0);
    expect(out.stdout.some((l) => /^method\s+budget\s+S\s+prefill ms/.test(l))).toBe(true);
    const files = readdirSync(dir).sort();
    expect(files).toHaveLength(2);
    expect(files[0]!.replace(/\.html$/, '')).toBe(files[1]!.replace(/\.json$/, ''));
  });

  it('runs every registered method, both dense baselines, every workload, prefill and decode', async () => {
    const methods = new Set(results.rows.map((r) => r.method));
    for (const d of (await loadRegistry()).registry.list()) expect(methods.has(d.id), d.id).toBe(true);
    expect(methods.has('onnxruntime')).toBe(true);
    expect(new Set(results.rows.map((r) => r.workload))).toEqual(new Set(['gaussian', 'needle', 'structured']));
    expect(new Set(results.rows.map((r) => r.phase))).toEqual(new Set(['prefill', 'decode']));
    expect(results.config.quick).toBe(true);
    expect(results.machine.cores).toBeGreaterThan(0);
  });

  it('the baselines ran; every ok row records backend, timing, quality and cost; failures are one-line rows', () => {
    const baselines = results.rows.filter((r) => r.method === 'dense' || r.method === 'onnxruntime');
    expect(baselines.filter((r) => r.status !== 'ok').map((r) => `${r.method} ${r.workload} ${r.phase}: ${r.error}`)).toEqual([]);
    for (const r of results.rows.filter((x) => x.status === 'ok')) {
      expect(r.backend?.kernel.length).toBeGreaterThan(0);
      expect(r.timing?.medianMs).toBeGreaterThanOrEqual(0);
      expect(r.quality).toBeDefined();
      expect(r.cost?.density).toBeGreaterThan(0);
      expect(r.speedupVsDense).toBeGreaterThan(0);
      expect(r.speedupVsOrt).toBeGreaterThan(0);
    }
    // A family's failing cell (a bug to report to that family) is a row with a reason, never a crash or a gap.
    const failed = results.rows.filter((r) => r.status !== 'ok');
    for (const r of failed) {
      expect(['error', 'nan', 'unsupported'], `${r.method}: ${r.status}`).toContain(r.status);
      expect(r.error).toMatch(/^\S.*$/);
      expect(r.timing).toBeUndefined();
      expect(out.stdout.join('\n')).toContain(`${r.method}`);
    }
    // At most a minority of the registered methods may fail, so a bench bug that breaks every cell fails here.
    const failedMethods = new Set(failed.map((r) => r.method));
    expect(failedMethods.size).toBeLessThan(new Set(results.rows.map((r) => r.method)).size / 4);
    if (failed.length) console.warn(`family cells that failed (report to their owners):\n${[...new Set(failed.map((r) => `${r.method}: ${r.error}`))].join('\n')}`);
  });

  it('dense and onnxruntime agree with the dense reference; dense has speedup 1 against itself', () => {
    for (const r of results.rows.filter((x) => x.method === 'dense' || x.method === 'onnxruntime')) {
      expect(r.quality!.relativeL2Error).toBeLessThan(1e-5);
      expect(r.cost!.density).toBeCloseTo(1, 9);
      if (r.method === 'dense') expect(r.speedupVsDense).toBe(1);
    }
  });

  it('needle rows report retrieval; decode rows report KV bytes read per step', () => {
    const needle = results.rows.filter((r) => r.workload === 'needle' && r.phase === 'prefill' && r.status === 'ok');
    for (const r of needle) expect(r.quality!.needleSelected).toBeDefined();
    const denseNeedle = needle.find((r) => r.method === 'dense')!;
    expect(denseNeedle.quality!.needleDominated).toBe(1);
    for (const r of results.rows.filter((x) => x.phase === 'decode' && x.status === 'ok')) expect(r.cost!.kvBytesRead).toBeGreaterThan(0);
  });

  it('sparse methods report a selection: mass recall in [0, 1] and density below 1 at their sparsest budget', () => {
    const sparse = results.rows.filter((r) => r.phase === 'prefill' && r.quality?.massRecall !== undefined);
    expect(sparse.length).toBeGreaterThan(0);
    for (const r of sparse) {
      expect(r.quality!.massRecall!).toBeGreaterThanOrEqual(0);
      expect(r.quality!.massRecall!).toBeLessThanOrEqual(1 + 1e-6);
    }
  });
});
