"""PyTorch anchor for `lathe bench --llama`: one training step of transformers' LlamaForCausalLM with
the sizes lathe passes (random weights, random tokens, fused AdamW, gradient clipping), timed as
lathe times its own (best of REPEAT after three warm-up steps). Usage:
bench_llama_torch.py DEVICE REPEAT PRECISION SEQ BATCH CONFIG_JSON; PRECISION fp32 (TF32 off) or bf16
(autocast, float32 master weights). Prints one JSON object; "oom" names the stage that ran out."""
import json, sys, time
import torch
from transformers import LlamaConfig, LlamaForCausalLM

device, repeat, precision, seq, batch, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6])
torch.backends.cuda.matmul.allow_tf32 = False
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
out = {"torch": torch.__version__}
try:
    stage = "model"
    cfg = LlamaConfig(attn_implementation="sdpa", max_position_embeddings=max(seq, 2048), **sizes)
    with torch.device(device):  # initialized where it runs: an 8B model's init on the host takes minutes
        model = LlamaForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, fused=device == "cuda")
    x = torch.randint(0, sizes["vocab_size"], (batch, seq + 1), device=device)

    def step():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(input_ids=x[:, :seq], labels=x[:, 1:]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()  # waits for the device, as lathe's step does

    stage = "step"
    for _ in range(3):
        step()
    best = 1e30
    for _ in range(repeat):
        sync(); t = time.perf_counter(); step(); sync(); best = min(best, time.perf_counter() - t)
    out["step_s"] = best
except torch.cuda.OutOfMemoryError:
    out["oom"] = stage
if device == "cuda":
    out["peak_bytes"] = torch.cuda.max_memory_allocated()
print(json.dumps(out), flush=True)
