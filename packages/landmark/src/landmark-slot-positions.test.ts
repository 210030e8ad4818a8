import { describe, expect, it } from 'vitest';
import { ConfigError, ShapeError, createWorkload, denseAttention, relativeL2Error, tensor, type AttentionInput, type Tensor } from '@sparse-attn/core';
import { decodeTokenByToken, describeConformance } from '@sparse-attn/core/testing';
import { landmarkGroupedAttention } from './grouped-softmax-attention.js';
import { landmarkMethod } from './landmark-attention.js';
import { landmarkSlotPositions } from './landmark-slot-positions.js';
import { RopeRotation } from './rope-rotation.js';

describeConformance({
  name: 'landmark (slot positions)',
  create: (config) => landmarkMethod.create(config),
  // The kit compares the full budget with dense attention over the inputs as given; with RoPE the
  // full budget is dense attention over the *rotated* q/k (tested below), so the kit's full-budget
  // case rotates no channel (`rotaryDims: 0`) and its sparse cases use the Llama RoPE.
  fullBudget: (seq) => ({ blockLength: seq, topK: 0, positions: 'slot', rotaryDims: 0 }),
  sparse: () => ({ blockLength: 3, topK: 2, positions: 'slot' }),
  needle: false, // untrained landmarks carry no signal (see landmark-attention.test.ts)
  invalidConfigs: [{ positions: 'rope' }, { positions: 'slot', ropeTheta: 0 }, { positions: 'slot', rotaryDims: 3 }, { ropeTheta: 500000 }, { rotaryDims: 4 }],
});

