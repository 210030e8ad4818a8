import { describeConformance } from '@sparse-attn/core/testing';
import { nsaMethod } from './nsa.js';

// Small blocks so the kit's sizes (S ≤ 300) are genuinely sparse: l = l′ = d = 8, n = 4, w = 16.
const sparse = { compressionBlock: 8, compressionStride: 8, selectionBlock: 8, selectedBlocks: 4, window: 16 };

describeConformance({
  name: 'nsa (union)',
  create: (config) => nsaMethod.create(config as never),
  fullBudget: (seq) => ({ ...sparse, selectedBlocks: Math.max(3, Math.ceil(seq / 8)) }),
  sparse: () => sparse,
  needle: { seq: 512, config: () => sparse },
  invalidConfigs: [
    { selectedBlocks: 2 },
    { compressionStride: 128 },
    { compressionBlock: 64, compressionStride: 48 },
    { selectionBlock: 40, compressionStride: 16, compressionBlock: 32 },
    { window: -1 },
    { combine: 'mean' },
    { unknownOption: 1 },
  ],
});

describeConformance({
  name: 'nsa (union, overlapping compression d < l, l ≠ l′)',
  create: (config) => nsaMethod.create(config as never),
  fullBudget: (seq) => ({ compressionBlock: 8, compressionStride: 4, selectionBlock: 16, window: 8, selectedBlocks: Math.max(3, Math.ceil(seq / 16)) }),
  sparse: () => ({ compressionBlock: 8, compressionStride: 4, selectionBlock: 16, selectedBlocks: 5, window: 8 }),
});

describeConformance({
  name: "nsa (union, compressionScore 'quest')",
  create: (config) => nsaMethod.create(config as never),
  fullBudget: (seq) => ({ ...sparse, compressionScore: 'quest', selectedBlocks: Math.max(3, Math.ceil(seq / 8)) }),
  sparse: () => ({ ...sparse, compressionScore: 'quest' }),
  needle: { seq: 512, config: () => ({ ...sparse, compressionScore: 'quest' }) },
  invalidConfigs: [{ compressionScore: 'max' }, { compressionScore: 'quest', combine: 'gated' }],
});
