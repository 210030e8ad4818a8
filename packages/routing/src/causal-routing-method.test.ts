import { describeConformance } from '@sparse-attn/core/testing';
import { causalRoutingMethod } from './causal-routing-method.js';

describeConformance({
  name: 'routing-causal',
  create: (config) => causalRoutingMethod.create(config as never),
  fullBudget: () => ({ clusters: 1, calibrationTokens: 1 }),
  sparse: (seq) => ({ clusters: Math.max(2, Math.round(Math.sqrt(seq))), calibrationTokens: 8, localWindow: 4, sinkTokens: 1 }),
  invalidConfigs: [{ calibrationTokens: 0 }, { refit: 'always' }, { queryClusters: 0 }, { window: 4 }],
});
