import { ConfigError, FormatError } from '@sparse-attn/core';
import { writeSafetensorsFile } from '@sparse-attn/core/node';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRandomModel, modelTensors, type LlamaConfigInput } from './index.js';
import { loadModel, saveModel } from './node.js';

const config: LlamaConfigInput = { num_hidden_layers: 2, hidden_size: 16, num_attention_heads: 2, intermediate_size: 20, vocab_size: 29 };
const tokens = [1, 2, 3, 5, 8, 13];
const folders: string[] = [];
async function folder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sparse-attn-model-'));
  folders.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of folders) await rm(dir, { recursive: true, force: true });
});

describe('model files on disk', () => {
  it('saveModel writes an HF folder that loadModel reads back with identical logits', async () => {
    const model = createRandomModel(config, { seed: 9, std: 0.3 });
    const dir = await folder();
    await saveModel(model, dir);
    const loaded = await loadModel(dir);
    expect(Array.from(loaded.forward(tokens).logits)).toEqual(Array.from(model.forward(tokens).logits));
    const single = await loadModel(join(dir, 'model.safetensors'));
    expect(Array.from(single.forward(tokens).logits)).toEqual(Array.from(model.forward(tokens).logits));
  });

  it('reads a sharded checkpoint through model.safetensors.index.json', async () => {
    const model = createRandomModel(config, { seed: 10 });
    const dir = await folder();
    const tensors = Object.entries(modelTensors(model));
    const weightMap: Record<string, string> = {};
    const shards = [tensors.slice(0, 7), tensors.slice(7)];
    for (const [i, shard] of shards.entries()) {
      const name = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensorsFile(join(dir, name), Object.fromEntries(shard));
      for (const [tensor] of shard) weightMap[tensor] = name;
    }
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    const loaded = await loadModel(dir);
    expect(Array.from(loaded.forward(tokens).logits)).toEqual(Array.from(model.forward(tokens).logits));
  });

  it('a folder without config.json, or a broken index, is a typed error naming the path', async () => {
    const dir = await folder();
    await expect(loadModel(dir)).rejects.toThrow(ConfigError);
    await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    await writeFile(join(dir, 'model.safetensors.index.json'), '{"metadata": {}}');
    await expect(loadModel(dir)).rejects.toThrow(FormatError);
    await expect(loadModel(dir)).rejects.toThrow(/weight_map/);
  });
});