describe('slot positions, hand-worked (ℓ = 3, top-k 2)', () => {
  const options = { blockLength: 3, topK: 2 };

  it('4 complete blocks: prefix 4; older landmarks scored at 7, recent ones at their true 11 and 15; retrieved blocks packed from 4', () => {
    // prefix_len = 4·4 − (2+1)·4 = 4; mem_indices = [0, 0, 1, 2] → landmarks at 4 + {0,0,1,2}·4 + 3.
    expect(landmarkSlotPositions(4, [0, 3], options)).toEqual({
      retrieved: 2,
      landmarkScoring: [7, 7, 11, 15],
      retrievedBlocks: [
        { block: 0, positions: [4, 5, 6, 7] }, // slot 0, an older block: 4 + 0·4 + j
        { block: 3, positions: [12, 13, 14, 15] }, // slot 1, recent: 4 + 1·4 + j + 4 (its true positions)
      ],
    });
    expect(landmarkSlotPositions(4, [2, 1], options).retrievedBlocks).toEqual([
      { block: 1, positions: [4, 5, 6, 7] },
      { block: 2, positions: [12, 13, 14, 15] }, // recent, slot 1: moved one block past its true 8..11
    ]);
    expect(landmarkSlotPositions(4, [2, 3], options).retrievedBlocks.map((r) => r.positions[0])).toEqual([8, 12]);
  });

  it('5 complete blocks: prefix 8; blocks 0..2 share landmark position 11; recent block 4 keeps 16..19', () => {
    const layout = landmarkSlotPositions(5, [0, 4], options);
    expect(layout.landmarkScoring).toEqual([11, 11, 11, 15, 19]);
    expect(layout.retrievedBlocks.map((r) => r.positions)).toEqual([
      [8, 9, 10, 11],
      [16, 17, 18, 19],
    ]);
    expect(landmarkSlotPositions(5, [0, 1], options).retrievedBlocks.map((r) => r.positions[0])).toEqual([8, 12]);
  });

  it('no more blocks than top-k (2 blocks): every position is the true one', () => {
    expect(landmarkSlotPositions(2, [0, 1], options)).toEqual({
      retrieved: 2,
      landmarkScoring: [3, 7],
      retrievedBlocks: [
        { block: 0, positions: [0, 1, 2, 3] },
        { block: 1, positions: [4, 5, 6, 7] },
      ],
    });
    expect(() => landmarkSlotPositions(4, [0], options)).toThrow(ConfigError);
    expect(() => landmarkSlotPositions(4, [3, 3], options)).toThrow(ConfigError);
  });

  it('D = 2 (rotation by `position` radians): query 20 retrieves blocks 1 and 3 and weighs them by their slot-position landmarks', () => {
    // Five complete blocks, the query is the first token of block 5. q = (1, 0); every key is 0 except
    // L1 = 3·(cos 9, sin 9) at 7 and L3 = 2·(cos 5, sin 5) at 15. A score is 3·cos(P − 11) for L1 and
    // 2·cos(P − 15) for L3 at position P (query at 20). Scoring positions: L1 at 11 → 3, L3 at 15 → 2, the
    // zero landmarks 0 → top-2 = {1, 3}. Slots: block 1 → 8..11 (gate 3·cos 0 = 3), block 3 (recent, slot 1)
    // → 16..19 (gate 2·cos 4). Within-block softmax over zero keys is uniform, the query's own key scores 0:
    // w(20) = 1/Z, w(4..6) = e³/(3Z), w(12..14) = e^{2 cos 4}/(3Z), Z = 1 + e³ + e^{2 cos 4}.
    const seq = 21;
    const q = tensor([1, 1, seq, 2], Array.from({ length: seq }, () => [1, 0]).flat());
    const k = tensor([1, 1, seq, 2]);
    k.data.set([3 * Math.cos(9), 3 * Math.sin(9)], 7 * 2);
    k.data.set([2 * Math.cos(5), 2 * Math.sin(5)], 15 * 2);
    const v = identityValues(seq);
    const result = landmarkMethod.create({ blockLength: 3, topK: 2, positions: 'slot' }).prefill({ q, k, v, scale: 1 });
    const w = Array.from(result.output.data.subarray(20 * seq, 21 * seq));
    const gate3 = Math.exp(2 * Math.cos(4));
    const z = 1 + Math.exp(3) + gate3;
    const expected = new Array<number>(seq).fill(0);
    expected[20] = 1 / z;
    for (const j of [4, 5, 6]) expected[j] = Math.exp(3) / (3 * z);
    for (const j of [12, 13, 14]) expected[j] = gate3 / (3 * z);
    w.forEach((x, j) => expect(x, `weight of key ${j}`).toBeCloseTo(expected[j]!, 5));
    const selection = result.selection!;
    expect(Array.from(selection.indices.subarray(selection.offsets[20]!, selection.offsets[21]!))).toEqual([1, 3, 5]);
    expect(result.backend.kernel).toContain('slot-rope');

    // At true positions (absolute mode over q/k rotated at 0..20), L1 scores 3·cos(−4) < 0: block 1 is not read.
    const rope = new RopeRotation({ theta: 10000, rotaryDims: null });
    const absolute = landmarkMethod.create({ blockLength: 3, topK: 2 }).prefill({ q: rotateAtTruePositions(q, rope), k: rotateAtTruePositions(k, rope), v, scale: 1 });
    const wAbsolute = absolute.output.data.subarray(20 * seq, 21 * seq);
    expect(wAbsolute[4]! + wAbsolute[5]! + wAbsolute[6]!).toBe(0);
  });
});

