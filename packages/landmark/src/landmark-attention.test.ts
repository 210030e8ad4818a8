import { describe, expect, it } from 'vitest';
import { ConfigError, Rng, attentionMassRecall, createWorkload, needleRetrieval, relativeL2Error, tensor, validateSelection, type Tensor } from '@sparse-attn/core';
import { decodeTokenByToken, describeConformance } from '@sparse-attn/core/testing';
import { insertLandmarks, isLandmarkPosition, landmarkGroupedAttention, pointLandmarkAt, removeLandmarkRows } from './grouped-softmax-attention.js';
import { landmarkMethod } from './landmark-attention.js';

describeConformance({
  name: 'landmark',
  create: (config) => landmarkMethod.create(config),
  // With a block longer than the sequence no landmark exists: only the main group, i.e. dense causal attention.
  fullBudget: (seq) => ({ blockLength: seq, topK: 0 }),
  sparse: () => ({ blockLength: 3, topK: 2 }),
  // Untrained (random) keys carry no landmark signal, so the kit's needle claim cannot hold; below:
  // the needle with untrained landmarks (fails) and with its block's landmark pointing at it (found).
  // The kit checks the reported blocks' layout and causality; `selectionWeighting: 'grouped'`
  // exempts the output from "equals exact attention over the selection", which it is not.
  needle: false,
  invalidConfigs: [{ blockLength: 0 }, { topK: -2 }, { topk: 3 }],
});

/** `[1, 1, T, 1]` keys/queries from plain numbers (D = 1, scale 1: scores are q·k). */
function column(values: readonly number[]): Tensor {
  return tensor([1, 1, values.length, 1], values);
}

/** Identity values (`v_j = e_j`): each output row is the attention weight vector. */
function identityValues(seq: number): Tensor {
  const data = new Float32Array(seq * seq);
  for (let j = 0; j < seq; j++) data[j * seq + j] = 1;
  return tensor([1, 1, seq, seq], data);
}

function weights(result: { output: Tensor }, seq: number, row: number): number[] {
  return Array.from(result.output.data.subarray(row * seq, (row + 1) * seq));
}

