import { ConfigError, Rng, ShapeError, denseMethod, maxAbsDiff, tensor } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { createRandomModel, parseLlamaConfig, randomWeights, LlamaModel, type LlamaConfigInput, type ModelWeights } from './index.js';

/** A tiny GQA model: head counts, widths and vocabulary deliberately not powers of two. */
const tiny: LlamaConfigInput = {
  num_hidden_layers: 3,
  hidden_size: 24,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  head_dim: 6,
  intermediate_size: 40,
  vocab_size: 61,
  rope_theta: 500,
  rms_norm_eps: 1e-5,
};

function tokensOf(count: number, seed = 3, vocab = 61): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => rng.int(vocab));
}

/**
 * An independent, deliberately naive forward pass in float64 (no core kernels): the truth the
 * runtime's per-layer outputs and logits are checked against.
 */
function naiveForward(configInput: LlamaConfigInput, w: ModelWeights, tokens: number[], positions = tokens.map((_, i) => i)) {
  const c = parseLlamaConfig(configInput);
  const H = c.hidden_size, Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, D = c.head_dim, I = c.intermediate_size, V = c.vocab_size;
  const T = tokens.length;
  const linear = (x: number[][], W: Float32Array, out: number, bias?: Float32Array) =>
    x.map((row) => Array.from({ length: out }, (_, o) => {
      let s = bias ? bias[o]! : 0;
      for (let i = 0; i < row.length; i++) s += row[i]! * W[o * row.length + i]!;
      return s;
    }));
  const norm = (x: number[][], g: Float32Array) =>
    x.map((row) => {
      const ms = row.reduce((a, v) => a + v * v, 0) / row.length;
      return row.map((v, i) => (g[i]! * v) / Math.sqrt(ms + c.rms_norm_eps));
    });
  const rope = (x: number[][], heads: number) =>
    x.map((row, t) => {
      const out = [...row];
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < D / 2; i++) {
          const a = positions[t]! / Math.pow(c.rope_theta, (2 * i) / D);
          const x0 = row[h * D + i]!, x1 = row[h * D + i + D / 2]!;
          out[h * D + i] = x0 * Math.cos(a) - x1 * Math.sin(a);
          out[h * D + i + D / 2] = x1 * Math.cos(a) + x0 * Math.sin(a);
        }
      }
      return out;
    });
  let x = tokens.map((id) => Array.from(w.embedTokens.subarray(id * H, (id + 1) * H)));
  const layerOutputs: number[][][] = [];
  for (const lw of w.layers) {
    const n = norm(x, lw.inputLayernorm);
    const q = rope(linear(n, lw.qProj, Hq * D, lw.qBias), Hq);
    const k = rope(linear(n, lw.kProj, Hkv * D, lw.kBias), Hkv);
    const v = linear(n, lw.vProj, Hkv * D, lw.vBias);
    const attn = x.map(() => new Array<number>(Hq * D).fill(0));
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / (Hq / Hkv));
      for (let i = 0; i < T; i++) {
        const s = Array.from({ length: i + 1 }, (_, j) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[i]![h * D + d]! * k[j]![g * D + d]!;
          return dot / Math.sqrt(D);
        });
        const m = Math.max(...s);
        const e = s.map((z) => Math.exp(z - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= i; j++) for (let d = 0; d < D; d++) attn[i]![h * D + d]! += (e[j]! / z) * v[j]![g * D + d]!;
      }
    }
    const o = linear(attn, lw.oProj, H, lw.oBias);
    x = x.map((row, t) => row.map((val, i) => val + o[t]![i]!));
    const n2 = norm(x, lw.postAttentionLayernorm);
    const gate = linear(n2, lw.gateProj, I);
    const up = linear(n2, lw.upProj, I);
    const act = gate.map((row, t) => row.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[t]![i]!));
    const down = linear(act, lw.downProj, H);
    x = x.map((row, t) => row.map((val, i) => val + down[t]![i]!));
    layerOutputs.push(x);
  }
  const logits = linear(norm(x, w.norm), w.lmHead, V);
  return { layerOutputs, logits };
}

function maxRelative(actual: ArrayLike<number>, expected: number[]): number {
  let scale = 0;
  for (const e of expected) scale = Math.max(scale, Math.abs(e));
  let err = 0;
  for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(actual[i]! - expected[i]!));
  return err / scale;
}

