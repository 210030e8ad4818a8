import { describe, expect, it } from 'vitest';
import { uniformStructFields } from '@sparse-attn/backend-gpu';
import { createWorkload, sliceSeq, validateAttentionInput, type AttentionInput } from '@sparse-attn/core';
import { hipConfigSchema, hipMethod } from '../hip-attention.js';
import { landmarkConfigSchema, landmarkMethod } from '../landmark-attention.js';
import { landmarkRetrievalConfigSchema, landmarkRetrievalMethod } from '../landmark-retrieval.js';
import { hipRowStride, hipTreeBytesPerSlot } from './gpu-hip.js';
import { landmarkPairCount, landmarkRowStride, landmarkScratchBytesPerSlot } from './gpu-landmark.js';
import { retrievalPairCount, retrievalScratchBytesPerSlot } from './gpu-landmark-retrieval.js';
import { GROUPED_SOFTMAX_PARAMS, groupedSoftmaxWgsl } from './grouped-softmax-wgsl.js';
import { LANDMARK_OWN_BLOCK_PARAMS, landmarkOwnBlockWgsl } from './landmark-own-block-wgsl.js';
import {
  LANDMARK_ENTRY_PARAMS,
  LANDMARK_FREE_COPY_PARAMS,
  LANDMARK_SELECTED_COPY_PARAMS,
  landmarkEntryRowsWgsl,
  landmarkFreeCopyWgsl,
  landmarkGateFoldWgsl,
  landmarkSelectedCopyWgsl,
} from './landmark-block-merge-wgsl.js';
import { HIP_BOUND_TREE_PARAMS, hipBoundTreeWgsl } from './hip-bound-tree-wgsl.js';
import { HIP_SEARCH_PARAMS, hipSearchWgsl } from './hip-search-wgsl.js';
import { CANDIDATE_SCORE_PARAMS, candidateScoreDecodeWgsl, candidateScoreWgsl } from './candidate-score-wgsl.js';
import { LANDMARK_DECODE_PARTS_PARAMS, landmarkDecodePartsWgsl } from './landmark-decode-parts-wgsl.js';
import { LANDMARK_TOP_K_PARAMS, landmarkTopKRowsWgsl, landmarkTopKWgsl } from './landmark-top-k-wgsl.js';
import { RETRIEVAL_TOP_K_PARAMS, retrievalTopKRowsWgsl, retrievalTopKWgsl } from './retrieval-top-k-wgsl.js';

// CPU-side parts of the GPU path: the geometry the GPU methods compute without reading the
// selection back (pairs, densities, row strides, scratch sizes) against the CPU methods.

function input(seq: number, querySeq?: number): AttentionInput {
  const w = createWorkload('gaussian', { batch: 1, queryHeads: 4, kvHeads: 2, seqLength: seq, headDim: 8, seed: seq });
  return { ...w.input, q: querySeq === undefined ? w.input.q : sliceSeq(w.input.q, seq - querySeq, seq), causal: true };
}