describe('grouped softmax, hand-worked', () => {
  it('ℓ = 1: the query shares the main softmax with landmark 1, which gates block 0', () => {
    // keys: k0 = 5 (ordinary, block 0), k1 = ln 3 (landmark of block 0), k2 = 0 (the query's own token).
    // main = softmax{k2 = 0, L0 = ln 3} = {1/4, 3/4}; block 0 holds one token, so w0 = 3/4, w2 = 1/4.
    const k = column([5, Math.log(3), 0]);
    const q = column([1, 1, 1]);
    const result = landmarkGroupedAttention({ q, k, v: identityValues(3), scale: 1 }, { blockLength: 1, topK: 0 });
    const w = weights(result, 3, 2);
    expect(w[0]).toBeCloseTo(0.75, 6);
    expect(w[1]).toBe(0);
    expect(w[2]).toBeCloseTo(0.25, 6);
  });

  it('ℓ = 2: the landmark mass is split by the within-block softmax', () => {
    // keys: block 0 = {0, ln 2}, landmark ln 3; query token k3 = 0.
    // main = {k3: 1/4, L0: 3/4}; within block 0 softmax{0, ln 2} = {1/3, 2/3} → w = [1/4, 1/2, 0, 1/4].
    const k = column([0, Math.log(2), Math.log(3), 0]);
    const q = column([1, 1, 1, 1]);
    const result = landmarkGroupedAttention({ q, k, v: identityValues(4), scale: 1 }, { blockLength: 2, topK: 0 });
    const w = weights(result, 4, 3);
    expect(w[0]).toBeCloseTo(0.25, 6);
    expect(w[1]).toBeCloseTo(0.5, 6);
    expect(w[2]).toBe(0);
    expect(w[3]).toBeCloseTo(0.25, 6);
  });

  it('spec §3.3 case (ℓ = 3, 3 blocks + 2 tokens): rows sum to 1, landmarks get 0, last row matches the closed form, landmark query 7 skips itself', () => {
    const seq = 14;
    const blockLength = 3;
    const rng = new Rng(33);
    const dim = 4;
    const q = tensor([1, 1, seq, dim], rng.fillNormal(new Float32Array(seq * dim)));
    const k = tensor([1, 1, seq, dim], rng.fillNormal(new Float32Array(seq * dim)));
    const scale = 1 / Math.sqrt(dim);
    const result = landmarkGroupedAttention({ q, k, v: identityValues(seq) }, { blockLength, topK: 0 });
    for (let t = 0; t < seq; t++) {
      const w = weights(result, seq, t);
      expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      for (let j = 0; j < seq; j++) {
        if (isLandmarkPosition(j, blockLength)) expect(w[j]).toBe(0);
        if (j > t) expect(w[j]).toBe(0);
      }
    }
    // Closed form for the last query (t = 13, block 3 = {12, 13}, landmarks 3, 7, 11), in float64.
    const s = (t: number, j: number) => {
      let x = 0;
      for (let c = 0; c < dim; c++) x += q.data[t * dim + c]! * k.data[j * dim + c]!;
      return x * scale;
    };
    const t = 13;
    const main = [12, 13, 3, 7, 11].map((j) => Math.exp(s(t, j)));
    const z = main.reduce((a, b) => a + b, 0);
    const expected = new Array<number>(seq).fill(0);
    expected[12] = main[0]! / z;
    expected[13] = main[1]! / z;
    for (const [n, block] of [0, 1, 2].entries()) {
      const members = [0, 1, 2].map((x) => block * 4 + x);
      const inner = members.map((j) => Math.exp(s(t, j)));
      const zi = inner.reduce((a, b) => a + b, 0);
      for (const [m, j] of members.entries()) expected[j] = (main[2 + n]! / z) * (inner[m]! / zi);
    }
    const last = weights(result, seq, t);
    for (let j = 0; j < seq; j++) expect(Math.abs(last[j]! - expected[j]!)).toBeLessThan(1e-6);
    // Landmark query 7 (closes block 1): block 0 through landmark 3, its own tokens 4..6, not itself.
    const w7 = weights(result, seq, 7);
    for (const j of [0, 1, 2, 4, 5, 6]) expect(w7[j]!).toBeGreaterThan(0);
    for (const j of [3, 7]) expect(w7[j]).toBe(0);
  });

  it('empty or vanishing groups give no NaN', () => {
    // Landmark 2 scores −1e4, so block 0 gets exactly zero mass; a score of 1e3 inside it does not overflow.
    const k = column([1e3, 5, -1e4, 80, 1, 0]);
    const q = column([1, 1, 1, 1, 1, 1]);
    const result = landmarkGroupedAttention({ q, k, v: identityValues(6), scale: 1 }, { blockLength: 2, topK: 0 });
    for (const x of result.output.data) expect(Number.isFinite(x)).toBe(true);
    const w = weights(result, 6, 4);
    expect(w[0]! + w[1]!).toBe(0);
    expect(w[3]! + w[4]!).toBeCloseTo(1, 6);
  });

  it('rejects non-causal input and bad options with ConfigError', () => {
    const k = column([0, 1, 2]);
    expect(() => landmarkGroupedAttention({ q: k, k, v: k, causal: false }, { blockLength: 1, topK: 0 })).toThrow(ConfigError);
    expect(() => landmarkGroupedAttention({ q: k, k, v: k }, { blockLength: 0, topK: 0 })).toThrow(ConfigError);
  });
});

