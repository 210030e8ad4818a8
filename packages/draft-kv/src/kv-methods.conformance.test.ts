import { describeConformance } from '@sparse-attn/core/testing';
import { snapKvMethod, specKvLayerMethod, specPcLayerMethod } from './kv-methods.js';

const invalidBudgets = [{ capacity: 0 }, { kernel: 4 }, { window: 8, capacity: 4 }, { keepRatio: 0 }, { keepRatio: 1.5 }, { pooling: 'median' }, { unknownOption: 1 }];

describeConformance({
  name: 'snapkv',
  create: (config) => snapKvMethod.create(config as never),
  fullBudget: (seq) => ({ capacity: Math.max(seq, 4), window: 4 }),
  sparse: () => ({ capacity: 16, window: 4, kernel: 3 }),
  needle: { seq: 512, config: () => ({ capacity: 64, window: 8 }) },
  invalidConfigs: invalidBudgets,
});

describeConformance({
  name: 'speckv (per-layer compression, 3 lookahead tokens)',
  create: (config) => specKvLayerMethod.create(config as never),
  fullBudget: (seq) => ({ capacity: Math.max(seq, 4), window: 4, lookahead: 3 }),
  sparse: () => ({ capacity: 16, window: 4, lookahead: 3 }),
  needle: { seq: 512, config: () => ({ capacity: 64, window: 4, lookahead: 3 }) },
  invalidConfigs: [...invalidBudgets, { lookahead: -1 }],
});

describeConformance({
  name: 'specpc (token selection shared by every head)',
  create: (config) => specPcLayerMethod.create(config as never),
  fullBudget: (seq) => ({ capacity: Math.max(seq, 4), window: 4 }),
  sparse: () => ({ capacity: 16, window: 4, kernel: 3 }),
  needle: { seq: 512, config: () => ({ capacity: 32, window: 4, kernel: 3 }) },
  invalidConfigs: [{ capacity: 0 }, { window: 0 }, { window: 8, capacity: 4 }, { keepRatio: 2 }, { unknownOption: 1 }],
});
