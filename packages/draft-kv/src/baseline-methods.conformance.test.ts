import { describeConformance } from '@sparse-attn/core/testing';
import { keyNormMethod, pyramidKvMethod, randomKvMethod, snapKvMethod, tovaMethod } from './kv-methods.js';
import { h2oMethod, streamingLlmMethod } from './eviction-methods.js';

// Secondary variants run a lighter shape list that still covers S = 1, a length that is no
// multiple of any block, GQA with B = 2 and Dv ≠ D, and a structured GQA workload (CI budget).
const lightShapes = [
  { batch: 1, queryHeads: 1, kvHeads: 1, seq: 1, headDim: 16 },
  { batch: 1, queryHeads: 2, kvHeads: 2, seq: 37, headDim: 16 },
  { batch: 2, queryHeads: 4, kvHeads: 1, seq: 97, headDim: 16, valueDim: 24 },
  { batch: 1, queryHeads: 4, kvHeads: 2, seq: 130, headDim: 32, workload: 'structured' as const },
];

const invalidBudgets = [{ capacity: 0 }, { kernel: 4 }, { window: 8, capacity: 4 }, { keepRatio: 0 }, { keepRatio: 1.5 }, { pooling: 'median' }, { unknownOption: 1 }];

describeConformance({
  name: 'snapkv (keep ratio, avg pooling)',
  shapes: lightShapes,
  create: (config) => snapKvMethod.create(config as never),
  fullBudget: () => ({ keepRatio: 1, window: 4 }),
  sparse: () => ({ keepRatio: 0.25, window: 4, pooling: 'avg', kernel: 5 }),
  needle: { seq: 512, config: () => ({ keepRatio: 0.125, window: 8, pooling: 'avg', kernel: 5 }) },
});

describeConformance({
  name: 'pyramidkv (layer 1 of 4, β = 2)',
  shapes: lightShapes,
  create: (config) => pyramidKvMethod.create(config as never),
  fullBudget: (seq) => ({ capacity: Math.max(seq, 4), window: 4, layers: 4, layer: 1, beta: 2 }),
  sparse: () => ({ capacity: 16, window: 4, layers: 4, layer: 1, beta: 2 }),
  needle: { seq: 512, config: () => ({ capacity: 64, window: 8, layers: 4, layer: 3, beta: 2 }) },
  invalidConfigs: [...invalidBudgets, { layer: 4, layers: 4 }, { beta: 0 }],
});

describeConformance({
  name: 'tova',
  shapes: lightShapes,
  create: (config) => tovaMethod.create(config as never),
  fullBudget: (seq) => ({ capacity: seq }),
  sparse: () => ({ capacity: 16 }),
  needle: { seq: 512, config: () => ({ capacity: 32 }) },
});

// Query-agnostic scorers cannot find a needle by design (key-norm drops large keys; random is random).
describeConformance({
  name: 'key-norm',
  shapes: lightShapes,
  create: (config) => keyNormMethod.create(config as never),
  fullBudget: (seq) => ({ capacity: seq }),
  sparse: () => ({ capacity: 16, window: 2 }),
  needle: false,
});

describeConformance({
  name: 'random-kv',
  shapes: lightShapes,
  create: (config) => randomKvMethod.create(config as never),
  fullBudget: (seq) => ({ capacity: seq }),
  sparse: () => ({ capacity: 16, window: 2, seed: 3 }),
  needle: false,
});

// H2O evicts the needle before its queries arrive unless earlier queries attended it: no needle claim.
describeConformance({
  name: 'h2o',
  create: (config) => h2oMethod.create(config as never),
  fullBudget: (seq) => ({ heavy: 0, recent: seq }),
  sparse: () => ({ heavy: 8, recent: 8 }),
  needle: false,
  invalidConfigs: [{ recent: 0 }, { heavy: -1 }, { capacity: 3 }],
});

describeConformance({
  name: 'streaming-llm',
  create: (config) => streamingLlmMethod.create(config as never),
  fullBudget: (seq) => ({ sinks: 4, recent: seq }),
  sparse: () => ({ sinks: 4, recent: 12 }),
  needle: false,
  invalidConfigs: [{ recent: 0 }, { sinks: -1 }, { window: 3 }],
});
