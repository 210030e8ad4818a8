import { ConfigError, FormatError, ShapeError, readSafetensors, writeSafetensors, type SafetensorsInput } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { createRandomModel, loadModelFromSafetensors, modelTensors, modelToSafetensors, type LlamaConfigInput } from './index.js';

const config: LlamaConfigInput = {
  num_hidden_layers: 2,
  hidden_size: 16,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 24,
  vocab_size: 37,
};
const tokens = [3, 1, 4, 1, 5, 9, 2, 6, 5];

describe('safetensors round trip', () => {
  for (const tied of [false, true]) {
    it(`reproduces the logits exactly (tie_word_embeddings: ${tied})`, () => {
      const model = createRandomModel({ ...config, tie_word_embeddings: tied }, { seed: 5, std: 0.3 });
      const bytes = modelToSafetensors(model);
      const names = [...readSafetensors(bytes).tensors.keys()];
      expect(names.includes('lm_head.weight')).toBe(!tied);
      expect(names).toContain('model.layers.1.mlp.down_proj.weight');
      const loaded = loadModelFromSafetensors(bytes);
      expect(loaded.config).toEqual(model.config);
      expect(Array.from(loaded.forward(tokens).logits)).toEqual(Array.from(model.forward(tokens).logits));
    });
  }

  it('loads a Hugging Face style file (no config metadata, extra buffers, BF16) given its config.json', () => {
    const model = createRandomModel(config, { seed: 6 });
    const tensors: Record<string, SafetensorsInput> = { 'model.layers.0.self_attn.rotary_emb.inv_freq': { dtype: 'F32', shape: [2], data: new Float32Array([1, 0.5]) } };
    for (const [name, t] of Object.entries(modelTensors(model))) tensors[name] = { dtype: 'BF16', shape: t.shape, data: t.data as Float32Array };
    const bytes = writeSafetensors(tensors, { format: 'pt' });
    expect(() => loadModelFromSafetensors(bytes)).toThrow(FormatError);
    const loaded = loadModelFromSafetensors(bytes, config);
    // BF16 keeps 8 mantissa bits: close to, not equal to, the float32 original.
    const a = loaded.weights.layers[0]!.qProj;
    const b = model.weights.layers[0]!.qProj;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(Math.abs(b[i]!) / 128);
    expect(loaded.forward(tokens).logits.length).toBe(tokens.length * 37);
  });

  it('missing tensors are one FormatError listing every name and shape', () => {
    const tensors = modelTensors(createRandomModel(config, { seed: 7 }));
    delete tensors['model.layers.1.self_attn.k_proj.weight'];
    delete tensors['model.norm.weight'];
    const bytes = writeSafetensors(tensors);
    const load = () => loadModelFromSafetensors(bytes, config);
    expect(load).toThrow(FormatError);
    expect(load).toThrow(/2 tensor\(s\) missing: model\.layers\.1\.self_attn\.k_proj\.weight \[8, 16\], model\.norm\.weight \[16\]/);
  });

  it('mis-shaped tensors are one ShapeError naming each tensor, expected and actual shape', () => {
    const tensors = modelTensors(createRandomModel(config, { seed: 7 }));
    tensors['model.layers.0.mlp.up_proj.weight'] = { data: new Float32Array(16 * 24), shape: [16, 24] };
    const bytes = writeSafetensors(tensors);
    expect(() => loadModelFromSafetensors(bytes, config)).toThrow(ShapeError);
    expect(() => loadModelFromSafetensors(bytes, config)).toThrow(/model\.layers\.0\.mlp\.up_proj\.weight: expected \[24, 16\], got \[16, 24\]/);
  });

  it('a malformed file or config is a typed error', () => {
    const bytes = modelToSafetensors(createRandomModel(config, { seed: 1 }));
    expect(() => loadModelFromSafetensors(bytes.subarray(0, bytes.length - 4))).toThrow(FormatError);
    expect(() => loadModelFromSafetensors(bytes, { ...config, num_attention_heads: 3 })).toThrow(ConfigError);
    const integer = writeSafetensors({ ...modelTensors(createRandomModel(config, { seed: 1 })), 'model.norm.weight': { dtype: 'I32', shape: [16], data: new Int32Array(16) } });
    expect(() => loadModelFromSafetensors(integer, config)).toThrow(/model\.norm\.weight.*float dtype/);
  });
});