describe('GPU geometry agrees with the CPU methods', () => {
  it.each([
    [{ blockSize: 8, topK: 2 }, 100, undefined],
    [{ blockSize: 16, topK: 0 }, 77, 5],
    [{ blockSize: 4, topK: 30 }, 60, undefined],
  ])('landmark-retrieval pairs and row lengths %j, S %i', (config, seq, querySeq) => {
    const x = input(seq, querySeq);
    const cpu = landmarkRetrievalMethod.create(config).prefill(x);
    const resolved = landmarkRetrievalConfigSchema.parse(config);
    expect(retrievalPairCount(validateAttentionInput(x), resolved)).toBe(cpu.stats.pairs);
    const s = cpu.selection!;
    for (let r = 0; r + 1 < s.offsets.length; r++) expect(s.offsets[r + 1]! - s.offsets[r]!).toBeLessThanOrEqual(resolved.topK + 2);
  });

  it.each([
    [{ blockLength: 7, topK: 2 }, 100, undefined],
    [{ blockLength: 5, topK: 0 }, 77, 5],
    [{}, 1, undefined],
  ])('landmark pairs, diagnostics and row stride %j, S %i', (config, seq, querySeq) => {
    const x = input(seq, querySeq);
    const cpu = landmarkMethod.create(config).prefill(x);
    const resolved = landmarkConfigSchema.parse(config);
    const d = validateAttentionInput(x);
    const counted = landmarkPairCount(d, resolved);
    expect(counted.pairs).toBe(cpu.stats.pairs);
    expect(counted.landmarks).toBe(cpu.diagnostics!['landmarksScored']);
    const s = cpu.selection!;
    for (let r = 0; r + 1 < s.offsets.length; r++) expect(s.offsets[r + 1]! - s.offsets[r]!).toBeLessThanOrEqual(landmarkRowStride(resolved, d));
  });

  it.each([
    [{ topK: 16, chunkSize: 2, queryBlockSize: 8, queryStride: 2, sinkTokens: 2, windowTokens: 8 }, 150],
    [{ topK: 10, chunkSize: 3, queryBlockSize: 5, queryStride: 3, sinkTokens: 0, windowTokens: 6 }, 131],
    [{}, 300],
  ])('hip rows fit the GPU row stride %j, S %i', (config, seq) => {
    const s = hipMethod.create(config).prefill(input(seq)).selection!;
    const stride = hipRowStride(hipConfigSchema.parse(config));
    for (let r = 0; r + 1 < s.offsets.length; r++) expect(s.offsets[r + 1]! - s.offsets[r]!).toBeLessThanOrEqual(stride);
  });

  it('scratch per KV slot stays 16 MiB at S = 64k, D = 128 (never rows × keys)', () => {
    const d = { querySeq: 65536, keySeq: 65536, headDim: 128, groupSize: 1 };
    expect(retrievalScratchBytesPerSlot(d, landmarkRetrievalConfigSchema.parse({}))).toBeLessThanOrEqual(16 << 20);
    expect(landmarkScratchBytesPerSlot(d, landmarkConfigSchema.parse({}))).toBeLessThanOrEqual(16 << 20);
    expect(hipTreeBytesPerSlot(hipConfigSchema.parse({}), d)).toBe(0);
    // 'bound': the range-bound tree below the root, 2 · chunks − 2 nodes of 2 · D floats (64 MiB at chunk 2).
    expect(hipTreeBytesPerSlot(hipConfigSchema.parse({ representative: 'bound' }), d)).toBe((2 * 32768 - 2) * 2 * 128 * 4);
  });
});

