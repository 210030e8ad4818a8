import { describe, expect, it } from 'vitest';
import { benchmarks, createRandomModel, plantContext, quickModelConfig } from './index.js';

describe('benchmarks', () => {
  it('the quick run yields a GEMM row and prefill/decode rows per context, each naming its backend', async () => {
    const suite = benchmarks.find((s) => s.id === 'model-throughput')!;
    const rows = await suite.run({ quick: true, seqLengths: [64], repeats: 1, seed: 1, backend: 'cpu' });
    expect(rows.map((r) => `${r.method}/${r.budget ?? ''}/${r.seqLength}`)).toEqual([
      'matmul//256', 'dense/prefill-chunk-16/64', 'dense/decode/64', 'dense/prefill-chunk-16/256', 'dense/decode/256',
    ]);
    for (const row of rows) {
      expect(row.backend).toMatch(/^cpu:/);
      for (const value of Object.values(row.metrics)) expect(Number.isFinite(value)).toBe(true);
    }
    expect(rows[2]!.metrics['kvBytes']).toBe(2 * 4 * 2 * 2 * 16 * (64 + 1 + 3)); // planted 64 + 1 warm-up + 3 timed decode steps
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
