import { describeConformance } from './testing.js';
import { denseMethod } from './dense-method.js';

describeConformance({
  name: 'dense',
  create: (config) => denseMethod.create(config as never),
  fullBudget: () => ({}),
  sparse: () => ({}),
  invalidConfigs: [{ budget: 3 }],
});
