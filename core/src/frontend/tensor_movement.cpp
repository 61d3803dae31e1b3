// Movement: every method here becomes RESHAPE/PERMUTE/EXPAND/PAD/SHRINK/FLIP nodes, which
// the lowering turns into index arithmetic; none of them costs a kernel.
#include <algorithm>

#include "lathe/tensor.h"
#include "tensor_impl.h"

namespace lathe {

Tensor Tensor::reshape(Shape s) const {
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      check(infer < 0, [&] { return "reshape: more than one -1 in " + to_string(s); });
      infer = static_cast<int>(i);
    } else {
      check(s[i] >= 0, [&] { return "reshape: negative extent in " + to_string(s); });
      known *= s[i];
    }
  }
  if (infer >= 0) {
    check(known > 0 && numel() % known == 0, [&] { return "reshape: cannot infer -1 in " + to_string(s) + " for " + to_string(shape()); });
    s[infer] = numel() / known;
  }
  return wrap(node_reshape(node(), s));
}

Tensor Tensor::permute(std::vector<int> order) const {
  std::vector<int64_t> o;
  for (int a : order) o.push_back(normalize_axis(a, ndim(), "permute"));
  return wrap(node_permute(node(), o));
}

Tensor Tensor::transpose(int a, int b) const {
  a = normalize_axis(a, ndim(), "transpose");
  b = normalize_axis(b, ndim(), "transpose");
  std::vector<int> order(ndim());
  for (size_t i = 0; i < ndim(); ++i) order[i] = static_cast<int>(i);
  std::swap(order[a], order[b]);
  return permute(order);
}

Tensor Tensor::expand(Shape s) const {
  check(s.size() >= ndim(), [&] { return "expand: " + to_string(shape()) + " has more axes than " + to_string(s); });
  Shape padded(s.size() - ndim(), 1);
  padded.insert(padded.end(), shape().begin(), shape().end());
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == -1) s[i] = padded[i];
  Tensor x = padded == shape() ? *this : reshape(padded);
  return wrap(node_expand(x.node(), s));
}

Tensor Tensor::broadcast_to(const Shape& s) const {
  if (s == shape()) return *this;
  Shape b = broadcast_shapes(shape(), s, "broadcast_to");
  check(b == s, [&] { return "broadcast_to: " + to_string(shape()) + " cannot broadcast to " + to_string(s); });
  return expand(s);
}

Tensor Tensor::pad(const std::vector<std::pair<int64_t, int64_t>>& pads, Scalar value) const {
  Tensor padded = wrap(node_pad(node(), pads));
  if (value.value == 0) return padded;
  // Non-zero fill: pad a mask of ones alongside and select.
  Tensor inside = wrap(node_pad(Tensor::full(shape(), 1, DType::Bool, device()).node(), pads));
  return where(inside, padded, padded.scalar_like(value));
}

Tensor Tensor::shrink(const std::vector<std::pair<int64_t, int64_t>>& ranges) const {
  return wrap(node_shrink(node(), ranges));
}

Tensor Tensor::slice(int axis, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) const {
  int a = normalize_axis(axis, ndim(), "slice");
  int64_t n = shape()[a];
  check(step != 0, [&] { return "slice: step must not be zero"; });
  auto clampi = [](int64_t v, int64_t lo, int64_t hi) { return std::max(lo, std::min(v, hi)); };
  auto norm = [&](int64_t v) { return v < 0 ? v + n : v; };
  Tensor x = *this;
  int64_t b, e, count;
  if (step > 0) {
    b = start ? clampi(norm(*start), 0, n) : 0;
    e = stop ? clampi(norm(*stop), 0, n) : n;
    count = e > b ? (e - b + step - 1) / step : 0;
  } else {
    // Walk backwards: flip, then slice forwards.
    int64_t hi = start ? clampi(norm(*start), -1, n - 1) : n - 1;
    int64_t lo = stop ? clampi(norm(*stop), -1, n - 1) : -1;
    x = x.flip({a});
    b = n - 1 - hi;
    e = n - 1 - lo;
    step = -step;
    count = e > b ? (e - b + step - 1) / step : 0;
  }
  std::vector<std::pair<int64_t, int64_t>> r;
  for (size_t i = 0; i < ndim(); ++i) r.push_back({0, shape()[i]});
  if (step == 1) {
    r[a] = {b, b + count};
    return x.shrink(r);
  }
  // Strided: take count*step elements (padding the tail), fold into [count, step], keep column 0.
  int64_t need = count * step;
  r[a] = {b, std::min(b + need, n)};
  x = x.shrink(r);
  int64_t have = x.shape()[a];
  if (have < need) {
    std::vector<std::pair<int64_t, int64_t>> p(ndim(), {0, 0});
    p[a] = {0, need - have};
    x = x.pad(p);
  }
  Shape folded;
  for (size_t i = 0; i < ndim(); ++i) {
    if (static_cast<int>(i) == a) {
      folded.push_back(count);
      folded.push_back(step);
    } else {
      folded.push_back(shape()[i]);
    }
  }
  x = x.reshape(folded);
  std::vector<std::pair<int64_t, int64_t>> keep;
  for (size_t i = 0; i < folded.size(); ++i) keep.push_back({0, folded[i]});
  keep[a + 1] = {0, 1};
  Shape out = shape();
  out[a] = count;
  return x.shrink(keep).reshape(out);
}

Tensor Tensor::select(int axis, int64_t index) const {
  int a = normalize_axis(axis, ndim(), "select");
  int64_t n = shape()[a];
  check(index >= -n && index < n, [&] { return "select: index " + std::to_string(index) + " is out of range for axis " +
                                      std::to_string(a) + " of " + to_string(shape()); });
  if (index < 0) index += n;
  return slice(a, index, index + 1).squeeze(a);
}