describe('LlamaModel forward (dense attention everywhere)', () => {
  const variants: [string, LlamaConfigInput][] = [
    ['untied GQA', tiny],
    ['tied embeddings, MHA, default head_dim', { ...tiny, num_key_value_heads: 6, head_dim: undefined, tie_word_embeddings: true }],
    ['qwen2 biases, one KV head', { ...tiny, model_type: 'qwen2', num_key_value_heads: 1 }],
    ['llama attention_bias (o_proj too)', { ...tiny, attention_bias: true }],
  ];
  for (const [name, config] of variants) {
    it(`per-layer outputs and logits match a naive float64 implementation: ${name}`, () => {
      const weights = randomWeights(config, { seed: 11, std: 0.25 });
      const rng = new Rng(5);
      for (const lw of weights.layers) for (const b of [lw.qBias, lw.kBias, lw.vBias, lw.oBias]) if (b) rng.fillNormal(b, 0.3);
      const model = new LlamaModel(config, weights);
      const tokens = tokensOf(13);
      const outputs: Float32Array[] = [];
      const result = model.createSession({ observers: [{ onLayerOutput: (_l, h) => outputs.push(h.slice()) }] }).forward(tokens, { logits: 'all' });
      const truth = naiveForward(config, weights, tokens);
      expect(outputs).toHaveLength(3);
      for (let l = 0; l < 3; l++) expect(maxRelative(outputs[l]!, truth.layerOutputs[l]!.flat())).toBeLessThan(1e-4);
      expect(result.logitRows).toBe(13);
      expect(maxRelative(result.logits, truth.logits.flat())).toBeLessThan(1e-4);
    });
  }

  it('length 1 works and matches the naive implementation', () => {
    const weights = randomWeights(tiny, { seed: 2, std: 0.25 });
    const result = new LlamaModel(tiny, weights).forward([7]);
    expect(maxRelative(result.logits, naiveForward(tiny, weights, [7]).logits.flat())).toBeLessThan(1e-4);
  });

  it('shifting every position by a constant leaves the logits unchanged (RoPE is relative)', () => {
    const model = createRandomModel(tiny, { seed: 4, std: 0.25 });
    const tokens = tokensOf(9);
    const base = model.forward(tokens);
    const shifted = model.forward(tokens, { positions: tokens.map((_, i) => i + 1000) });
    expect(maxAbsDiff(tensor([9, 61], shifted.logits), tensor([9, 61], base.logits))).toBeLessThan(1e-4);
    const truth = naiveForward(tiny, model.weights, tokens, tokens.map((_, i) => i + 1000));
    expect(maxRelative(shifted.logits, truth.logits.flat())).toBeLessThan(1e-4);
  });
});

describe('ModelSession: caches, decode, generation', () => {
  const model = createRandomModel(tiny, { seed: 8, std: 0.25 });
  const tokens = tokensOf(17, 9);

  it('prefill then decode of the next tokens equals prefill of the longer sequence (logits to 1e-4)', () => {
    const full = model.forward(tokens);
    const session = model.createSession();
    session.forward(tokens.slice(0, 13));
    for (let t = 13; t < 17; t++) {
      const step = session.forward([tokens[t]!]);
      expect(step.step.phase).toBe('decode');
      expect(Array.from(step.step.positions)).toEqual([t]);
      const expected = full.logits.subarray(t * 61, (t + 1) * 61);
      expect(maxAbsDiff(tensor([61], step.logits), tensor([61], expected.slice()))).toBeLessThan(1e-4);
    }
    expect(session.cacheLength).toBe(17);
    expect(session.nextPosition).toBe(17);
    for (const layer of session.layers) expect(Array.from(layer.cache.positions(1))).toEqual(tokens.map((_, i) => i));
  });

  it('chunked prefill equals one prefill', () => {
    const full = model.forward(tokens);
    const session = model.createSession();
    session.forward(tokens.slice(0, 6));
    const rest = session.forward(tokens.slice(6), { logits: 'all' });
    expect(rest.step.phase).toBe('prefill');
    expect(maxAbsDiff(tensor([11, 61], rest.logits), tensor([11, 61], full.logits.slice(6 * 61)))).toBeLessThan(1e-4);
  });

  it("driving dense through the method's own decoder gives the same logits as the session-owned cache", () => {
    const viaCache = model.createSession();
    const viaDecoder = model.createSession({ driver: 'decoder' });
    const a = viaCache.forward(tokens.slice(0, 10));
    const b = viaDecoder.forward(tokens.slice(0, 10));
    expect(maxAbsDiff(tensor([61], a.logits), tensor([61], b.logits))).toBeLessThan(1e-5);
    const c = viaCache.forward([tokens[10]!]);
    const d = viaDecoder.forward([tokens[10]!]);
    expect(maxAbsDiff(tensor([61], c.logits), tensor([61], d.logits))).toBeLessThan(1e-5);
    expect(viaDecoder.layers[0]!.decoder!.length).toBe(11);
  });

  it('greedy generation emits the argmax of a fresh prefill at every step, and stops on a stop token', () => {
    const prompt = tokens.slice(0, 5);
    const { tokens: generated } = model.generate(prompt, 4);
    const sequence = [...prompt];
    for (const token of generated) {
      const logits = model.forward(sequence).logits.subarray((sequence.length - 1) * 61);
      let best = 0;
      for (let i = 1; i < 61; i++) if (logits[i]! > logits[best]!) best = i;
      expect(token).toBe(best);
      sequence.push(token);
    }
    const stopped = model.generate(prompt, 4, { stopTokens: [generated[1]!] });
    expect(Array.from(stopped.tokens)).toEqual(Array.from(generated.slice(0, generated.indexOf(generated[1]!) + 1)));
  });

  it('reset empties every cache and restarts positions', () => {
    const session = model.createSession();
    const first = session.forward(tokens.slice(0, 4));
    session.reset();
    expect(session.cacheLength).toBe(0);
    const again = session.forward(tokens.slice(0, 4));
    expect(Array.from(again.logits)).toEqual(Array.from(first.logits));
  });
});

