import type { MethodDefinition } from '@sparse-attn/core';
import { hipMethod } from './hip-attention.js';
import { landmarkMethod } from './landmark-attention.js';
import { landmarkRetrievalMethod } from './landmark-retrieval.js';
import { retrievalAttentionMethod } from './retrieval-attention.js';

export * from './top-k.js';
export * from './budget-sweep.js';
export * from './block-representatives.js';
export * from './cached-decoder.js';
export * from './landmark-retrieval.js';
export * from './rope-rotation.js';
export * from './landmark-slot-positions.js';
export * from './grouped-softmax-attention.js';
export * from './landmark-attention.js';
export * from './range-bound-tree.js';
export * from './hip-attention.js';
export * from './ivf-index.js';
export * from './retrieval-attention.js';
export * from './landmark-benchmarks.js';

/** Every registrable method of this package, for apps/bench's registry. */
export const methods: MethodDefinition[] = [landmarkRetrievalMethod, landmarkMethod, hipMethod, retrievalAttentionMethod] as unknown as MethodDefinition[];
