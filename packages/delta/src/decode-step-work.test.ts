import { createWorkload, sliceSeq } from '@sparse-attn/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deltaMethod } from './delta.js';
import { tidalDecodeMethod } from './tidal-decode.js';

// Work a decode step does, counted (not timed): a step must not re-check the whole cache, and
// TidalDecode (top-k on raw logits) must not compute softmax probabilities.
const [queryHeads, kvHeads, headDim, seqLength] = [4, 2, 16, 400];
const { input } = createWorkload('gaussian', { queryHeads, kvHeads, seqLength, headDim, seed: 9 });

function decodeOneStepCounting(method: ReturnType<typeof deltaMethod.create> | ReturnType<typeof tidalDecodeMethod.create>) {
  const decoder = method.createDecoder({ batch: 1, queryHeads, kvHeads, headDim });
  const p = seqLength - 1;
  decoder.step({ q: sliceSeq(input.q, 0, p), k: sliceSeq(input.k, 0, p), v: sliceSeq(input.v, 0, p) });
  const step = { q: sliceSeq(input.q, p, p + 1), k: sliceSeq(input.k, p, p + 1), v: sliceSeq(input.v, p, p + 1) };
  const finite = vi.spyOn(Number, 'isFinite');
  const exp = vi.spyOn(Math, 'exp');
  const result = decoder.step(step);
  const counts = { finiteChecks: finite.mock.calls.length, exps: exp.mock.calls.length };
  vi.restoreAllMocks();
  return { result, ...counts };
}

describe('decode step work', () => {
  afterEach(() => vi.restoreAllMocks());
  const stepValues = (queryHeads + 2 * kvHeads) * headDim;

  it.each([
    ['delta', () => deltaMethod.create({ pageSize: 8, pageBudget: 6, recentPages: 2 })],
    ['tidal-decode', () => tidalDecodeMethod.create({ tokenBudget: 16 })],
  ] as const)('%s checks the new token for finite values, not the whole cache', (_name, create) => {
    const { result, finiteChecks } = decodeOneStepCounting(create());
    expect(result.stats.density).toBeLessThan(1);
    expect(finiteChecks).toBeLessThanOrEqual(2 * stepValues + 64);
  });

  it('tidal-decode ranks raw logits without computing softmax probabilities', () => {
    const { exps } = decodeOneStepCounting(tidalDecodeMethod.create({ tokenBudget: 16 }));
    // A softmax over the visible keys would take queryHeads · seqLength exponentials.
    expect(exps).toBeLessThan(queryHeads * 16 + 64);
  });
});
