import { describeConformance } from '@sparse-attn/core/testing';
import { biformerMethod } from './biformer-attention.js';

describeConformance({
  name: 'biformer',
  create: (config) => biformerMethod.create(config as never),
  fullBudget: (seq) => ({ regionSize: 8, topK: Math.ceil(seq / 8) }),
  sparse: () => ({ regionSize: 8, topK: 3 }),
  invalidConfigs: [{ regionSize: 0 }, { topK: 0 }, { routingScope: 'global' }],
});

describeConformance({
  name: 'biformer (shared routing graph)',
  create: (config) => biformerMethod.create(config as never),
  fullBudget: (seq) => ({ regionSize: 8, topK: Math.ceil(seq / 8), routingScope: 'shared' }),
  sparse: () => ({ regionSize: 8, topK: 3, routingScope: 'shared' }),
});
