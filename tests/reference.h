// Float64 reference arrays for the tests: plain loops over row-major data, no lathe code.
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "lathe/tensor.h"

namespace ref {

using lathe::Shape;

struct Array {
  Shape shape;
  std::vector<double> v;
  int64_t size() const { return static_cast<int64_t>(v.size()); }
};

inline std::vector<int64_t> strides(const Shape& s) { return lathe::contiguous_strides(s); }

inline std::vector<int64_t> unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {
    idx[d] = s[d] ? i % s[d] : 0;
    i = s[d] ? i / s[d] : 0;
  }
  return idx;
}

inline Array random(const Shape& s, std::mt19937& rng, double lo = -2, double hi = 2) {
  std::uniform_real_distribution<double> dist(lo, hi);
  Array a{s, std::vector<double>(static_cast<size_t>(lathe::numel(s)))};
  for (auto& x : a.v) x = static_cast<float>(dist(rng));  // exactly representable in float32
  return a;
}

inline lathe::Tensor tensor(const Array& a, lathe::DType dtype = lathe::DType::Float32) {
  return lathe::Tensor::from_vector(std::vector<float>(a.v.begin(), a.v.end()), a.shape, lathe::DType::Float32).cast(dtype);
}

inline Array unary(const Array& a, const std::function<double(double)>& f) {
  Array r = a;
  for (auto& x : r.v) x = f(x);
  return r;
}

inline Array binary(const Array& a, const Array& b, const std::function<double(double, double)>& f) {
  Shape out = lathe::broadcast_shapes(a.shape, b.shape, "ref");
  Array r{out, std::vector<double>(static_cast<size_t>(lathe::numel(out)))};
  auto at = [&](const Array& x, const std::vector<int64_t>& idx) {
    int64_t off = 0;
    auto st = strides(x.shape);
    size_t lead = out.size() - x.shape.size();
    for (size_t d = 0; d < x.shape.size(); ++d) off += (x.shape[d] == 1 ? 0 : idx[d + lead]) * st[d];
    return x.v[off];
  };
  for (int64_t i = 0; i < r.size(); ++i) {
    auto idx = unravel(i, out);
    r.v[i] = f(at(a, idx), at(b, idx));
  }
  return r;
}

inline Array reduce(const Array& a, std::vector<int> axes, bool keepdim, double init,
                    const std::function<double(double, double)>& f) {
  if (axes.empty())
    for (size_t d = 0; d < a.shape.size(); ++d) axes.push_back(static_cast<int>(d));
  for (auto& x : axes) x = x < 0 ? x + static_cast<int>(a.shape.size()) : x;
  Shape kept = a.shape;
  for (int x : axes) kept[x] = 1;
  Array r{kept, std::vector<double>(static_cast<size_t>(lathe::numel(kept)), init)};
  auto ks = strides(kept);
  for (int64_t i = 0; i < a.size(); ++i) {
    auto idx = unravel(i, a.shape);
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += (kept[d] == 1 ? 0 : idx[d]) * ks[d];
    r.v[off] = f(r.v[off], a.v[i]);
  }
  if (!keepdim) {
    Shape s;
    for (size_t d = 0; d < a.shape.size(); ++d)
      if (std::find(axes.begin(), axes.end(), static_cast<int>(d)) == axes.end()) s.push_back(a.shape[d]);
    r.shape = s;
  }
  return r;
}

inline Array permute(const Array& a, const std::vector<int>& order) {
  Shape out;
  for (int o : order) out.push_back(a.shape[o]);
  Array r{out, std::vector<double>(a.v.size())};
  auto st = strides(a.shape);
  for (int64_t i = 0; i < r.size(); ++i) {
    auto idx = unravel(i, out);
    int64_t off = 0;
    for (size_t d = 0; d < order.size(); ++d) off += idx[d] * st[order[d]];
    r.v[i] = a.v[off];
  }
  return r;
}

// Element (index) of a along `axis` for each position of the output; builds gathers generally.
inline Array gather_axis(const Array& a, int axis, const std::vector<int64_t>& src_index, double fill = 0) {
  Shape out = a.shape;
  out[axis] = static_cast<int64_t>(src_index.size());
  Array r{out, std::vector<double>(static_cast<size_t>(lathe::numel(out)))};
  auto st = strides(a.shape);
  for (int64_t i = 0; i < r.size(); ++i) {
    auto idx = unravel(i, out);
    int64_t s = src_index[idx[axis]];
    if (s < 0 || s >= a.shape[axis]) {
      r.v[i] = fill;
      continue;
    }
    idx[axis] = s;
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * st[d];
    r.v[i] = a.v[off];
  }
  return r;
}

inline Array matmul(const Array& a, const Array& b) {  // 2-D
  int64_t m = a.shape[0], k = a.shape[1], n = b.shape[1];
  Array r{{m, n}, std::vector<double>(static_cast<size_t>(m * n))};
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) acc += a.v[i * k + p] * b.v[p * n + j];
      r.v[i * n + j] = acc;
    }
  return r;
}

}  // namespace ref
