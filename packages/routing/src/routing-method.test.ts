import { describeConformance } from '@sparse-attn/core/testing';
import { routingMethod } from './routing-method.js';

describeConformance({
  name: 'routing',
  create: (config) => routingMethod.create(config as never),
  fullBudget: () => ({ clusters: 1 }),
  sparse: (seq) => ({ clusters: Math.max(2, Math.round(Math.sqrt(seq))), localWindow: 4, sinkTokens: 1 }),
  invalidConfigs: [{ clusters: -1 }, { window: 1.5 }, { combine: 'max' }, { emaDecay: 1 }, { local: 'drop' }, { keyClusters: 0 }, { membership: 'top-w' }, { budget: 3 }],
});
