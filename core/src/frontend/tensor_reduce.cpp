// Reductions: REDUCE ADD / MAX plus elementwise ops.
#include <algorithm>
#include <cmath>

#include "lathe/tensor.h"
#include "tensor_impl.h"

namespace lathe {
namespace {

std::vector<int64_t> resolve_axes(const Axes& axes, size_t ndim, const char* op) {
  std::vector<int64_t> out;
  if (axes.empty())
    for (size_t i = 0; i < ndim; ++i) out.push_back(static_cast<int64_t>(i));
  for (int a : axes) {
    int64_t n = normalize_axis(a, ndim, op);
    if (std::find(out.begin(), out.end(), n) != out.end())
      throw Error(std::string(op) + ": axis " + std::to_string(a) + " is given twice");
    out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Shape drop_axes(const Shape& s, const std::vector<int64_t>& axes) {
  Shape out;
  for (size_t i = 0; i < s.size(); ++i)
    if (std::find(axes.begin(), axes.end(), static_cast<int64_t>(i)) == axes.end()) out.push_back(s[i]);
  return out;
}

int64_t count(const Shape& s, const std::vector<int64_t>& axes) {
  int64_t n = 1;
  for (int64_t a : axes) n *= s[a];
  return n;
}

}  // namespace

Tensor Tensor::reduce_op(Op op, const Axes& axes_in, bool keepdim, const char* name) const {
  std::vector<int64_t> axes = resolve_axes(axes_in, ndim(), name);
  Tensor x = *this;
  // Sums of bools count; sums of small integers widen, as in PyTorch (to int32 here).
  if (op == Op::Add && (dtype() == DType::Bool || dtype() == DType::UInt8)) x = x.cast(DType::Int32);
  for (int64_t a : axes)
    check(shape()[a] > 0 || op == Op::Add, [&] { return std::string(name) + ": cannot reduce an empty axis of " + to_string(shape()); });
  // A large reduction to a few values would run on a handful of threads or work-items: split it
  // into rows of kChunk reduced in parallel, then reduce the row results.
  constexpr int64_t kChunk = 4096;
  int64_t kept = 1, reduced = 1;
  for (size_t d = 0; d < ndim(); ++d) (std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end() ? reduced : kept) *= shape()[d];
  if (kept == 1 && reduced >= 8 * kChunk) {
    int64_t rows = (reduced + kChunk - 1) / kChunk;
    double identity = op == Op::Add ? 0.0 : (is_float(x.dtype()) ? -INFINITY : (x.dtype() == DType::Int64 ? -9.2e18 : -2147483648.0));
    Tensor flat = x.reshape({reduced}).pad({{0, rows * kChunk - reduced}}, identity).reshape({rows, kChunk});
    Tensor partial = wrap(node_reduce(flat.node(), op, {1}));
    Tensor total = wrap(node_reduce(partial.node(), op, {0}));
    Shape out = keepdim ? Shape(ndim(), 1) : Shape{};
    return total.reshape(out);
  }
  Tensor r = wrap(node_reduce_in_stages(x.node(), op, axes));
  return keepdim ? r : r.reshape(drop_axes(shape(), axes));
}

Tensor Tensor::sum(const Axes& axes, bool keepdim) const { return reduce_op(Op::Add, axes, keepdim, "sum"); }
Tensor Tensor::max(const Axes& axes, bool keepdim) const { return reduce_op(Op::Max, axes, keepdim, "max"); }
Tensor Tensor::min(const Axes& axes, bool keepdim) const {
  if (dtype() == DType::Bool) return logical_not().max(axes, keepdim).logical_not();
  return neg().max(axes, keepdim).neg();
}

Tensor Tensor::mean(const Axes& axes, bool keepdim) const {
  int64_t n = count(shape(), resolve_axes(axes, ndim(), "mean"));
  Tensor x = is_float(dtype()) ? *this : cast(kDefaultFloat);
  return x.sum(axes, keepdim) * (1.0 / static_cast<double>(std::max<int64_t>(n, 1)));
}

Tensor Tensor::var(const Axes& axes, bool keepdim, int64_t correction) const {
  int64_t n = count(shape(), resolve_axes(axes, ndim(), "var"));
  Tensor x = is_float(dtype()) ? *this : cast(kDefaultFloat);
  Tensor centered = x - x.mean(axes, true);
  return centered.square().sum(axes, keepdim) * (1.0 / static_cast<double>(std::max<int64_t>(n - correction, 0)));
}

Tensor Tensor::std(const Axes& axes, bool keepdim, int64_t correction) const { return var(axes, keepdim, correction).sqrt(); }

Tensor Tensor::argmax(std::optional<int> axis, bool keepdim) const {
  if (!axis) return flatten().argmax(0, false);
  int a = normalize_axis(*axis, ndim(), "argmax");
  int64_t n = shape()[a];
  check(n > 0, [&] { return "argmax: axis " + std::to_string(a) + " of " + to_string(shape()) + " is empty"; });
  // The first maximum wins: weight each hit by n - index, take the largest weight.
  Shape idx_shape(ndim(), 1);
  idx_shape[a] = n;
  Tensor weights = arange(static_cast<double>(n), 0, -1, DType::Int32, device()).reshape(idx_shape);
  Tensor hits = eq(max({a}, true)).cast(DType::Int32) * weights;
  Tensor best = hits.max({a}, keepdim);
  return (best.scalar_like(static_cast<int>(n)) - best).cast(DType::Int32);
}

Tensor Tensor::argmin(std::optional<int> axis, bool keepdim) const {
  if (dtype() == DType::Bool) return logical_not().argmax(axis, keepdim);
  return neg().argmax(axis, keepdim);
}

}  // namespace lathe
