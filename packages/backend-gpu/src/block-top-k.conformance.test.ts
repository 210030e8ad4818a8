import { describeConformance } from '@sparse-attn/core/testing';
import { blockTopKMethod } from './block-top-k.js';

// Blocks of 8 keys and query blocks of 8 keep the kit's sizes (S ≤ 300, up to 38 blocks) genuinely sparse.
const sparse = { blockSize: 8, queryBlockSize: 8, topK: 3, sinkBlocks: 1 };

describeConformance({
  name: 'block-top-k (quest scoring)',
  create: (config) => blockTopKMethod.create(config as never),
  fullBudget: (seq) => ({ ...sparse, topK: Math.ceil(seq / sparse.blockSize) }),
  sparse: () => sparse,
  needle: { seq: 512, config: () => sparse },
  invalidConfigs: [{ blockSize: 0 }, { topK: -1 }, { scoring: 'max' }, { queryBlockSize: 1.5 }, { unknownOption: 1 }],
});

describeConformance({
  name: 'block-top-k (mean scoring, no sinks, query rows of 1)',
  create: (config) => blockTopKMethod.create(config as never),
  fullBudget: (seq) => ({ blockSize: 16, queryBlockSize: 1, sinkBlocks: 0, scoring: 'mean', topK: Math.ceil(seq / 16) }),
  sparse: () => ({ blockSize: 16, queryBlockSize: 1, sinkBlocks: 0, scoring: 'mean', topK: 2 }),
  needle: { seq: 512, config: () => ({ blockSize: 16, queryBlockSize: 1, sinkBlocks: 0, scoring: 'mean', topK: 2 }) },
});
