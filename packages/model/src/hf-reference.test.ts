/**
 * The runtime against Hugging Face `transformers` itself: `src/__fixtures__/tiny-*` are real
 * checkpoints written by `save_pretrained` (config.json in the transformers 5 layout with
 * `rope_parameters`, model.safetensors with HF names) together with what `transformers` computed
 * on them (`expected.json`, made by `scripts/make-hf-fixtures.py`): logits of every position,
 * the residual stream after every layer, and a greedy continuation.
 */
import { FormatError, ShapeError } from '@sparse-attn/core';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelFromSafetensors, type LlamaModel } from './index.js';
import { loadModel } from './node.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '__fixtures__');

interface Expected {
  readonly tokens: number[];
  readonly logits: number[][];
  readonly layerOutputs: number[][][];
  readonly generated: number[];
}

async function fixture(name: string): Promise<{ folder: string; model: LlamaModel; expected: Expected }> {
  const folder = join(fixtures, name);
  const expected = JSON.parse(await readFile(join(folder, 'expected.json'), 'utf8')) as Expected;
  return { folder, model: await loadModel(folder), expected };
}

/** Largest absolute difference relative to the largest reference magnitude. */
function relativeError(actual: ArrayLike<number>, expected: readonly number[]): number {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  let error = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!));
    error = Math.max(error, Math.abs(actual[i]! - expected[i]!));
  }
  return error / scale;
}

const temporary: string[] = [];
afterAll(async () => {
  for (const dir of temporary) await rm(dir, { recursive: true, force: true });
});

for (const name of ['tiny-llama', 'tiny-qwen2']) {
  describe(`${name}: equals transformers on its own checkpoint`, () => {
    it('config.json (transformers 5 layout) resolves to the checkpoint’s real settings', async () => {
      const { folder, model } = await fixture(name);
      const raw = JSON.parse(await readFile(join(folder, 'config.json'), 'utf8')) as { rope_parameters: { rope_theta: number }; num_key_value_heads: number };
      expect(model.config.rope_theta).toBe(raw.rope_parameters.rope_theta);
      expect(model.dims.kvHeads).toBe(raw.num_key_value_heads);
      expect(model.dims.queryHeads / model.dims.kvHeads).toBeGreaterThan(1); // GQA
    });

    it('prefill: the logits of every position and the residual stream after every layer', async () => {
      const { model, expected } = await fixture(name);
      const hidden: Float32Array[] = [];
      const result = model.createSession({ observers: [{ onLayerOutput: (_l, h) => hidden.push(h.slice()) }] }).forward(expected.tokens, { logits: 'all' });
      // transformers returns the last layer's output after the final norm: every layer but the last is compared.
      expect(hidden).toHaveLength(expected.layerOutputs.length + 1);
      for (const [l, layer] of expected.layerOutputs.entries()) expect(relativeError(hidden[l]!, layer.flat())).toBeLessThan(1e-5);
      expect(relativeError(result.logits, expected.logits.flat())).toBeLessThan(1e-5);
    });

    it('decode token by token reproduces the logits of every position', async () => {
      const { model, expected } = await fixture(name);
      const session = model.createSession();
      for (const [t, token] of expected.tokens.entries()) {
        const step = session.forward([token]);
        expect(step.step.phase).toBe(t === 0 ? 'prefill' : 'decode');
        expect(relativeError(step.logits, expected.logits[t]!)).toBeLessThan(1e-5);
      }
    });

    it('greedy generation emits the tokens transformers generates', async () => {
      const { model, expected } = await fixture(name);
      expect(Array.from(model.generate(expected.tokens, expected.generated.length).tokens)).toEqual(expected.generated);
    });
  });
}

describe('real checkpoint files that are damaged or disagree with the config', () => {
  it('a truncated, a header-corrupted or an empty model.safetensors is a FormatError', async () => {
    const bytes = new Uint8Array(await readFile(join(fixtures, 'tiny-llama', 'model.safetensors')));
    const config = JSON.parse(await readFile(join(fixtures, 'tiny-llama', 'config.json'), 'utf8')) as unknown;
    expect(() => loadModelFromSafetensors(bytes.subarray(0, bytes.length - 100), config as never)).toThrow(FormatError);
    const corrupted = bytes.slice();
    corrupted[9] = 0x7b; // the header's JSON no longer parses
    corrupted[10] = 0x7b;
    expect(() => loadModelFromSafetensors(corrupted, config as never)).toThrow(FormatError);
    expect(() => loadModelFromSafetensors(new Uint8Array(0), config as never)).toThrow(FormatError);
    const huge = bytes.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true); // header length past the end
    expect(() => loadModelFromSafetensors(huge, config as never)).toThrow(FormatError);
  });

  it('a config.json that does not match the weights names every mis-shaped tensor', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sparse-attn-hf-'));
    temporary.push(dir);
    await copyFile(join(fixtures, 'tiny-llama', 'model.safetensors'), join(dir, 'model.safetensors'));
    const config = JSON.parse(await readFile(join(fixtures, 'tiny-llama', 'config.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, intermediate_size: 48 }));
    await expect(loadModel(dir)).rejects.toThrow(ShapeError);
    await expect(loadModel(dir)).rejects.toThrow(/9 tensor\(s\) mis-shaped: model\.layers\.0\.mlp\.gate_proj\.weight: expected \[48, 24\], got \[40, 24\]/);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 4 }));
    await expect(loadModel(dir)).rejects.toThrow(/tensor\(s\) missing: model\.layers\.3\.input_layernorm\.weight/);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: true }));
    // A tied config simply does not read lm_head.weight: the untied checkpoint's LM head is ignored.
    const tied = await loadModel(dir);
    expect(tied.weights.lmHead).toBe(tied.weights.embedTokens);
    await writeFile(join(dir, 'config.json'), '{ "hidden_size": 24,');
    await expect(loadModel(dir)).rejects.toThrow(FormatError);
  });
});
