import { describe, expect, it } from 'vitest';
import { uniformStructFields, type TileShape } from '@sparse-attn/backend-gpu';
import { INDEXER_CANDIDATE_PARAMS, indexerCandidateScoreWgsl } from './indexer-candidate-score-wgsl.js';
import { INDEXER_DIRECT_PARAMS, indexerDirectScoreWgsl } from './indexer-direct-score-wgsl.js';
import { WINDOW_POOL_PARAMS, windowPoolWgsl } from './window-pool-wgsl.js';

const TILE: TileShape = { rows: 64, chunk: 16 };

/** The kernels of this package that read a resident chunk's k or v, with their parameter lists. */
const kernels: readonly { name: string; code: string; params: readonly string[] }[] = [
  { name: 'window pool', code: windowPoolWgsl({ bounds: false }), params: WINDOW_POOL_PARAMS },
  { name: 'window pool (bounds)', code: windowPoolWgsl({ bounds: true }), params: WINDOW_POOL_PARAMS },
  ...(['blocks', 'tokens'] as const).flatMap((mode) =>
    [16, 32].map((headDim) => ({ name: `indexer direct ${mode} D${headDim}`, code: indexerDirectScoreWgsl({ headDim, groupSize: 2, maxKept: 4, mode }), params: INDEXER_DIRECT_PARAMS })),
  ),
  ...[16, 32].map((headDim) => ({ name: `indexer candidate D${headDim}`, code: indexerCandidateScoreWgsl({ headDim, groupSize: 2, tile: TILE }), params: INDEXER_CANDIDATE_PARAMS })),
];

describe('kernels reading chunk keys (no GPU needed)', () => {
  it.each(kernels)('$name: the uniform struct matches its parameter list, a multiple of 16 bytes with a keyStride', ({ code, params }) => {
    expect(uniformStructFields(code)).toEqual([...params]);
    expect((params.length * 4) % 16).toBe(0);
    expect(params).toContain('keyStride');
  });

  it('take a KV slot\'s first key row at slot · keyStride, never slot · keySeq', () => {
    expect(windowPoolWgsl({ bounds: false })).toContain('src[(slot * P.keyStride + t) * P.dim + c]');
    expect(indexerDirectScoreWgsl({ headDim: 32, groupSize: 2, maxKept: 4, mode: 'tokens' })).toContain('let keyRow0 = kvSlot * P.keyStride + first;');
    // The block means are compact (pooled per slot), not a chunk's keys.
    expect(indexerDirectScoreWgsl({ headDim: 32, groupSize: 2, maxKept: 4, mode: 'blocks' })).toContain('let keyRow0 = kvSlot * P.pooled + first;');
    expect(indexerCandidateScoreWgsl({ headDim: 32, groupSize: 2, tile: TILE })).toContain('let kRow0 = slot * P.keyStride + blockStart;');
    for (const { code } of kernels) expect(code).not.toMatch(/\* P\.keySeq \+/);
  });
});
