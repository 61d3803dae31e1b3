#!/usr/bin/env python3
"""Writes the Llama reference fixtures that tests/test_llama_reference.cpp compares against.

Each case is a random tiny Llama in Hugging Face layout plus what transformers computes for it:
the token batch, the mean cross-entropy, the logits, the gradients of that loss, and the
parameters after one torch.optim.AdamW step (weight decay on matrices only).

    pip install torch transformers safetensors numpy
    python3 tools/make_reference.py tests/fixtures/llama

The C++ tests need only the files this writes, not Python.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

CASES = {
    # grouped-query attention, untied embeddings, llama3 RoPE scaling, older config layout
    "gqa_untied_llama3": dict(
        config=dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                    rope_theta=500000.0, tie_word_embeddings=False,
                    rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                      high_freq_factor=4.0, original_max_position_embeddings=16)),
        layout="older", shard=None),
    # the same model, sharded with an index file
    "gqa_untied_llama3_sharded": dict(same_as="gqa_untied_llama3", layout="older", shard="24KB"),
    # full multi-head attention, tied embeddings, no scaling, newer config layout (rope_parameters)
    "tied_mha_newer_layout": dict(
        config=dict(vocab_size=80, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                    rope_theta=10000.0, tie_word_embeddings=True),
        layout="newer", shard=None),
}
BATCH, TIME = 2, 8
ADAMW = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-5, weight_decay=0.1)


def newer_layout(cfg):
    """Moves rope_theta and rope_scaling into rope_parameters, as newer transformers write it."""
    params = dict(cfg.pop("rope_scaling", None) or {"rope_type": "default"})
    params["rope_theta"] = cfg.pop("rope_theta")
    params.pop("type", None)
    cfg["rope_parameters"] = params
    return cfg


def build(case_name, spec, out_dir, seed):
    torch.manual_seed(seed)
    config = LlamaConfig(**spec["config"], rms_norm_eps=1e-5, initializer_range=0.1,
                         attn_implementation="eager")
    model = LlamaForCausalLM(config).float()
    # Norm weights away from 1 so that a missing norm weight could not pass unnoticed.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1 + 0.1 * torch.randn_like(p))
    return model


def write_case(name, model, spec, out_dir, tokens):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    if spec["shard"]:
        model.save_pretrained(d, safe_serialization=True, max_shard_size=spec["shard"])
    else:
        model.save_pretrained(d, safe_serialization=True)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    if spec["layout"] == "newer":
        cfg = newer_layout(cfg)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(d, extra)):
            os.remove(os.path.join(d, extra))

    np.save(os.path.join(d, "tokens.npy"), tokens.numpy().astype(np.int64))
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    model.zero_grad()
    logits = model(input_ids=inputs).logits.float()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    np.save(os.path.join(d, "logits.npy"), logits.detach().numpy().astype(np.float32))
    names = {id(p): n for n, p in model.named_parameters()}
    grads = {n: p.grad.detach().clone().contiguous() for n, p in model.named_parameters()}
    save_file(grads, os.path.join(d, "grads.safetensors"))

    params = list(model.named_parameters())
    decay = [p for n, p in params if p.dim() >= 2]
    no_decay = [p for n, p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": ADAMW["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=ADAMW["lr"], betas=ADAMW["betas"], eps=ADAMW["eps"])
    opt.step()
    after = {names[id(p)]: p.detach().clone().contiguous() for _, p in params}
    save_file(after, os.path.join(d, "adamw_step.safetensors"))
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({"loss": float(loss.item()), "adamw": {"lr": ADAMW["lr"], "beta1": ADAMW["betas"][0],
                   "beta2": ADAMW["betas"][1], "eps": ADAMW["eps"], "weight_decay": ADAMW["weight_decay"]},
                   "transformers": __import__("transformers").__version__, "torch": torch.__version__}, f, indent=2)
    print(f"{name}: loss {loss.item():.7f}")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/llama"
    torch.use_deterministic_algorithms(True)
    built = {}
    for i, (name, spec) in enumerate(CASES.items()):
        source = spec.get("same_as", name)
        if source not in built:
            built[source] = build(source, CASES[source], out_dir, seed=1000 + i)
            g = torch.Generator().manual_seed(2000 + i)
            vocab = CASES[source]["config"]["vocab_size"]
            built[source + "/tokens"] = torch.randint(0, vocab, (BATCH, TIME + 1), generator=g)
        # Each case writes from a fresh copy of the source model (AdamW changes parameters).
        model = build(source, CASES[source], out_dir, seed=1000 + list(CASES).index(source))
        write_case(name, model, spec, out_dir, built[source + "/tokens"])


if __name__ == "__main__":
    main()