describe('landmark retrieval inference', () => {
  /** 9 blocks of ℓ = 4 tokens + a 2-token tail; block `target`'s landmark key points along the query. */
  function constructed(target: number) {
    const blockLength = 4;
    const dim = 8;
    const rng = new Rng(7 + target);
    const ordinary = 9 * blockLength + 2;
    const kRaw = tensor([1, 2, ordinary, dim], rng.fillNormal(new Float32Array(2 * ordinary * dim), 0.3));
    const landmarkKey = new Float32Array(2 * dim); // a neutral landmark for every block…
    const k = insertLandmarks(kRaw, landmarkKey, blockLength);
    const seq = k.shape[2]!;
    const direction = rng.fillNormal(new Float32Array(dim));
    // …except the target's, which aligns with the last query of both heads.
    for (let h = 0; h < 2; h++) {
      const at = (h * seq + target * (blockLength + 1) + blockLength) * dim;
      for (let c = 0; c < dim; c++) k.data[at + c] = 4 * direction[c]!;
    }
    const q = tensor([1, 2, seq, dim], rng.fillNormal(new Float32Array(2 * seq * dim), 0.3));
    for (let h = 0; h < 2; h++) for (let c = 0; c < dim; c++) q.data[(h * seq + seq - 1) * dim + c] = direction[c]!;
    const v = tensor([1, 2, seq, seq]);
    for (let h = 0; h < 2; h++) for (let j = 0; j < seq; j++) v.data[(h * seq + j) * seq + j] = 1;
    return { q, k, v, seq, blockLength };
  }

  for (const target of [0, 3, 8]) {
    it(`top-1 retrieval reads the constructed block ${target} and nothing else outside the current block`, () => {
      const { q, k, v, seq, blockLength } = constructed(target);
      const result = landmarkMethod.create({ blockLength, topK: 1 }).prefill({ q, k, v });
      for (let h = 0; h < 2; h++) {
        const w = Array.from(result.output.data.subarray((h * seq + seq - 1) * seq, (h * seq + seq) * seq));
        const span = blockLength + 1;
        const inTarget = w.slice(target * span, target * span + blockLength).reduce((a, b) => a + b, 0);
        const inCurrent = w.slice(9 * span).reduce((a, b) => a + b, 0);
        expect(inTarget).toBeGreaterThan(0.5);
        expect(inTarget + inCurrent).toBeCloseTo(1, 5);
      }
    });
  }

  it('top-k covering every block equals the full grouped softmax; fewer blocks differ', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: 61, headDim: 8, seed: 4 });
    const full = landmarkMethod.create({ blockLength: 4, topK: 0 }).prefill(input);
    const covering = landmarkMethod.create({ blockLength: 4, topK: 12 }).prefill(input);
    expect(relativeL2Error(covering.output, full.output)).toBeLessThan(1e-6);
    const sparse = landmarkMethod.create({ blockLength: 4, topK: 2 }).prefill(input);
    expect(relativeL2Error(sparse.output, full.output)).toBeGreaterThan(1e-3);
    expect(sparse.diagnostics?.['meanRetrievedBlocks']).toBeLessThanOrEqual(2);
  });

  it('chunked prefill (chunks of 5) equals one prefill', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 43, headDim: 8, seed: 5 });
    const method = landmarkMethod.create({ blockLength: 3, topK: 2 });
    const chunked = decodeTokenByToken(method, input, 5);
    expect(relativeL2Error(chunked, method.prefill(input).output)).toBeLessThan(1e-6);
  });

  it('insertLandmarks / removeLandmarkRows round-trip', () => {
    const t = tensor([1, 1, 7, 2], Array.from({ length: 14 }, (_, i) => i));
    const withLandmarks = insertLandmarks(t, Float32Array.from([-1, -1]), 3);
    expect(withLandmarks.shape).toEqual([1, 1, 9, 2]);
    expect(Array.from(withLandmarks.data.subarray(6, 8))).toEqual([-1, -1]);
    expect(Array.from(removeLandmarkRows(withLandmarks, 3).data)).toEqual(Array.from(t.data));
  });
});

describe('landmark reports the blocks it read', () => {
  it("the bench's `all` point at S = 64 (ℓ = 50) reports its selection: block 0, then blocks 0 and 1 after the landmark", () => {
    const { input } = createWorkload('structured', { queryHeads: 2, kvHeads: 1, seqLength: 64, headDim: 16, seed: 3 });
    const all = landmarkMethod.budgets!(64).find((b) => b.label === 'all')!;
    const method = landmarkMethod.create(all.config);
    expect(method.capabilities.selection).toBe('block');
    expect(method.capabilities.selectionWeighting).toBe('grouped');
    const result = method.prefill(input);
    const selection = result.selection!;
    expect(selection, 'landmark returned no selection').toBeDefined();
    validateSelection(selection);
    expect(selection.blockSize).toBe(51);
    for (let row = 0; row < 2 * 64; row++) {
      const blocks = Array.from(selection.indices.subarray(selection.offsets[row]!, selection.offsets[row + 1]!));
      expect(blocks).toEqual(row % 64 <= 50 ? [0] : [0, 1]);
    }
    const recall = attentionMassRecall(input, selection);
    expect(Number.isFinite(recall)).toBe(true);
    expect(recall).toBeGreaterThan(0.9);
    // The decoder reports the same blocks for its step.
    const decoded = decodeTokenByToken(method, input, 64);
    expect(relativeL2Error(decoded, result.output)).toBeLessThan(1e-6);
  });

  it('every key with a nonzero weight lies in a reported block (GQA, retrieval of 2 of 7 blocks)', () => {
    const seq = 40;
    const blockLength = 4;
    const rng = new Rng(21);
    const q = tensor([1, 4, seq, 8], rng.fillNormal(new Float32Array(4 * seq * 8)));
    const k = tensor([1, 2, seq, 8], rng.fillNormal(new Float32Array(2 * seq * 8)));
    const v = tensor([1, 2, seq, seq]);
    for (let h = 0; h < 2; h++) for (let j = 0; j < seq; j++) v.data[(h * seq + j) * seq + j] = 1;
    const result = landmarkMethod.create({ blockLength, topK: 2 }).prefill({ q, k, v });
    const selection = result.selection!;
    for (let row = 0; row < 4 * seq; row++) {
      const read = new Set<number>();
      for (const block of selection.indices.subarray(selection.offsets[row]!, selection.offsets[row + 1]!)) for (let j = 0; j <= blockLength; j++) read.add(block * (blockLength + 1) + j);
      expect(selection.offsets[row + 1]! - selection.offsets[row]!).toBeLessThanOrEqual(3);
      const w = result.output.data.subarray(row * seq, (row + 1) * seq);
      for (let j = 0; j < seq; j++) if (w[j] !== 0) expect(read.has(j), `row ${row} reads key ${j} outside its selection`).toBe(true);
    }
  });
});

