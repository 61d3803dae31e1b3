#!/usr/bin/env python3
"""Generates tests/fixtures/test_ops/: inputs, outputs and gradients computed by PyTorch for the
cases of tinygrad's test/backend/test_ops.py whose operations lathe's Tensor API offers.

Each case names its tinygrad test, an op spec both sides understand ("sum 1", "clip -2.3 1.2"),
input shapes (uniform in [low, high), seeded like tinygrad's helper) or explicit values, and
tinygrad's tolerances (|lathe - torch| <= atol + rtol * |torch|, forward and backward). Shaped
inputs come from SplitMix64 (seed: the case's index), uniform in [low, high), which the C++ test
recomputes, so only explicit values, outputs and gradients are stored.
Gradients are of out.sum() with respect to every float input, as in tinygrad's helper_test_op.
Usage: python3 tools/gen_test_ops.py OUT_DIR   (needs torch and numpy)"""
import json, math, struct, sys
import numpy as np
import torch

S2 = (45, 65)
SH4 = (4, 3, 6, 6)
C = []  # (tinygrad test, op spec, shapes or None, vals or None, options)
def case(test, op, shapes=None, vals=None, **opt): C.append((test, op, shapes, vals, opt))

for test, op, shp in [("test_add", "add", (45, 68)), ("test_sub", "sub", S2), ("test_mul", "mul", (64, 64)), ("test_div", "div", S2),
                      ("test_maximum", "maximum", S2), ("test_minimum", "minimum", S2)]:
  case(test, op, [shp, shp]); case(test, op, [(), ()])
case("test_tiny_add", "add", [(3,), (3,)], forward_only=True)
case("test_maximum", "maximum", vals=[[1., 0., 3., -4.], [-1., -2., 3., 0.]])
case("test_minimum", "minimum", vals=[[1., 0., 3., -4.], [-1., -2., 3., 0.]])
case("test_broadcast_full", "add", [(45, 65), (45, 1)]); case("test_broadcast_full", "mul", [(45, 65), (1, 65)])
case("test_broadcast_partial", "sub", [(45, 1, 65), (45, 7, 1)]); case("test_broadcast_partial", "div", [(1, 65), (45, 1)], low=0.5, high=2)
for test, op in [("test_neg", "neg"), ("test_relu", "relu"), ("test_abs", "abs"), ("test_exp", "exp"), ("test_exp2", "exp2"),
                 ("test_sin", "sin"), ("test_cos", "cos"), ("test_tanh", "tanh"), ("test_sigmoid", "sigmoid"), ("test_silu", "silu"),
                 ("test_square", "square"), ("test_sign", "sign"), ("test_erf", "erf")]:
  case(test, op, [S2]); case(test, op, [()])
case("test_gelu", "gelu", [S2]); case("test_gelu", "gelu_tanh", [S2])
for test, op in [("test_log", "log"), ("test_log2", "log2"), ("test_sqrt", "sqrt"), ("test_rsqrt", "rsqrt"), ("test_reciprocal", "reciprocal")]:
  case(test, op, [S2], low=0.5, high=2); case(test, op, [()], low=0.5, high=2)
case("test_log", "log", vals=[[math.inf, 1.0, 2.0]], forward_only=True)
case("test_sqrt", "sqrt", vals=[[0.0, 4.0]], forward_only=True)
case("test_relu_exact", "relu", vals=[[-1., 0., 1.]])
case("test_abs_exact", "abs", vals=[[-1., -0., 0., 1., math.inf, -math.inf]])
case("test_trunc", "trunc", [S2], forward_only=True); case("test_floor", "floor", [S2], forward_only=True)
case("test_trunc", "trunc", vals=[[1.499, 1.5, 1.501, 1.0, 2.1, 0.0, -5.0, -2.499, -2.5, -2.501]], forward_only=True)
case("test_floor", "floor", vals=[[1.499, 1.5, 1.501, 1.0, 2.1, 0.0, -5.0, -2.499, -2.5, -2.501]], forward_only=True)
for lo_hi in ["-2.3 1.2", "0 0", "10 100", "0 0.1", "-0.3 -0.2"]:
  case("test_clip", "clip " + lo_hi, [S2])
case("test_clip", "clip -2.5 1.5", vals=[[-3.0, -2.5, 0, 1.5, 2]])
for e in ["0", "1", "2", "3", "-2"]:
  case("test_pow", "pow " + e, [S2])
