"""Writes the Hugging Face reference fixtures of @sparse-attn/model's tests.

For each tiny config this builds the real `transformers` model class (LlamaForCausalLM,
Qwen2ForCausalLM) in float32 with seeded random weights, saves it with `save_pretrained`
(config.json + model.safetensors, exactly the on-disk layout of a Hub checkpoint), and records
in expected.json what `transformers` computes for a fixed token sequence: the logits of every
position, the hidden state after every decoder layer, and a greedy continuation.

Run from the package folder:  python3 scripts/make-hf-fixtures.py
Needs torch and transformers (pip); the TypeScript tests need neither.
"""
import json
import os

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "src", "__fixtures__")
TOKENS = [3, 17, 42, 8, 8, 61, 0, 25, 33, 12, 5]
NEW_TOKENS = 6

FIXTURES = {
    # GQA 6 query heads over 2 KV heads, explicit head_dim != hidden/heads, untied LM head,
    # a non-default rope_theta and rms_norm_eps: every config field the runtime reads matters.
    "tiny-llama": (
        LlamaForCausalLM,
        LlamaConfig(
            vocab_size=64, hidden_size=24, intermediate_size=40, num_hidden_layers=3,
            num_attention_heads=6, num_key_value_heads=2, head_dim=8, rope_theta=500.0,
            rms_norm_eps=1e-5, tie_word_embeddings=False, max_position_embeddings=256,
            attention_bias=False, bos_token_id=1, eos_token_id=2,
        ),
    ),
    # Qwen2 layout: q/k/v biases, tied embeddings, a single KV head.
    "tiny-qwen2": (
        Qwen2ForCausalLM,
        Qwen2Config(
            vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=1, rope_theta=10000.0,
            rms_norm_eps=1e-6, tie_word_embeddings=True, max_position_embeddings=256,
        ),
    ),
}


def main() -> None:
    torch.manual_seed(0)
    for name, (cls, config) in FIXTURES.items():
        config._attn_implementation = "eager"
        model = cls(config).to(torch.float32).eval()
        # HF's init (std 0.02, unit norms, zero biases) makes near-uniform logits; widen every
        # parameter so RoPE, norms and biases all move the result.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if p.dim() == 1:
                    p.copy_(1.0 + 0.3 * torch.randn_like(p) if "norm" in pname else 0.3 * torch.randn_like(p))
                else:
                    p.copy_(0.25 * torch.randn_like(p))
        folder = os.path.join(OUT, name)
        model.save_pretrained(folder, safe_serialization=True)
        ids = torch.tensor([TOKENS])
        with torch.no_grad():
            out = model(ids, output_hidden_states=True, use_cache=False)
            # An explicit all-ones mask: otherwise generate() infers padding from pad_token_id.
            generated = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=0)
        expected = {
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "tokens": TOKENS,
            "logits": out.logits[0].tolist(),
            # hidden_states[0] is the embedding output, [l + 1] the residual stream after layer l;
            # the last entry has the final norm applied by HF, so it is left out.
            "layerOutputs": [h[0].tolist() for h in out.hidden_states[1:-1]],
            "generated": generated[0, len(TOKENS):].tolist(),
        }
        with open(os.path.join(folder, "expected.json"), "w") as f:
            json.dump(expected, f)
        for extra in ("generation_config.json",):
            path = os.path.join(folder, extra)
            if os.path.exists(path):
                os.remove(path)
        print(name, sorted(os.listdir(folder)))


if __name__ == "__main__":
    main()
