import { describe, expect, it } from 'vitest';
import { ConfigError } from '@sparse-attn/core';
import { maxLogitDifference, restrictedReplayPolicy } from './__fixtures__/restricted-replay.js';
import type { ModelSession } from '@sparse-attn/model';
import { generateWithPress } from './press-policy.js';
import { h2oPress, keyNormPress, pyramidKvPress, randomPress, snapKvPress, streamingLlmPress, tovaPress, type KvPress } from './kv-press.js';
import { specKvGenerate } from './speckv.js';
import { specPcGenerate } from './specpc.js';
import { tinyPair, tinyPrompt } from './tiny-models.js';

const { target, draft } = tinyPair();
const N = 64;
const prompt = tinyPrompt(N);
const NEW = 6;

function denseRun() {
  const session = target.createSession();
  const { tokens } = session.generate(prompt, NEW);
  return { tokens, logits: session.lastLogits! };
}
const dense = denseRun();

/** Every layer's positions per KV head. */
function positionsOf(session: ModelSession): number[][][] {
  return session.layers.map((l) => Array.from({ length: l.cache.kvHeads }, (_, h) => Array.from(l.cache.positions(h))));
}

describe('budget ≥ context keeps everything and equals dense generation', () => {
  const full: [string, KvPress][] = [
    ['snapkv', snapKvPress({ capacity: N })],
    ['snapkv keepRatio 1', snapKvPress({ keepRatio: 1 })],
    ['pyramidkv', pyramidKvPress({ capacity: N, window: 4 })],
    ['h2o', h2oPress({ heavy: N, recent: NEW })],
    ['streaming-llm', streamingLlmPress({ sinks: 4, recent: N + NEW })],
    ['tova', tovaPress({ capacity: N })],
    ['key-norm', keyNormPress({ capacity: N })],
    ['random', randomPress({ capacity: N })],
  ];
  for (const [name, press] of full) {
    it(name, () => {
      const run = generateWithPress(target, prompt, NEW, press);
      expect(Array.from(run.tokens)).toEqual(Array.from(dense.tokens));
      expect(Array.from(run.session.lastLogits!)).toEqual(Array.from(dense.logits));
      expect(run.keptPerLayer).toEqual([N, N, N]);
      expect(run.kvBytes).toBe(run.denseKvBytes);
    });
  }
  it('speckv and specpc with C ≥ N run the target densely', () => {
    const kv = specKvGenerate(target, draft, prompt, NEW, { capacity: N, window: 4 });
    expect(kv.compressed).toBe(false);
    expect(Array.from(kv.tokens)).toEqual(Array.from(dense.tokens));
    const pc = specPcGenerate(target, draft, prompt, NEW, { capacity: N, window: 4 });
    expect(Array.from(pc.tokens)).toEqual(Array.from(dense.tokens));
    expect(Array.from(pc.keptIndices)).toEqual(Array.from({ length: N }, (_, i) => i));
  });
});

describe('evicted keys are never read; kept entries keep their original positions; decode RoPE uses N + t', () => {
  for (const [name, press] of [
    ['snapkv', snapKvPress({ capacity: 16, window: 4, kernel: 3 })],
    ['pyramidkv', pyramidKvPress({ capacity: 20, window: 2, beta: 2, kernel: 3 })],
    ['tova', tovaPress({ capacity: 12 })],
    ['key-norm', keyNormPress({ keepRatio: 0.25 })],
  ] as [string, KvPress][]) {
    it(name, () => {
      const run = generateWithPress(target, prompt, NEW, press);
      const positions = positionsOf(run.session);
      for (const [l, layer] of positions.entries()) {
        for (const heads of layer) {
          const kept = run.keptPerLayer[l]!;
          const promptPart = heads.slice(0, kept);
          expect(promptPart.every((p, i) => p >= 0 && p < N && (i === 0 || p > promptPart[i - 1]!))).toBe(true);
          // Generated entries sit at the original positions N, N + 1, … (the last token is not forwarded).
          expect(heads.slice(kept)).toEqual(Array.from({ length: NEW - 1 }, (_, t) => N + t));
        }
      }
      expect(run.session.nextPosition).toBe(N + NEW - 1);
      // Dense cache index = position, so the kept positions are the rows a dense replay may read.
      const session = target.createSession({ policy: restrictedReplayPolicy(target, (layer, h) => positions[layer]![h]!) });
      const replay = session.generate(prompt, NEW);
      expect(Array.from(replay.tokens)).toEqual(Array.from(run.tokens));
      expect(maxLogitDifference(run.session.lastLogits!, session.lastLogits!)).toBeLessThan(1e-4);
      // And the compressed run really differs from dense somewhere (the test can fail).
      expect(run.kvBytes).toBeLessThan(run.denseKvBytes);
    });
  }
});