case("test_pow", "pow 3", [S2], low=-30, high=-27)
for e in ["1.0", "-1.0", "8.0", "5.5", "-5.5", "2.0"]:
  case("test_pow_const", "pow " + e, [S2], low=0.5, high=2)
case("test_pow_full", "pow_tensor", [S2, S2], low=0.5, high=2)
for shp, axes in [((45, 3), "-"), ((45, 3), "1"), ((45, 65), "0"), ((3, 4, 5, 6), "1 2"), ((3, 4, 5, 6), "0 2"), ((3, 4, 5, 6), "1"), ((), "-")]:
  case("test_sum", "sum " + axes, [shp])
case("test_sum_fake", "sum 1", [(256, 1)])
case("test_sum_twice", "sum_twice 0 1", [(4, 4, 4)])
for shp, axes in [((45, 3), "-"), ((45, 3), "1"), ((3, 4, 5, 6), "1 2"), ((3, 4, 5, 6), "0")]:
  case("test_max", "max " + axes, [shp]); case("test_min", "min " + axes, [shp])
for shp, axes in [((3, 4, 5, 6), "-"), ((3, 4, 5, 6), "1 2"), ((45, 3), "0")]:
  case("test_mean", "mean " + axes, [shp])
case("test_mean_axis", "mean 1 2", [(3, 4, 5, 6)])
for shp, axes in [((15, 25, 35), "-"), ((15, 25, 35), "0"), ((15, 25, 35), "1 2")]:
  case("test_var", "var " + axes, [shp]); case("test_std", "std " + axes, [shp])
case("test_argmax", "argmax 0", [(10, 20)], forward_only=True); case("test_argmax", "argmax 1", [(10, 20)], forward_only=True)
case("test_argmin", "argmin 0", [(10, 20)], forward_only=True); case("test_argmin", "argmin 1", [(10, 20)], forward_only=True)
case("test_matmul", "matmul", [(65,), (65, 99)], atol=1e-4); case("test_matmul", "matmul", [(65, 99), (99,)], atol=1e-4)
case("test_gemm", "matmul", [(64, 64), (64, 64)], atol=1e-3); case("test_small_gemm", "matmul", [(8, 8), (8, 8)], atol=1e-3)
case("test_broadcastdot", "matmul", [(10, 45, 65), (65, 45)], atol=1e-4)
case("test_dot", "matmul", [(45, 65), (65, 100)], atol=1e-4); case("test_dot", "matmul", [(2, 45, 65), (2, 65, 100)], atol=1e-4)  # batch 8 in tinygrad
for spec in ["-1 1 6 6", "4 3 6 6", "4 108"]:
  case("test_reshape", "reshape " + spec, [SH4])
for spec in ["3 0 2 1", "3 2 1 0"]:
  case("test_permute", "permute " + spec, [SH4])
case("test_transpose", "transpose 1 2", [(3, 3, 3)]); case("test_transpose", "transpose 0 1", [(21, 22)])
for spec in ["4 3 2 6", "6 1 4 3 2 6"]:
  case("test_expand", "expand " + spec, [(4, 3, 1, 6)])
case("test_expand", "expand 4 3 2 6", [(1, 1, 1, 1)])
for spec in ["0", "0 1", "0 1 3", "3", "-1"]:
  case("test_flip", "flip " + spec, [SH4])
case("test_squeeze", "squeeze 0", [(1, 3, 6, 6)]); case("test_squeeze", "squeeze -1", [(4, 3, 6, 1)]); case("test_squeeze", "squeeze", [(2, 3, 1)])
for ax in ["0", "4", "-1", "-3"]:
  case("test_unsqueeze", "unsqueeze " + ax, [SH4])
for spec in ["0 -1", "1 -1", "2 -1", "0 1", "1 3"]:
  case("test_flatten", "flatten " + spec, [SH4])
case("test_repeat", "repeat 2 4 3", [(4, 6, 3)]); case("test_repeat", "repeat 2 4 3 4", [(4, 6, 3)])
for dim in ["-2", "-1", "0", "1", "2"]:  # tinygrad's (45, 65, 9), smaller to keep the data small
  case("test_cat", "cat " + dim, [(9, 13, 9)] * 3)
for dim in ["-1", "0", "1", "2"]:
  case("test_stack", "stack " + dim, [(5, 6, 3)] * 3)
