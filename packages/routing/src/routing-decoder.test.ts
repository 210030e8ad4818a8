import { describe, expect, it } from 'vitest';
import { createWorkload, relativeL2Error, rowKeys, sliceSeq, sparseAttention } from '@sparse-attn/core';
import { decodeTokenByToken } from '@sparse-attn/core/testing';
import { causalRoutingMethod } from './causal-routing-method.js';
import { IncrementalRouter, type IncrementalRouterOptions } from './incremental-router.js';
import { routingMethod } from './routing-method.js';
import { sharedQKKeysAndValues } from './shared-qk.js';

const workload = (seq: number, seed: number) => createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: seq, headDim: 16, seed }).input;

describe('balanced routing decoder', () => {
  it('each step attends exactly to its reported keys: the routed clusters, sinks, local window and itself, never the future', () => {
    const seq = 200;
    const prompt = 150;
    const input = workload(seq, 31);
    const method = routingMethod.create({ clusters: 10, sinkTokens: 1, localWindow: 2 });
    const decoder = method.createDecoder({ batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 });
    decoder.step({ q: sliceSeq(input.q, 0, prompt), k: sliceSeq(input.k, 0, prompt), v: sliceSeq(input.v, 0, prompt) });
    let attended = 0;
    for (let t = prompt; t < seq; t++) {
      const result = decoder.step({ q: sliceSeq(input.q, t, t + 1), k: sliceSeq(input.k, t, t + 1), v: sliceSeq(input.v, t, t + 1) });
      expect(decoder.length).toBe(t + 1);
      const visible = { q: sliceSeq(input.q, t, t + 1), k: sliceSeq(input.k, 0, t + 1), v: sliceSeq(input.v, 0, t + 1) };
      const exact = sparseAttention(visible, result.selection!);
      expect(relativeL2Error(result.output, exact.output)).toBeLessThan(1e-6);
      for (let h = 0; h < 4; h++) {
        const keys = rowKeys(result.selection!, h);
        expect(Math.max(...keys)).toBe(t);
        expect(keys).toContain(0);
        expect(keys).toContain(t - 1);
        attended += keys.length;
      }
    }
    // Two of ten clusters plus three fixed keys: far fewer than the ~175 keys dense decode reads.
    expect(attended / (4 * (seq - prompt))).toBeLessThan(0.5 * 175);
  });

  it('shared-QK decode attends over the normalised queries and applies the self rule', () => {
    const input = workload(90, 33);
    const method = routingMethod.create({ sharedQK: true, clusters: 6, sinkTokens: 0, local: 'uncovered' });
    const decoder = method.createDecoder({ batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 });
    decoder.step({ q: sliceSeq(input.q, 0, 60), k: sliceSeq(input.k, 0, 60), v: sliceSeq(input.v, 0, 60) });
    const shared = sharedQKKeysAndValues(input.q, input.v, 'l2');
    for (let t = 60; t < 90; t++) {
      const result = decoder.step({ q: sliceSeq(input.q, t, t + 1), k: sliceSeq(input.k, t, t + 1), v: sliceSeq(input.v, t, t + 1) });
      const exact = sparseAttention({ q: sliceSeq(input.q, t, t + 1), k: sliceSeq(shared.k, 0, t + 1), v: sliceSeq(shared.v, 0, t + 1) }, result.selection!);
      expect(relativeL2Error(result.output, exact.output)).toBeLessThan(1e-6);
      for (let h = 0; h < 4; h++) {
        const keys = rowKeys(result.selection!, h);
        if (keys.length > 1) expect(keys).not.toContain(t);
      }
    }
  });

  it('reset forgets the sequence: a second run equals a fresh decoder', () => {
    const input = workload(80, 35);
    const method = routingMethod.create({ clusters: 5 });
    const reused = method.createDecoder({ batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 });
    decodeTokenByToken(method, workload(80, 36));
    const run = () => [reused.step({ q: sliceSeq(input.q, 0, 50), k: sliceSeq(input.k, 0, 50), v: sliceSeq(input.v, 0, 50) }), reused.step({ q: sliceSeq(input.q, 50, 80), k: sliceSeq(input.k, 50, 80), v: sliceSeq(input.v, 50, 80) })];
    run();
    reused.reset();
    expect(reused.length).toBe(0);
    const [, second] = run();
    const fresh = method.createDecoder({ batch: 1, queryHeads: 4, kvHeads: 2, headDim: 16 });
    fresh.step({ q: sliceSeq(input.q, 0, 50), k: sliceSeq(input.k, 0, 50), v: sliceSeq(input.v, 0, 50) });
    const expected = fresh.step({ q: sliceSeq(input.q, 50, 80), k: sliceSeq(input.k, 50, 80), v: sliceSeq(input.v, 50, 80) });
    expect(Array.from(second!.output.data)).toEqual(Array.from(expected.output.data));
  });
});