describe('continuous eviction', () => {
  it('StreamingLLM keeps the sinks and the recent window, during decode too', () => {
    const run = generateWithPress(target, prompt, NEW, streamingLlmPress({ sinks: 4, recent: 12 }));
    expect(run.keptPerLayer).toEqual([16, 16, 16]);
    const forwarded = N + NEW - 1;
    for (const layer of positionsOf(run.session)) {
      for (const heads of layer) expect(heads).toEqual([0, 1, 2, 3, ...Array.from({ length: 12 }, (_, i) => forwarded - 12 + i)]);
    }
    expect(run.report.decodeEvictions).toBe((NEW - 1) * 3 * target.dims.kvHeads);
  });
  it('H2O holds heavy + recent entries per head through decode, keeping the recent ones', () => {
    const run = generateWithPress(target, prompt, NEW, h2oPress({ heavy: 8, recent: 4 }));
    expect(run.keptPerLayer).toEqual([12, 12, 12]);
    const forwarded = N + NEW - 1;
    for (const layer of positionsOf(run.session)) {
      for (const heads of layer) {
        expect(heads).toHaveLength(12);
        expect(heads.slice(-4)).toEqual([forwarded - 4, forwarded - 3, forwarded - 2, forwarded - 1]);
      }
    }
  });
  it('H2O ratios default to 10% + 10% of the prompt', () => {
    const run = generateWithPress(target, prompt, 2, h2oPress());
    expect(run.keptPerLayer).toEqual([12, 12, 12]);
  });
});

describe('PyramidKV', () => {
  it('per-layer budgets fall with depth and sum to layers · C', () => {
    const run = generateWithPress(target, prompt, 2, pyramidKvPress({ capacity: 20, window: 2, beta: 2, kernel: 3 }));
    expect(run.keptPerLayer).toEqual([29, 20, 11]);
    expect(run.keptPerLayer.reduce((a, b) => a + b, 0)).toBe(3 * 20);
  });
  it('bad options are ConfigErrors', () => {
    expect(() => pyramidKvPress({ beta: 0 })).toThrow(ConfigError);
    expect(() => snapKvPress({ keepRatio: 2 })).toThrow(ConfigError);
    expect(() => h2oPress({ recent: 0 })).toThrow(ConfigError);
  });
});

describe('query-aware and query-agnostic modes', () => {
  const context = prompt.slice(0, 56);
  const questions = [prompt.slice(56), tinyPrompt(8, 99)];
  const keptOf = (run: { session: ModelSession }) => positionsOf(run.session).map((layer) => layer.map((heads) => heads.filter((p) => p < 56)));
  it('query-agnostic: the kept context does not depend on the question, which is prefilled after the compression', () => {
    const runs = questions.map((question) => generateWithPress(target, context, 3, snapKvPress({ capacity: 16, window: 4, kernel: 3 }), { question }));
    expect(keptOf(runs[0]!)).toEqual(keptOf(runs[1]!));
    for (const run of runs) {
      expect(run.keptPerLayer).toEqual([16, 16, 16]);
      // The question's 8 entries are all kept, at positions 56…63, then the decode tokens.
      expect(Array.from(run.session.layers[0]!.cache.positions(0).slice(16, 24))).toEqual(Array.from({ length: 8 }, (_, i) => 56 + i));
    }
  });
  it('query-aware: the question is inside the observation window and changes what is kept', () => {
    const runs = questions.map((question) => generateWithPress(target, Int32Array.from([...context, ...question]), 3, snapKvPress({ capacity: 16, window: 4, kernel: 3 })));
    expect(keptOf(runs[0]!)).not.toEqual(keptOf(runs[1]!));
  });
});

