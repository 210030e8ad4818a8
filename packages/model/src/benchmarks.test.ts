import { describe, expect, it } from 'vitest';
import { ConfigError, Rng, matmul } from '@sparse-attn/core';
import * as ort from 'onnxruntime-node';
import { benchmarkDraftConfig, benchmarkModelConfig, benchmarks, createRandomModel, matmulModel, parameterCount, parseLlamaConfig, plantContext, quickModelConfig } from './index.js';

describe('benchmarks', () => {
  it('the quick run yields a GEMM row and prefill/decode rows per context, each naming its backend', async () => {
    const suite = benchmarks.find((s) => s.id === 'model-throughput')!;
    const rows = await suite.run({ quick: true, seqLengths: [64], repeats: 1, seed: 1, backend: 'cpu' });
    expect(rows.map((r) => `${r.method}/${r.budget ?? ''}/${r.seqLength}`)).toEqual([
      'matmul//256', 'ort-matmul//256', 'dense/prefill-full/64', 'dense/prefill-chunk-16/64', 'dense/decode/64',
    ]);
    for (const row of rows) {
      expect(row.backend).toMatch(/^cpu:/);
      for (const value of Object.values(row.metrics)) expect(Number.isFinite(value)).toBe(true);
    }
    // onnxruntime-node is installed (optional dependency): the baseline ran and the ratio is quoted.
    expect(rows[0]!.backend).toMatch(/^cpu:core-matmul wasm-simd \(2 threads\)$/);
    expect(rows[1]!.backend).toMatch(/^cpu:onnxruntime-node .* MatMul \(2 threads\)$/);
    expect(rows[1]!.metrics['gflops']).toBeGreaterThan(0);
    expect(rows[0]!.metrics['ratioVsOrt']).toBeCloseTo(rows[0]!.metrics['gflops']! / rows[1]!.metrics['gflops']!, 10);
    expect(rows[4]!.metrics['kvBytes']).toBe(2 * 4 * 2 * 2 * 16 * (64 + 1 + 3)); // planted 64 + 1 warm-up + 3 timed decode steps
  });

  it('runs at exactly the context lengths the bench passes (sorted, once each), not at built-in sizes', async () => {
    const suite = benchmarks.find((s) => s.id === 'model-throughput')!;
    const rows = await suite.run({ quick: true, seqLengths: [40, 24, 40], repeats: 1, seed: 2, backend: 'cpu' });
    const modelRows = rows.filter((r) => r.method === 'dense');
    expect([...new Set(modelRows.map((r) => r.seqLength))]).toEqual([24, 40]);
    expect(modelRows.filter((r) => r.budget === 'decode').map((r) => r.seqLength)).toEqual([24, 40]);
    await expect(suite.run({ quick: true, seqLengths: [0], repeats: 1, seed: 2, backend: 'cpu' })).rejects.toThrow(ConfigError);
  });

  it('the benchmark target has ~100M parameters and its draft a tenth of that over the same vocabulary', () => {
    const target = parseLlamaConfig(benchmarkModelConfig);
    const draft = parseLlamaConfig(benchmarkDraftConfig);
    expect(parameterCount(target)).toBe(100_092_672);
    expect(parameterCount(draft)).toBe(9_766_144);
    expect(draft.vocab_size).toBe(target.vocab_size);
    expect(draft.head_dim).toBe(target.head_dim);
  });

  it('a planted context behaves like a cache of that length: decode continues at its end', () => {
    const model = createRandomModel(quickModelConfig, { seed: 2 });
    const session = model.createSession();
    plantContext(session, 10, 3);
    const step = session.forward([5], { positions: [10] });
    expect(step.step.phase).toBe('decode');
    expect(step.trace[0]!.keySeq).toBe(11);
    expect(session.nextPosition).toBe(11);
  });
});

describe('onnxruntime-node MatMul baseline', () => {
  it('the hand-encoded ONNX MatMul graph computes the same product as core matmul', async () => {
    const [m, k, n] = [5, 7, 3];
    const rng = new Rng(4);
    const a = rng.fillNormal(new Float32Array(m * k));
    const b = rng.fillNormal(new Float32Array(k * n));
    const session = await ort.InferenceSession.create(matmulModel(m, k, n));
    const { y } = await session.run({ a: new ort.Tensor('float32', a, [m, k]), b: new ort.Tensor('float32', b, [k, n]) });
    await session.release();
    expect(y!.dims).toEqual([m, n]);
    const expected = matmul(a, b, m, k, n);
    const got = y!.data as Float32Array;
    for (let i = 0; i < m * n; i++) expect(Math.abs(got[i]! - expected[i]!)).toBeLessThan(1e-5);
  });
});
