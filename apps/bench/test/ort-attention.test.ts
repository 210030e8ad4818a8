import { createWorkload, referenceAttention, relativeL2Error, sliceSeq } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { OrtDenseAttention, ortShapeOf } from '../src/ort-attention.js';

describe('onnxruntime-node dense baseline', () => {
  const cases = [
    { name: 'MHA S=37', queryHeads: 2, kvHeads: 2, seq: 37 },
    { name: 'GQA S=70', queryHeads: 4, kvHeads: 2, seq: 70 },
    { name: 'S=1', queryHeads: 2, kvHeads: 1, seq: 1 },
  ];
  for (const graph of ['attention-opset23', 'matmul-softmax'] as const) {
    for (const c of cases) {
      it(`${graph} equals the reference: ${c.name}`, async () => {
        const { input } = createWorkload('gaussian', { queryHeads: c.queryHeads, kvHeads: c.kvHeads, seqLength: c.seq, headDim: 16, seed: 3 });
        const ort = await OrtDenseAttention.create(ortShapeOf(input), { graph, threads: 1 });
        expect(ort.graph).toBe(graph);
        const out = await ort.run(input);
        expect(relativeL2Error(out, referenceAttention(input).output)).toBeLessThan(1e-5);
        await ort.release();
      });
    }
  }

  it('one decode query over the whole cache equals the reference (end-aligned causal)', async () => {
    const { input } = createWorkload('structured', { queryHeads: 4, kvHeads: 2, seqLength: 50, headDim: 16, seed: 4 });
    const step = { ...input, q: sliceSeq(input.q, 49, 50) };
    const ort = await OrtDenseAttention.create(ortShapeOf(step), { threads: 1 });
    expect(ort.graph).toBe('attention-opset23');
    expect(relativeL2Error(await ort.run(step), referenceAttention(step).output)).toBeLessThan(1e-5);
    await ort.release();
  });

  it('a causal chunk (Sq < Sk, Sq > 1) falls back to the end-aligned MatMul graph and says why', async () => {
    const { input } = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 40, headDim: 16, seed: 5 });
    const chunk = { ...input, q: sliceSeq(input.q, 30, 40) };
    const ort = await OrtDenseAttention.create(ortShapeOf(chunk), { threads: 1 });
    expect(ort.graph).toBe('matmul-softmax');
    expect(ort.fallbackReason).toMatch(/upper-left/);
    expect(relativeL2Error(await ort.run(chunk), referenceAttention(chunk).output)).toBeLessThan(1e-5);
    await ort.release();
  });
});