describe('slot positions against a straightforward float64 implementation of spec §4.1', () => {
  /** Hugging Face rotate-half RoPE in float64. */
  function rope64(x: ArrayLike<number>, position: number, theta: number, rotaryDims: number): number[] {
    const out = Array.from(x);
    const half = rotaryDims / 2;
    for (let i = 0; i < half; i++) {
      const angle = position / Math.pow(theta, (2 * i) / rotaryDims);
      out[i] = x[i]! * Math.cos(angle) - x[i + half]! * Math.sin(angle);
      out[i + half] = x[i + half]! * Math.cos(angle) + x[i]! * Math.sin(angle);
    }
    return out;
  }

  /**
   * Every query as one decode step of the reference's LLaMA path: keys cached without RoPE; for a
   * query at t with full_len = c·(ℓ+1) complete blocks before it, top_k = min(K, c), prefix_len =
   * full_len − (top_k+1)(ℓ+1); landmark b scored at prefix_len + mem_index·(ℓ+1) + ℓ with
   * mem_index 0 for the c − top_k oldest blocks and 1..top_k for the rest; top_k blocks kept and
   * sorted; slot s's block gets RoPE at prefix_len + s·(ℓ+1) + j, plus ℓ+1 when it is one of the
   * top_k most recent; the incomplete tail and the query at true positions; grouped softmax with
   * the retrieved landmarks and the tail in the main group.
   */
  function reference(input: AttentionInput, blockLength: number, topK: number, theta: number, rotaryDims: number | null): Float64Array {
    const { q, k, v } = input;
    const [, queryHeads, seq, dim] = q.shape as [number, number, number, number];
    const kvHeads = k.shape[1]!;
    const valueDim = v.shape[3]!;
    const width = rotaryDims ?? dim;
    const span = blockLength + 1;
    const row = (t: Tensor, head: number, position: number, size: number) => t.data.subarray((head * seq + position) * size, (head * seq + position + 1) * size);
    const out = new Float64Array(queryHeads * seq * valueDim);
    for (let h = 0; h < queryHeads; h++) {
      const kh = Math.floor(h / (queryHeads / kvHeads));
      const key = (j: number, position: number) => rope64(row(k, kh, j, dim), position, theta, width);
      for (let t = 0; t < seq; t++) {
        const query = rope64(row(q, h, t, dim), t, theta, width);
        const score = (x: number[]) => x.reduce((s, value, c) => s + value * query[c]!, 0) / Math.sqrt(dim);
        const numMems = Math.floor(t / span);
        const fullLength = numMems * span;
        const retrieved = topK === 0 ? numMems : Math.min(topK, numMems);
        const prefixLength = fullLength - (retrieved + 1) * span;
        const memIndex = (b: number) => (b < numMems - retrieved ? 0 : b - (numMems - retrieved) + 1);
        const memScores = Array.from({ length: numMems }, (_, b) => score(key(b * span + blockLength, prefixLength + memIndex(b) * span + blockLength)));
        const selected = Array.from({ length: numMems }, (_, b) => b)
          .sort((a, b) => memScores[b]! - memScores[a]!)
          .slice(0, retrieved)
          .sort((a, b) => a - b);
        const main: { logit: number; members: { j: number; logit: number }[] }[] = [];
        for (let j = fullLength; j <= t; j++) if (j - fullLength < blockLength) main.push({ logit: score(key(j, j)), members: [{ j, logit: 0 }] });
        selected.forEach((b, s) => {
          const start = prefixLength + s * span + (b >= numMems - retrieved ? span : 0);
          const members = Array.from({ length: blockLength }, (_, j) => ({ j: b * span + j, logit: score(key(b * span + j, start + j)) }));
          main.push({ logit: score(key(b * span + blockLength, start + blockLength)), members });
        });
        const top = Math.max(...main.map((g) => g.logit));
        const z = main.reduce((s, g) => s + Math.exp(g.logit - top), 0);
        for (const group of main) {
          const innerTop = Math.max(...group.members.map((m) => m.logit));
          const innerZ = group.members.reduce((s, m) => s + Math.exp(m.logit - innerTop), 0);
          for (const member of group.members) {
            const w = (Math.exp(group.logit - top) / z) * (Math.exp(member.logit - innerTop) / innerZ);
            const value = row(v, kh, member.j, valueDim);
            for (let c = 0; c < valueDim; c++) out[(h * seq + t) * valueDim + c]! += w * value[c]!;
          }
        }
      }
    }
    return out;
  }

  const cases = [
    { topK: 2, theta: 10000, rotaryDims: null, seq: 41 },
    { topK: 0, theta: 10000, rotaryDims: null, seq: 30 },
    { topK: 3, theta: 50, rotaryDims: 4, seq: 45 },
  ] as const;
  for (const { topK, theta, rotaryDims, seq } of cases) {
    it(`every row, GQA 4:2, ℓ = 3, top-k ${topK}, θ = ${theta}, rotaryDims ${rotaryDims ?? 'all'}, ${seq} positions`, () => {
      const { input } = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: seq, headDim: 8, valueDim: 6, seed: 30 + topK });
      const got = landmarkMethod.create({ blockLength: 3, topK, positions: 'slot', ropeTheta: theta, rotaryDims }).prefill(input).output;
      const expected = tensor(got.shape, Float32Array.from(reference(input, 3, topK, theta, rotaryDims)));
      expect(relativeL2Error(got, expected)).toBeLessThan(1e-5);
    });
  }
});

