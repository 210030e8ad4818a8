import { describe, expect, it } from 'vitest';
import { uniformStructFields } from '@sparse-attn/backend-gpu';
import { CLUSTER_ATTENTION_PARAMS, clusterAttentionHooks } from './cluster-attention-wgsl.js';
import { SIMILARITY_PARAMS, similarityTileWgsl } from './similarity-tile-wgsl.js';
import { KMEANS_PARAMS, kmeansGatherWgsl, normalizeRowsWgsl, rowAffineWgsl } from './spherical-kmeans-wgsl.js';

/** The kernels of this package that read a resident chunk's keys (keyStride) or rows of keys and queries (rowStride). */
const readers: readonly { name: string; code: string; params: readonly string[]; stride: string }[] = [
  { name: 'cluster attention', code: `struct Params {${clusterAttentionHooks().params}}\n${clusterAttentionHooks().prologue}`, params: CLUSTER_ATTENTION_PARAMS, stride: 'keyStride' },
  { name: 'row normalisation', code: normalizeRowsWgsl(16), params: KMEANS_PARAMS, stride: 'rowStride' },
  { name: 'row affine', code: rowAffineWgsl(16), params: KMEANS_PARAMS, stride: 'rowStride' },
  { name: 'k-means gather', code: kmeansGatherWgsl(16), params: KMEANS_PARAMS, stride: 'rowStride' },
  { name: 'similarity tile', code: similarityTileWgsl(16), params: SIMILARITY_PARAMS, stride: 'rowStride' },
];

describe('kernels reading chunk keys (no GPU needed)', () => {
  it.each(readers)('$name: the uniform struct is its parameter list (a multiple of 16 bytes, with its stride), and rows are read at slot · stride', ({ code, params, stride }) => {
    expect(uniformStructFields(code)).toEqual([...params]);
    expect((params.length * 4) % 16).toBe(0);
    expect(params).toContain(stride);
    expect(code).toContain(`P.${stride}`);
    expect(code).not.toMatch(/\*\s*P\.keySeq\b/);
  });
});