case("test_pad", "pad 1 2 3 4", [(3, 3)]); case("test_pad", "pad 0 0 2 3", [(3, 3)]); case("test_simple_padding", "pad 1 1 1 1", [(3, 3)])
case("test_padding_add", "padding_add", [(64, 64), (60, 60)])
case("test_shrink", "shrink 1 2 0 3", [(4, 3)]); case("test_slice_in_bounds_1dim", "slice 0 1 3", [(3,)])
case("test_slice_stride", "slice 1 0 9 2", [(3, 9)]); case("test_slice_stride_neg", "slice 1 8 - -3", [(3, 9)])
case("test_where", "where_gt", [(10, 10), (10, 10), (10, 10)], forward_only=True)
case("test_where", "where_gt", [(8,), (1,), (1,)], forward_only=True)
for test, op in [("test_cmp_lt", "lt"), ("test_cmp_gt", "gt"), ("test_cmp_le", "le"), ("test_cmp_ge", "ge"), ("test_cmp_eq", "eq"), ("test_cmp_ne", "ne")]:
  case(test, op, [(3, 4, 5), (3, 4, 5)], forward_only=True); case(test, op, [(3, 4, 5), (5,)], forward_only=True)
  case(test, op, vals=[[0., 1, 2], [2., 1, 0]], forward_only=True)
case("test_softmax", "softmax -1", [(45, 65)]); case("test_softmax", "softmax 0", [(45, 65)]); case("test_softmax", "softmax -1", [(3, 4, 5)])
case("test_log_softmax", "log_softmax -1", [(45, 65)]); case("test_log_softmax", "log_softmax 0", [(45, 65)])
case("test_cross_entropy", "cross_entropy", [(32, 10)], atol=1e-5)

def torch_op(op, ts):
  name, *a = op.split()
  ax = lambda: None if a == ["-"] or not a else tuple(int(x) for x in a)
  x = ts[0]
  unary = {"neg": torch.neg, "relu": torch.relu, "abs": torch.abs, "exp": torch.exp, "exp2": torch.exp2, "sin": torch.sin, "cos": torch.cos,
           "tanh": torch.tanh, "sigmoid": torch.sigmoid, "silu": torch.nn.functional.silu, "square": torch.square, "sign": torch.sign,
           "erf": torch.erf, "log": torch.log, "log2": torch.log2, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt, "reciprocal": torch.reciprocal,
           "trunc": torch.trunc, "floor": torch.floor, "gelu": torch.nn.functional.gelu}
  if name in unary: return unary[name](x)
  if name == "gelu_tanh": return torch.nn.functional.gelu(x, approximate="tanh")
  binary = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "maximum": torch.maximum, "minimum": torch.minimum,
            "matmul": torch.matmul, "pow_tensor": torch.pow, "lt": torch.lt, "gt": torch.gt, "le": torch.le, "ge": torch.ge, "eq": torch.eq, "ne": torch.ne}
  if name in binary: return binary[name](x, ts[1])
  if name == "clip": return x.clip(float(a[0]), float(a[1]))
  if name == "pow": return x ** float(a[0])
  if name in ("sum", "max", "min", "mean"):
    if ax() is None: return getattr(x, name)()
    if name in ("max", "min"): return torch.amax(x, ax()) if name == "max" else torch.amin(x, ax())
    return getattr(x, name)(ax())
  if name == "sum_twice": return x.sum(ax()).sum()
  if name in ("var", "std"): return getattr(x, name)() if ax() is None else getattr(x, name)(ax())
  if name in ("argmax", "argmin"): return getattr(x, name)(int(a[0])).type(torch.int32)
  if name == "reshape": return x.reshape(ax())
  if name == "permute": return x.permute(ax())
  if name == "transpose": return x.transpose(int(a[0]), int(a[1]))
  if name == "expand": return x.expand(ax())
  if name == "flip": return x.flip(ax())
  if name == "squeeze": return x.squeeze() if not a else x.squeeze(int(a[0]))
  if name == "unsqueeze": return x.unsqueeze(int(a[0]))
  if name == "flatten": return x.flatten(int(a[0]), int(a[1]))
  if name == "repeat": return x.repeat(*ax())
  if name == "cat": return torch.cat(ts, int(a[0]))
  if name == "stack": return torch.stack(ts, int(a[0]))
  if name == "pad": return torch.nn.functional.pad(x, (int(a[2]), int(a[3]), int(a[0]), int(a[1])))  # lathe order: axis 0 first
  if name == "padding_add": return x + torch.nn.functional.pad(ts[1], (2, 2, 2, 2))
  if name == "shrink": return x[int(a[0]):int(a[1]), int(a[2]):int(a[3])]
  if name == "slice":
    axis, start, stop = int(a[0]), None if a[1] == "-" else int(a[1]), None if a[2] == "-" else int(a[2])
    step = int(a[3]) if len(a) > 3 else 1
    if step < 0:  # torch has no negative steps: flip, then the equivalent forward slice
      n = x.shape[axis]; idx = list(range(n))[slice(start, stop, step)]
      return x.index_select(axis, torch.tensor(idx))
    return x[(slice(None),) * axis + (slice(start, stop, step),)]
  if name == "where_gt": return torch.where(x > 0.5, ts[1], ts[2])
  if name == "softmax": return torch.softmax(x, int(a[0]))
  if name == "log_softmax": return torch.log_softmax(x, int(a[0]))
  if name == "cross_entropy": return torch.nn.functional.cross_entropy(x, torch.arange(x.shape[0]) % x.shape[1])
  raise ValueError(op)