describe('slot positions: decode, chunked prefill and full budget', () => {
  const rope = new RopeRotation({ theta: 10000, rotaryDims: null });

  it('token decode and chunked prefill (chunks of 5, crossing block boundaries) equal one prefill, GQA 4:2', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: 43, headDim: 8, seed: 12 });
    const method = landmarkMethod.create({ blockLength: 3, topK: 2, positions: 'slot' });
    const prefill = method.prefill(input).output;
    expect(relativeL2Error(decodeTokenByToken(method, input, 1), prefill)).toBeLessThan(1e-6);
    expect(relativeL2Error(decodeTokenByToken(method, input, 5), prefill)).toBeLessThan(1e-6);
  });

  it('retrieving every block puts every key at its true position: equals absolute positions over q/k rotated at 0..T−1', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: 37, headDim: 8, seed: 13 });
    const rotated = { ...input, q: rotateAtTruePositions(input.q, rope), k: rotateAtTruePositions(input.k, rope) };
    const absolute = landmarkMethod.create({ blockLength: 3, topK: 0 }).prefill(rotated).output;
    for (const topK of [0, 9, 50]) {
      const slot = landmarkMethod.create({ blockLength: 3, topK, positions: 'slot' }).prefill(input).output;
      expect(relativeL2Error(slot, absolute), `topK ${topK}`).toBeLessThan(1e-5);
    }
    // With fewer blocks than exist, the slot layout moves blocks: not the same as true positions.
    const sparseSlot = landmarkMethod.create({ blockLength: 3, topK: 2, positions: 'slot' }).prefill(input).output;
    const sparseTrue = landmarkMethod.create({ blockLength: 3, topK: 2 }).prefill(rotated).output;
    expect(relativeL2Error(sparseSlot, sparseTrue)).toBeGreaterThan(1e-3);
  });

  it('no landmark in the input (block longer than the sequence): dense attention over the rotated q/k, prefill and decode', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 4, kvHeads: 2, seqLength: 24, headDim: 8, seed: 14 });
    const dense = denseAttention({ ...input, q: rotateAtTruePositions(input.q, rope), k: rotateAtTruePositions(input.k, rope) }).output;
    const method = landmarkMethod.create({ blockLength: 24, topK: 0, positions: 'slot' });
    expect(relativeL2Error(method.prefill(input).output, dense)).toBeLessThan(1e-5);
    expect(relativeL2Error(decodeTokenByToken(method, input, 1), dense)).toBeLessThan(1e-5);
    expect(relativeL2Error(denseAttention(input).output, dense)).toBeGreaterThan(1e-3); // RoPE did change the scores
  });

  it('bad slot settings are typed errors up front', () => {
    const { input } = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 9, headDim: 4, seed: 15 });
    expect(() => landmarkMethod.create({ positions: 'slot', rotaryDims: 6 }).prefill(input)).toThrow(ConfigError);
    expect(() => landmarkGroupedAttention(input, { blockLength: 3, topK: 2, positions: 'slot' })).toThrow(ConfigError);
    expect(() => landmarkGroupedAttention(input, { blockLength: 3, topK: 2, positions: 'slot', rope, rotatedKeys: tensor([1, 1, 8, 4]) })).toThrow(ShapeError);
    const odd = createWorkload('gaussian', { queryHeads: 1, kvHeads: 1, seqLength: 4, headDim: 3, seed: 16 }).input;
    expect(() => landmarkMethod.create({ positions: 'slot' }).prefill(odd)).toThrow(ConfigError);
  });
});

/** Identity values (`v_j = e_j`): each output row is the attention weight vector. */
function identityValues(seq: number): Tensor {
  const data = new Float32Array(seq * seq);
  for (let j = 0; j < seq; j++) data[j * seq + j] = 1;
  return tensor([1, 1, seq, seq], data);
}

/** A copy of `[B, H, T, D]` with row t rotated at position t. */
function rotateAtTruePositions(t: Tensor, rope: RopeRotation): Tensor {
  const [batch, heads, seq, dim] = t.shape as [number, number, number, number];
  const out = new Float32Array(batch * heads * seq * dim);
  for (let bh = 0; bh < batch * heads; bh++) for (let s = 0; s < seq; s++) rope.rotate(t.data, (bh * seq + s) * dim, out, (bh * seq + s) * dim, dim, s);
  return tensor([batch, heads, seq, dim], out);
}
