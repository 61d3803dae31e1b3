"""PyTorch anchors for `lathe bench`: the same operations, timed the same way (best of N after a
warm-up), printed as one JSON object of seconds. Usage: bench_torch.py DEVICE REPEAT SPEC...
where SPEC is matmul:N, matmul_bf16:N, elementwise:N, softmax:ROWSxCOLS, attention:BxHxTxD or attention_bwd:BxHxTxD."""
import json, math, sys, time
import torch
import torch.nn.functional as F

device, repeat, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
torch.backends.cuda.matmul.allow_tf32 = False
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

def best(f):
    f(); sync()
    t = 1e30
    for _ in range(repeat):
        s = time.perf_counter(); f(); sync(); t = min(t, time.perf_counter() - s)
    return t

def attention(q, k, v):
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(s.shape[-2:], dtype=torch.bool, device=s.device).tril()
    return s.masked_fill(~mask, float("-inf")).softmax(-1) @ v

out = {"torch": torch.__version__}
for spec in specs:
    kind, dims = spec.split(":")
    n = [int(x) for x in dims.split("x")]
    if kind == "matmul":
        a, b = torch.rand(n[0], n[0], device=device), torch.rand(n[0], n[0], device=device)
        out[spec] = best(lambda: a @ b)
    elif kind == "matmul_bf16":
        a, b = (torch.rand(n[0], n[0], device=device).to(torch.bfloat16) for _ in range(2))
        out[spec] = best(lambda: a @ b)
    elif kind == "elementwise":
        x = torch.rand(n[0], device=device)
        out[spec] = best(lambda: x * 2 + 1)
    elif kind == "softmax":
        x = torch.rand(n[0], n[1], device=device)
        out[spec] = best(lambda: x.softmax(-1))
    elif kind in ("attention", "attention_bwd"):
        q, k, v = (torch.rand(*n, device=device, requires_grad=kind == "attention_bwd") for _ in range(3))
        if kind == "attention":
            with torch.no_grad(): out[spec] = best(lambda: attention(q, k, v))
        else:
            g = torch.rand(*n, device=device)  # an output gradient that varies, as in training
            out[spec] = best(lambda: attention(q, k, v).backward(g))
print(json.dumps(out))