describe('grouped softmax against a straightforward float64 implementation of spec §3.2 / §4', () => {
  /** Every row, written from the spec's closed form: main softmax over current tokens + retrieved landmarks, blocks by within-softmax. */
  function reference(q: Tensor, k: Tensor, v: Tensor, blockLength: number, topK: number): Float64Array {
    const [, queryHeads, seq, dim] = q.shape as [number, number, number, number];
    const kvHeads = k.shape[1]!;
    const valueDim = v.shape[3]!;
    const span = blockLength + 1;
    const out = new Float64Array(queryHeads * seq * valueDim);
    for (let h = 0; h < queryHeads; h++) {
      const kh = Math.floor(h / (queryHeads / kvHeads));
      const s = (t: number, j: number) => {
        let x = 0;
        for (let c = 0; c < dim; c++) x += q.data[(h * seq + t) * dim + c]! * k.data[(kh * seq + j) * dim + c]!;
        return x / Math.sqrt(dim);
      };
      for (let t = 0; t < seq; t++) {
        const current = Math.floor(t / span);
        let blocks = Array.from({ length: current }, (_, b) => b);
        if (topK > 0 && blocks.length > topK) blocks = blocks.sort((a, b) => s(t, b * span + blockLength) - s(t, a * span + blockLength) || a - b).slice(0, topK);
        const own = [];
        for (let j = current * span; j <= Math.min(t, current * span + blockLength - 1); j++) own.push(j);
        const mainLogits = [...own.map((j) => s(t, j)), ...blocks.map((b) => s(t, b * span + blockLength))];
        const m = Math.max(...mainLogits);
        const z = mainLogits.reduce((a, x) => a + Math.exp(x - m), 0);
        const weights = new Map<number, number>();
        own.forEach((j, n) => weights.set(j, Math.exp(mainLogits[n]! - m) / z));
        blocks.forEach((b, n) => {
          const gate = Math.exp(mainLogits[own.length + n]! - m) / z;
          const members = Array.from({ length: blockLength }, (_, x) => b * span + x);
          const inner = members.map((j) => s(t, j));
          const mi = Math.max(...inner);
          const zi = inner.reduce((a, x) => a + Math.exp(x - mi), 0);
          members.forEach((j, x) => weights.set(j, gate * (Math.exp(inner[x]! - mi) / zi)));
        });
        for (const [j, w] of weights) for (let c = 0; c < valueDim; c++) out[(h * seq + t) * valueDim + c]! += w * v.data[(kh * seq + j) * valueDim + c]!;
      }
    }
    return out;
  }

  for (const topK of [0, 2]) {
    it(`every row, GQA 4:2, ℓ = 3, topK = ${topK}`, () => {
      const { input } = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: 29, headDim: 8, valueDim: 6, seed: 8 + topK });
      const got = landmarkMethod.create({ blockLength: 3, topK }).prefill(input).output.data;
      const expected = reference(input.q, input.k, input.v, 3, topK);
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < expected.length; i++) {
        diff += (got[i]! - expected[i]!) ** 2;
        norm += expected[i]! ** 2;
      }
      expect(Math.sqrt(diff / norm)).toBeLessThan(1e-6);
    });
  }
});

describe('needle: the gate needs a trained landmark (why the bench rows show needleDominated 0)', () => {
  const seq = 512;
  const blockLength = 50;
  /** The needle workload as the bench feeds it, and the same keys with the needle block's landmark key set to the needle key (what training teaches). */
  function needleInputs() {
    const w = createWorkload('needle', { queryHeads: 4, kvHeads: 2, seqLength: seq, headDim: 64, needleDepth: 0.3, needleQueries: 4, seed: 77 });
    const k = pointLandmarkAt(w.input.k, w.needle!.position, blockLength);
    return { untrained: w.input, trained: { ...w.input, k }, needle: w.needle! };
  }

  it('untrained landmarks (the workload key in the landmark slot): the needle block is not retrieved and its value does not dominate', () => {
    const { untrained, needle } = needleInputs();
    const result = landmarkMethod.create({ blockLength, topK: 4 }).prefill(untrained);
    const found = needleRetrieval(untrained, needle, result.output, result.selection);
    expect(found.dominated).toBeLessThan(0.25);
  });

  it('a landmark key that points at its block (as after training): the needle block is retrieved and its value dominates', () => {
    const { trained, needle } = needleInputs();
    const result = landmarkMethod.create({ blockLength, topK: 4 }).prefill(trained);
    const found = needleRetrieval(trained, needle, result.output, result.selection);
    expect(found.selected).toBe(1);
    expect(found.dominated).toBeGreaterThanOrEqual(0.75);
  });
});