Tensor Tensor::flip(const Axes& axes) const {
  std::vector<int64_t> a;
  for (int x : axes) a.push_back(normalize_axis(x, ndim(), "flip"));
  return wrap(node_flip(node(), a));
}

Tensor Tensor::squeeze(std::optional<int> axis) const {
  Shape s;
  if (axis) {
    int a = normalize_axis(*axis, ndim(), "squeeze");
    for (size_t i = 0; i < ndim(); ++i)
      if (static_cast<int>(i) != a || shape()[i] != 1) s.push_back(shape()[i]);
  } else {
    for (int64_t d : shape())
      if (d != 1) s.push_back(d);
  }
  return reshape(s);
}

Tensor Tensor::unsqueeze(int axis) const {
  int a = normalize_axis(axis, ndim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + a, 1);
  return reshape(s);
}

Tensor Tensor::flatten(int start, int end) const {
  if (ndim() == 0) return reshape({1});
  start = normalize_axis(start, ndim(), "flatten");
  end = normalize_axis(end, ndim(), "flatten");
  check(start <= end, [&] { return "flatten: start axis " + std::to_string(start) + " is after end axis " + std::to_string(end); });
  Shape s(shape().begin(), shape().begin() + start);
  int64_t n = 1;
  for (int i = start; i <= end; ++i) n *= shape()[i];
  s.push_back(n);
  s.insert(s.end(), shape().begin() + end + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::repeat(const std::vector<int64_t>& times) const {
  check(times.size() >= ndim(), [&] { return "repeat: needs at least one count per axis of " + to_string(shape()); });
  Tensor x = *this;
  Shape base(times.size() - ndim(), 1);
  base.insert(base.end(), shape().begin(), shape().end());
  Shape inter, expanded, out;
  for (size_t i = 0; i < base.size(); ++i) {
    inter.push_back(1);
    inter.push_back(base[i]);
    expanded.push_back(times[i]);
    expanded.push_back(base[i]);
    out.push_back(times[i] * base[i]);
  }
  return x.reshape(inter).expand(expanded).reshape(out);
}

Tensor Tensor::cat(const std::vector<Tensor>& ts, int axis) {
  check(!ts.empty(), [&] { return "cat: no tensors given"; });
  int a = normalize_axis(axis, ts[0].ndim(), "cat");
  int64_t total = 0;
  DType t = ts[0].dtype();
  for (size_t i = 0; i < ts.size(); ++i) {
    check(ts[i].ndim() == ts[0].ndim(), [&] { return "cat: tensor " + std::to_string(i) + " has shape " + to_string(ts[i].shape()) +
                                            ", tensor 0 has " + to_string(ts[0].shape()); });
    for (size_t d = 0; d < ts[0].ndim(); ++d)
      check(static_cast<int>(d) == a || ts[i].shape()[d] == ts[0].shape()[d],
            [&] { return "cat: shapes " + to_string(ts[0].shape()) + " and " + to_string(ts[i].shape()) + " differ outside axis " + std::to_string(a); });
    total += ts[i].shape()[a];
    t = promote(t, ts[i].dtype());
  }
  // Each piece padded into its place along the axis; the sum is one fused kernel.
  Tensor out;
  int64_t offset = 0;
  for (auto& x : ts) {
    std::vector<std::pair<int64_t, int64_t>> p(x.ndim(), {0, 0});
    p[a] = {offset, total - offset - x.shape()[a]};
    Tensor piece = x.cast(t).pad(p);
    out = out.defined() ? (t == DType::Bool ? out.logical_or(piece) : out + piece) : piece;
    offset += x.shape()[a];
  }
  return out;
}

Tensor Tensor::stack(const std::vector<Tensor>& ts, int axis) {
  check(!ts.empty(), [&] { return "stack: no tensors given"; });
  std::vector<Tensor> u;
  for (auto& x : ts) {
    check(x.shape() == ts[0].shape(), [&] { return "stack: shapes " + to_string(ts[0].shape()) + " and " + to_string(x.shape()) + " differ"; });
    u.push_back(x.unsqueeze(axis));
  }
  return cat(u, axis);
}

Tensor Tensor::matmul(const Tensor& o) const {
  check(ndim() >= 1 && o.ndim() >= 1, [&] { return "matmul: operands must have at least one axis, got " + to_string(shape()) + " and " + to_string(o.shape()); });
  Tensor a = ndim() == 1 ? unsqueeze(0) : *this;
  Tensor b = o.ndim() == 1 ? o.unsqueeze(1) : o;
  int64_t k = a.shape().back();
  check(b.shape()[b.ndim() - 2] == k, [&] { return "matmul: " + to_string(shape()) + " @ " + to_string(o.shape()) +
                                          ": inner dimensions " + std::to_string(k) + " and " +
                                          std::to_string(b.shape()[b.ndim() - 2]) + " differ"; });
  // a[..., M, 1, K] * b^T[..., 1, N, K] summed over K: one fused multiply-reduce. 16-bit
  // operands are multiplied and summed in float32 and the result rounded once, as PyTorch's
  // matmul and matrix units do (rounding every product cost accuracy and vectorization).
  const DType out = promote(a.dtype(), b.dtype());
  const bool narrow = out == DType::BFloat16 || out == DType::Float16;
  if (narrow) a = a.cast(DType::Float32), b = b.cast(DType::Float32);
  Tensor bt = b.transpose(-1, -2);
  Tensor prod = a.unsqueeze(-2) * bt.unsqueeze(-3);
  Tensor r = prod.sum({-1});
  if (narrow) r = r.cast(out);
  if (ndim() == 1) r = r.squeeze(-2);
  if (o.ndim() == 1) r = r.squeeze(-1);
  return r;
}

}  // namespace lathe