describe('errors', () => {
  const model = createRandomModel(tiny, { seed: 1 });

  it('bad tokens and positions are ShapeErrors naming the input', () => {
    const session = model.createSession();
    expect(() => session.forward([])).toThrow(ShapeError);
    expect(() => session.forward([3, 61])).toThrow(/tokens\[1\] = 61 outside the vocabulary \[0, 61\)/);
    expect(() => session.forward([3, 1.5])).toThrow(ShapeError);
    expect(() => session.forward([3, 4], { positions: [0] })).toThrow(/positions has 1 entries, tokens has 2/);
    expect(() => session.forward([3], { positions: [-1] })).toThrow(/positions\[0\] = -1/);
  });

  it('logits too large to materialise, or an unknown logits mode, are refused before any work', () => {
    const wide = createRandomModel({ ...tiny, vocab_size: 2 ** 20, num_hidden_layers: 1, hidden_size: 4, head_dim: 2, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 4, tie_word_embeddings: true }, { seed: 1 });
    const tokens = Array.from({ length: 300 }, (_, i) => i);
    expect(() => wide.forward(tokens)).toThrow(/logits 'all' for 300 tokens × 1048576 vocabulary would take 1200 MiB/);
    expect(wide.forward(tokens, { logits: 'last' }).logits.length).toBe(2 ** 20);
    expect(() => model.createSession().forward([1], { logits: 'every' as never })).toThrow(ConfigError);
  });

  it('bad configs are ConfigErrors naming the field', () => {
    expect(() => parseLlamaConfig({ ...tiny, num_key_value_heads: 4 })).toThrow(/num_attention_heads \(6\) must be a multiple of num_key_value_heads \(4\)/);
    expect(() => parseLlamaConfig({ ...tiny, hidden_size: undefined })).toThrow(/hidden_size/);
    expect(() => parseLlamaConfig({ ...tiny, head_dim: 5 })).toThrow(/head_dim must be even/);
    expect(() => parseLlamaConfig({ ...tiny, head_dim: undefined, hidden_size: 25 })).toThrow(/hidden_size \(25\) must be divisible/);
    expect(() => parseLlamaConfig({ ...tiny, rope_scaling: { type: 'llama3' } } as unknown as LlamaConfigInput)).toThrow(/rope_scaling/);
    expect(() => parseLlamaConfig({ ...tiny, hidden_act: 'gelu' } as unknown as LlamaConfigInput)).toThrow(/hidden_act/);
    expect(() => parseLlamaConfig({ ...tiny, vocab_size: 0 })).toThrow(/vocab_size/);
  });

  it('transformers 5 fields: rope_parameters gives θ; unimplemented variants are ConfigErrors, not silently ignored', () => {
    const v5 = (extra: Record<string, unknown>) => parseLlamaConfig({ ...tiny, rope_theta: undefined, ...extra } as LlamaConfigInput);
    expect(v5({ rope_parameters: { rope_type: 'default', rope_theta: 123 } }).rope_theta).toBe(123);
    expect(v5({ rope_parameters: { rope_type: 'default' } }).rope_theta).toBe(10000);
    expect(parseLlamaConfig({ ...tiny, rope_parameters: { rope_theta: 500 } } as LlamaConfigInput).rope_theta).toBe(500);
    expect(() => parseLlamaConfig({ ...tiny, rope_parameters: { rope_theta: 7 } } as LlamaConfigInput)).toThrow(/rope_theta \(500\) disagrees with rope_parameters\.rope_theta \(7\)/);
    expect(() => v5({ rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 8 } })).toThrow(ConfigError);
    expect(() => v5({ rope_parameters: { rope_type: 'yarn', rope_theta: 1 } })).toThrow(/rope_parameters\.rope_type/);
    expect(() => v5({ mlp_bias: true })).toThrow(/mlp_bias/);
    expect(() => v5({ use_sliding_window: true })).toThrow(/use_sliding_window/);
    expect(() => v5({ layer_types: ['full_attention', 'sliding_attention', 'full_attention'] })).toThrow(/layer_types/);
    expect(() => v5({ layer_types: ['full_attention'] })).toThrow(/layer_types lists 1 layers, num_hidden_layers is 3/);
    expect(() => v5({ model_type: 'qwen3' })).toThrow(/model_type/);
    expect(() => v5({ model_type: 'mistral', sliding_window: 4096 })).toThrow(/mistral sliding_window = 4096 is not implemented/);
    expect(v5({ model_type: 'mistral', sliding_window: null }).model_type).toBe('mistral');
    expect(v5({ model_type: 'qwen2', sliding_window: 4096, use_sliding_window: false }).attention_bias).toBe(true);
    expect(v5({ mlp_bias: false, use_sliding_window: false, layer_types: ['full_attention', 'full_attention', 'full_attention'] }).num_hidden_layers).toBe(3);
  });

  it('a real HF config.json parses with its unused fields dropped and HF defaults applied', () => {
    const c = parseLlamaConfig({
      architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 576, initializer_range: 0.02,
      intermediate_size: 1536, max_position_embeddings: 2048, model_type: 'llama', num_attention_heads: 9, num_hidden_layers: 30,
      num_key_value_heads: 3, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000, tie_word_embeddings: true,
      torch_dtype: 'bfloat16', transformers_version: '4.40.0', use_cache: true, vocab_size: 49152,
    });
    expect(c.head_dim).toBe(64);
    expect(c.attention_bias).toBe(false);
    expect((c as unknown as Record<string, unknown>)['torch_dtype']).toBeUndefined();
    expect(parseLlamaConfig({ ...tiny, num_key_value_heads: undefined }).num_key_value_heads).toBe(6);
  });

  it('a session with a wrong number of per-layer methods is a ConfigError', () => {
    expect(() => model.createSession({ attention: [denseMethod.create()] })).toThrow(/attention lists 1 methods, the model has 3 layers/);
  });

  it('weights that disagree with the config are ShapeErrors naming the tensor', () => {
    const w = randomWeights(tiny, { seed: 1 });
    const bad = { ...w, norm: new Float32Array(5) };
    expect(() => new LlamaModel(tiny, bad)).toThrow(/model\.norm\.weight must be \[24\] \(24 elements\), has 5/);
    expect(() => new LlamaModel({ ...tiny, num_hidden_layers: 4 }, w)).toThrow(/3 layers, config num_hidden_layers is 4/);
  });

  it('the random-weight generator is deterministic per seed and counts parameters', () => {
    const a = randomWeights(tiny, { seed: 3 });
    const b = randomWeights(tiny, { seed: 3 });
    expect(Array.from(a.layers[2]!.downProj)).toEqual(Array.from(b.layers[2]!.downProj));
    expect(Array.from(a.layers[0]!.inputLayernorm)).toEqual(new Array(24).fill(1));
    const m = createRandomModel(tiny, { seed: 3 });
    // embed + lm_head + norm + 3 × (2 norms + q + k + v + o + gate/up/down)
    expect(m.parameterCount).toBe(2 * 61 * 24 + 24 + 3 * (2 * 24 + 36 * 24 + 2 * 12 * 24 + 24 * 36 + 3 * 40 * 24));
  });

  it('NaN weights surface as a NumericError naming the layer tensor', () => {
    const w = randomWeights(tiny, { seed: 1 });
    w.layers[1]!.qProj[0] = Number.NaN;
    expect(() => new LlamaModel(tiny, w).forward([1, 2])).toThrow(/layer 1 q: non-finite/);
  });

});