def uniform(state, low, high, shape):
  """SplitMix64 draws, one per element: low + (high - low) * (top 53 bits / 2^53), as float32."""
  n = int(np.prod(shape)) if shape else 1
  out = np.empty(n, dtype=np.float32)
  mask = (1 << 64) - 1
  for j in range(n):
    state[0] = (state[0] + 0x9E3779B97F4A7C15) & mask
    z = state[0]
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    out[j] = low + (high - low) * ((z >> 11) / 9007199254740992.0)
  return out.reshape(shape)

def main(out):
  manifest, tensors = [], []
  for i, (test, op, shapes, vals, opt) in enumerate(C):
    fwd_only = opt.get("forward_only", False)
    if shapes is not None:
      state = [i]
      data = [uniform(state, opt.get("low", -2), opt.get("high", 2), s) for s in shapes]
    else:
      data = [np.array(v, dtype=np.float32) for v in vals]
    ts = [torch.tensor(d, requires_grad=not fwd_only) for d in data]
    y = torch_op(op, ts)
    if shapes is None:
      for k, d in enumerate(data): tensors.append((f"{i}.in{k}", d))
    yv = y.detach().numpy()
    tensors.append((f"{i}.out", yv.astype(np.float32) if yv.dtype != np.int32 else yv))
    grads = False
    if not fwd_only and y.dtype.is_floating_point:
      gs = torch.autograd.grad(y.sum(), ts, allow_unused=True)
      for k, g in enumerate(gs): tensors.append((f"{i}.grad{k}", (g if g is not None else torch.zeros_like(ts[k])).numpy()))
      grads = True
    manifest.append({"test": test, "op": op, "inputs": len(data), "grads": grads, "shapes": [list(s) for s in shapes] if shapes else None,
                     "low": opt.get("low", -2), "high": opt.get("high", 2), "out_dtype": "bool" if y.dtype == torch.bool else str(yv.dtype),
                     "atol": opt.get("atol", 1e-6), "rtol": opt.get("rtol", 1e-3), "grad_atol": opt.get("grad_atol", 1e-4), "grad_rtol": opt.get("grad_rtol", 1e-3)})
  header, blobs, off = {}, [], 0
  for name, arr in tensors:
    arr = np.array(arr.astype(np.float32) if arr.dtype == np.bool_ else arr, order="C")  # 0-d stays 0-d
    raw = arr.tobytes(); dt = {"float32": "F32", "int32": "I32", "int64": "I64"}[str(arr.dtype)]
    header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}; blobs.append(raw); off += len(raw)
  text = json.dumps(header).encode(); text += b" " * ((8 - len(text) % 8) % 8)
  with open(out + "/cases.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text))); f.write(text)
    for b in blobs: f.write(b)
  tests = sorted({c["test"] for c in manifest})
  json.dump({"torch": torch.__version__, "tinygrad_tests": tests, "cases": manifest}, open(out + "/cases.json", "w"), indent=0)
  print(f"{len(manifest)} cases from {len(tests)} tinygrad tests, {off / 1e6:.1f} MB")

if __name__ == "__main__":
  main(sys.argv[1])