describe('WGSL generators', () => {
  it('emit one compute entry point without infinity literals for every variant', () => {
    const sources = [
      ...(['quest', 'mean'] as const).flatMap((representative) =>
        (['sum-probability', 'max-score'] as const).flatMap((groupReduce) => {
          const o = { groupReduce, maxPicks: representative === 'quest' ? 0 : 3, groupSize: representative === 'quest' ? 1 : 4 };
          return [retrievalTopKWgsl(o), retrievalTopKRowsWgsl(o)];
        }),
      ),
      candidateScoreWgsl({ headDim: 16, operand: 'quest' }),
      candidateScoreWgsl({ headDim: 24, operand: 'dot' }),
      candidateScoreDecodeWgsl({ headDim: 16, operand: 'quest' }),
      candidateScoreDecodeWgsl({ headDim: 18, operand: 'dot' }),
      landmarkDecodePartsWgsl({ headDim: 16, valueDim: 12, blockLength: 70 }),
      hipSearchWgsl({ headDim: 16, keep: 8, scoringQueries: 4 }),
      hipSearchWgsl({ headDim: 18, keep: 8, scoringQueries: 9 }),
      hipSearchWgsl({ headDim: 16, keep: 8, scoringQueries: 4, representative: 'bound' }),
      hipBoundTreeWgsl({ headDim: 16 }),
      landmarkTopKWgsl({ maxPicks: 4 }),
      landmarkTopKRowsWgsl({ maxPicks: 4 }),
      groupedSoftmaxWgsl({ headDim: 16, valueDim: 130, blockLength: 50 }),
      landmarkFreeCopyWgsl(),
      landmarkSelectedCopyWgsl(),
      landmarkOwnBlockWgsl({ headDim: 16, valueDim: 130, blockLength: 50 }),
      landmarkEntryRowsWgsl(),
      landmarkGateFoldWgsl({ headDim: 16, valueDim: 12 }),
    ];
    for (const code of sources) {
      expect(code.match(/@compute/g)).toHaveLength(1);
      expect(code).toContain('fn main(');
      expect(code).not.toMatch(/\binf\b|Infinity|undefined|NaN/);
    }
  });

  it('declare the uniform Params struct of their PARAMS list (field for field, a multiple of 16 bytes)', () => {
    const kernels: [readonly string[], string[]][] = [
      [GROUPED_SOFTMAX_PARAMS, [groupedSoftmaxWgsl({ headDim: 16, valueDim: 12, blockLength: 7 })]],
      [LANDMARK_OWN_BLOCK_PARAMS, [landmarkOwnBlockWgsl({ headDim: 16, valueDim: 12, blockLength: 7 })]],
      [LANDMARK_FREE_COPY_PARAMS, [landmarkFreeCopyWgsl()]],
      [LANDMARK_SELECTED_COPY_PARAMS, [landmarkSelectedCopyWgsl()]],
      [LANDMARK_ENTRY_PARAMS, [landmarkEntryRowsWgsl(), landmarkGateFoldWgsl({ headDim: 16, valueDim: 12 })]],
      [HIP_BOUND_TREE_PARAMS, [hipBoundTreeWgsl({ headDim: 16 })]],
      [HIP_SEARCH_PARAMS, [hipSearchWgsl({ headDim: 16, keep: 8, scoringQueries: 4 }), hipSearchWgsl({ headDim: 18, keep: 8, scoringQueries: 4, representative: 'bound' })]],
      [CANDIDATE_SCORE_PARAMS, [candidateScoreWgsl({ headDim: 16, operand: 'quest' }), candidateScoreWgsl({ headDim: 16, operand: 'dot' }), candidateScoreDecodeWgsl({ headDim: 16, operand: 'quest' }), candidateScoreDecodeWgsl({ headDim: 18, operand: 'dot' })]],
      [LANDMARK_DECODE_PARTS_PARAMS, [landmarkDecodePartsWgsl({ headDim: 16, valueDim: 12, blockLength: 7 })]],
      [LANDMARK_TOP_K_PARAMS, [landmarkTopKWgsl({ maxPicks: 4 }), landmarkTopKRowsWgsl({ maxPicks: 4 })]],
      [RETRIEVAL_TOP_K_PARAMS, [retrievalTopKWgsl({ groupReduce: 'sum-probability', maxPicks: 3, groupSize: 2 }), retrievalTopKRowsWgsl({ groupReduce: 'max-score', maxPicks: 3, groupSize: 2 })]],
    ];
    for (const [fields, sources] of kernels) {
      expect((fields.length * 4) % 16).toBe(0);
      for (const code of sources) expect(uniformStructFields(code)).toEqual([...fields]);
    }
  });

  it("index a chunk's keys and values by slot · keyStride (a KV cache's capacity between slots), never slot · keySeq", () => {
    // The kernels that read a resident chunk's k or v.
    const readers = [
      groupedSoftmaxWgsl({ headDim: 16, valueDim: 12, blockLength: 7 }),
      landmarkOwnBlockWgsl({ headDim: 16, valueDim: 12, blockLength: 7 }),
      landmarkFreeCopyWgsl(),
      landmarkSelectedCopyWgsl(),
      landmarkGateFoldWgsl({ headDim: 16, valueDim: 12 }),
      hipBoundTreeWgsl({ headDim: 16 }),
      hipSearchWgsl({ headDim: 16, keep: 8, scoringQueries: 4 }),
      hipSearchWgsl({ headDim: 18, keep: 8, scoringQueries: 9 }),
    ];
    for (const code of readers) {
      expect(code).toContain('P.keyStride');
      expect(code).not.toMatch(/\*\s*P\.keySeq\b/);
    }
  });
});