describe('causal routing decoder', () => {
  it('chunked decode (7 tokens per step) equals one prefill, with refits inside chunks', () => {
    const input = workload(150, 37);
    const method = causalRoutingMethod.create({ calibrationTokens: 10, localWindow: 3 });
    const prefill = method.prefill(input);
    expect(relativeL2Error(decodeTokenByToken(method, input, 7), prefill.output)).toBeLessThan(1e-6);
    expect(prefill.diagnostics!['clusters']).toBeGreaterThan(1);
  });

  it('shared-QK causal routing: decode equals prefill', () => {
    const input = workload(70, 39);
    const method = causalRoutingMethod.create({ sharedQK: true, calibrationTokens: 8, localWindow: 0, sinkTokens: 0 });
    expect(relativeL2Error(decodeTokenByToken(method, input), method.prefill(input).output)).toBeLessThan(1e-6);
  });
});

describe('IncrementalRouter', () => {
  const options: IncrementalRouterOptions = {
    dim: 4, normalization: 'l2', keyClusters: 1, clusters: 2, calibrationTokens: 4, refit: 'never',
    kmeansIterations: 5, kmeansSampleSize: 0, seed: 0, emaDecay: null,
  };
  // Two clear directions, then a fifth key near the first direction.
  const keys = Float32Array.from([1, 0, 0, 0, 0.9, 0.1, 0, 0, 0, 0, 1, 0, 0, 0.1, 0.9, 0, 0.6, 0, 0, 0.8]);

  it('fits after calibration, routes later keys to their nearest centroid, EMA moves only that centroid', () => {
    const frozen = new IncrementalRouter(options);
    const online = new IncrementalRouter({ ...options, emaDecay: 0.5 });
    for (const router of [frozen, online]) for (let t = 0; t < 5; t++) router.addKey(keys, 0);
    expect(frozen.calibrated).toBe(true);
    expect(frozen.clusters).toBe(2);
    const fitted = frozen.centroids!;
    const near = fitted[0]! > fitted[2]! ? 0 : 1;
    const far = 1 - near;
    expect(Array.from(frozen.members(near).list.subarray(0, frozen.members(near).size))).toEqual([0, 1, 4]);
    const moved = online.centroids!;
    expect(Array.from(moved.subarray(far * 4, far * 4 + 4))).toEqual(Array.from(fitted.subarray(far * 4, far * 4 + 4)));
    // The updated centroid turned toward the new key's direction (0.6, 0, 0, 0.8) and stayed unit.
    expect(moved[near * 4 + 3]!).toBeGreaterThan(fitted[near * 4 + 3]! + 0.1);
    expect(Math.hypot(...moved.subarray(near * 4, near * 4 + 4))).toBeCloseTo(1, 6);
  });

  it('with keyClusters 2 every key joins two clusters; queries route to their top-r', () => {
    const router = new IncrementalRouter({ ...options, keyClusters: 2 });
    for (let t = 0; t < 5; t++) router.addKey(keys, 0);
    expect(router.members(0).size + router.members(1).size).toBe(10);
    const out = new Int32Array(2);
    expect(router.routeQuery(Float32Array.from([0, 0, 1, 0]), 0, 2, out)).toBe(2);
    expect(new Set(out).size).toBe(2);
  });
});
