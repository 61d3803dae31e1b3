// Gradient checks: analytic gradients from lathe against central finite differences of a
// float64 reference. The loss is sum(f(x) * W) with a random W so no symmetry hides errors.
#pragma once
#include "test_util.h"

namespace lathe::test {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
using RefFn = std::function<ref::Array(const std::vector<ref::Array>&)>;

struct GradCase {
  std::string name;
  Fn f;
  RefFn g;
  std::vector<Shape> shapes;
  double lo = -2, hi = 2;
};

inline ref::Array U(const ref::Array& a, std::function<double(double)> f) { return ref::unary(a, f); }
inline ref::Array B(const ref::Array& a, const ref::Array& b, std::function<double(double, double)> f) { return ref::binary(a, b, f); }
inline double sum_ref(const ref::Array& a) {
  double s = 0;
  for (double x : a.v) s += x;
  return s;
}

inline void check_case(const GradCase& c, std::mt19937& rng) {
  std::vector<ref::Array> xs;
  std::vector<Tensor> ts;
  for (auto& s : c.shapes) {
    xs.push_back(ref::random(s, rng, c.lo, c.hi));
    ts.push_back(ref::tensor(xs.back()).requires_grad_());
  }
  ref::Array out = c.g(xs);
  ref::Array w = ref::random(out.shape, rng, 0.5, 1.5);
  Tensor loss = (c.f(ts) * ref::tensor(w)).sum();
  loss.backward();
  auto objective = [&](const std::vector<ref::Array>& in) {
    ref::Array y = c.g(in);
    double s = 0;
    for (size_t i = 0; i < y.v.size(); ++i) s += y.v[i] * w.v[i];
    return s;
  };
  for (size_t i = 0; i < xs.size(); ++i) {
    ASSERT_TRUE(ts[i].grad().defined()) << c.name << ": no gradient for input " << i;
    std::vector<float> got = ts[i].grad().to_vector<float>();
    ASSERT_EQ(got.size(), xs[i].v.size());
    for (size_t j = 0; j < got.size(); ++j) {
      const double h = 1e-6;
      std::vector<ref::Array> plus = xs, minus = xs;
      plus[i].v[j] += h;
      minus[i].v[j] -= h;
      double numeric = (objective(plus) - objective(minus)) / (2 * h);
      EXPECT_NEAR(got[j], numeric, 2e-3 + 2e-3 * std::abs(numeric)) << c.name << ": d/dx" << i << "[" << j << "]";
    }
  }
}

}  // namespace lathe::test
