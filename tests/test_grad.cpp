// Gradients of every differentiable function against central finite differences of a
// float64 reference. The loss is sum(f(x) * W) with a random W so no symmetry hides errors.
#include "grad_check.h"

namespace lathe::test {
namespace {

class Grad : public Conformance {};
LATHE_CONFORMANCE(Grad);

TEST_P(Grad, ElementwiseFunctions) {
  std::vector<GradCase> cases = {
      {"add", [](auto& t) { return t[0] + t[1]; }, [](auto& a) { return B(a[0], a[1], [](double x, double y) { return x + y; }); }, {{3, 4}, {4}}},
      {"sub", [](auto& t) { return t[0] - t[1]; }, [](auto& a) { return B(a[0], a[1], [](double x, double y) { return x - y; }); }, {{3, 1}, {1, 5}}},
      {"mul", [](auto& t) { return t[0] * t[1]; }, [](auto& a) { return B(a[0], a[1], [](double x, double y) { return x * y; }); }, {{2, 3}, {2, 3}}},
      {"div", [](auto& t) { return t[0] / (t[1] * t[1] + 0.5); }, [](auto& a) { return B(a[0], a[1], [](double x, double y) { return x / (y * y + 0.5); }); }, {{5}, {5}}},
      {"neg", [](auto& t) { return -t[0]; }, [](auto& a) { return U(a[0], [](double x) { return -x; }); }, {{4}}},
      {"exp", [](auto& t) { return t[0].exp(); }, [](auto& a) { return U(a[0], [](double x) { return std::exp(x); }); }, {{6}}},
      {"exp2", [](auto& t) { return t[0].exp2(); }, [](auto& a) { return U(a[0], [](double x) { return std::exp2(x); }); }, {{6}}},
      {"log", [](auto& t) { return t[0].log(); }, [](auto& a) { return U(a[0], [](double x) { return std::log(x); }); }, {{6}}, 0.2, 3},
      {"log2", [](auto& t) { return t[0].log2(); }, [](auto& a) { return U(a[0], [](double x) { return std::log2(x); }); }, {{6}}, 0.2, 3},
      {"sqrt", [](auto& t) { return t[0].sqrt(); }, [](auto& a) { return U(a[0], [](double x) { return std::sqrt(x); }); }, {{6}}, 0.2, 3},
      {"rsqrt", [](auto& t) { return t[0].rsqrt(); }, [](auto& a) { return U(a[0], [](double x) { return 1 / std::sqrt(x); }); }, {{6}}, 0.2, 3},
      {"reciprocal", [](auto& t) { return t[0].reciprocal(); }, [](auto& a) { return U(a[0], [](double x) { return 1 / x; }); }, {{6}}, 0.3, 3},
      {"sin", [](auto& t) { return t[0].sin(); }, [](auto& a) { return U(a[0], [](double x) { return std::sin(x); }); }, {{6}}},
      {"cos", [](auto& t) { return t[0].cos(); }, [](auto& a) { return U(a[0], [](double x) { return std::cos(x); }); }, {{6}}},
      {"tanh", [](auto& t) { return t[0].tanh(); }, [](auto& a) { return U(a[0], [](double x) { return std::tanh(x); }); }, {{6}}},
      {"sigmoid", [](auto& t) { return t[0].sigmoid(); }, [](auto& a) { return U(a[0], [](double x) { return 1 / (1 + std::exp(-x)); }); }, {{6}}},
      {"relu", [](auto& t) { return t[0].relu(); }, [](auto& a) { return U(a[0], [](double x) { return x > 0 ? x : 0; }); }, {{8}}},
      {"gelu", [](auto& t) { return t[0].gelu(); }, [](auto& a) { return U(a[0], [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }); }, {{8}}},
      {"silu", [](auto& t) { return t[0].silu(); }, [](auto& a) { return U(a[0], [](double x) { return x / (1 + std::exp(-x)); }); }, {{8}}},
      {"abs", [](auto& t) { return t[0].abs(); }, [](auto& a) { return U(a[0], [](double x) { return std::abs(x); }); }, {{8}}},
      {"pow", [](auto& t) { return t[0].pow(t[1]); }, [](auto& a) { return B(a[0], a[1], [](double x, double y) { return std::pow(x, y); }); }, {{5}, {5}}, 0.3, 2},
      {"pow3", [](auto& t) { return t[0].pow(3.0); }, [](auto& a) { return U(a[0], [](double x) { return x * x * x; }); }, {{5}}, 0.3, 2},
      {"maximum", [](auto& t) { return t[0].maximum(t[1]); }, [](auto& a) { return B(a[0], a[1], [](double x, double y) { return std::max(x, y); }); }, {{7}, {7}}},
      {"minimum", [](auto& t) { return t[0].minimum(t[1]); }, [](auto& a) { return B(a[0], a[1], [](double x, double y) { return std::min(x, y); }); }, {{7}, {7}}},
      {"clamp", [](auto& t) { return t[0].clamp(-0.5, 0.5); }, [](auto& a) { return U(a[0], [](double x) { return std::clamp(x, -0.5, 0.5); }); }, {{9}}},
      {"where", [](auto& t) { return Tensor::where(t[0] > t[1], t[0] * t[1], t[1]); },
       [](auto& a) { return B(a[0], a[1], [](double x, double y) { return x > y ? x * y : y; }); }, {{6}, {6}}},
      {"cast", [](auto& t) { return t[0].cast(DType::Float16).cast(DType::Float32) * 0 + t[0].cast(DType::Float32) * 2; },
       [](auto& a) { return U(a[0], [](double x) { return 2 * x; }); }, {{4}}},
  };
  for (auto& c : cases) check_case(c, rng);
}

TEST_P(Grad, ReductionsMovementAndMatmul) {
  auto sumf = [](double x, double y) { return x + y; };
  auto maxf = [](double x, double y) { return std::max(x, y); };
  std::vector<GradCase> cases = {
      {"sum", [](auto& t) { return t[0].sum({1}); }, [&](auto& a) { return ref::reduce(a[0], {1}, false, 0, sumf); }, {{3, 4}}},
      {"sum_all", [](auto& t) { return t[0].sum(); }, [&](auto& a) { return ref::reduce(a[0], {}, false, 0, sumf); }, {{3, 4}}},
      {"max", [](auto& t) { return t[0].max({0}); }, [&](auto& a) { return ref::reduce(a[0], {0}, false, -INFINITY, maxf); }, {{5, 3}}},
      {"mean", [](auto& t) { return t[0].mean({0, 2}); },
       [&](auto& a) { return U(ref::reduce(a[0], {0, 2}, false, 0, sumf), [](double x) { return x / 8; }); }, {{2, 3, 4}}},
      {"var", [](auto& t) { return t[0].var({1}); },
       [&](auto& a) {
         ref::Array m = U(ref::reduce(a[0], {1}, true, 0, sumf), [](double x) { return x / 5; });
         return U(ref::reduce(B(a[0], m, [](double x, double y) { return (x - y) * (x - y); }), {1}, false, 0, sumf), [](double x) { return x / 4; });
       },
       {{3, 5}}},
      {"permute", [](auto& t) { return t[0].permute({2, 0, 1}); }, [](auto& a) { return ref::permute(a[0], {2, 0, 1}); }, {{2, 3, 4}}},
      {"reshape", [](auto& t) { return t[0].reshape({4, 3}) * t[0].reshape({4, 3}); },
       [](auto& a) { ref::Array r{{4, 3}, a[0].v}; return U(r, [](double x) { return x * x; }); }, {{3, 4}}},
      {"expand", [](auto& t) { return t[0].expand({3, 4}); }, [](auto& a) { return B(a[0], ref::Array{{3, 4}, std::vector<double>(12, 0)}, [](double x, double) { return x; }); }, {{3, 1}}},
      {"pad", [](auto& t) { return t[0].pad({{1, 2}, {0, 1}}); }, [](auto& a) { return ref::gather_axis(ref::gather_axis(a[0], 0, {-1, 0, 1, 2, -1, -1}), 1, {0, 1, -1}); }, {{3, 2}}},
      {"slice", [](auto& t) { return t[0].slice(1, 1, 7, 2); }, [](auto& a) { return ref::gather_axis(a[0], 1, {1, 3, 5}); }, {{2, 8}}},
      {"flip", [](auto& t) { return t[0].flip({0}); }, [](auto& a) { return ref::gather_axis(a[0], 0, {2, 1, 0}); }, {{3, 2}}},
      {"cat", [](auto& t) { return Tensor::cat({t[0], t[1]}, 0); },
       [](auto& a) { ref::Array r{{5, 2}, a[0].v}; r.v.insert(r.v.end(), a[1].v.begin(), a[1].v.end()); return r; }, {{2, 2}, {3, 2}}},
      {"matmul", [](auto& t) { return t[0].matmul(t[1]); }, [](auto& a) { return ref::matmul(a[0], a[1]); }, {{3, 4}, {4, 5}}},
      {"softmax",
       [](auto& t) {
         Tensor e = (t[0] - t[0].max({-1}, true)).exp();
         return e / e.sum({-1}, true);
       },
       [&](auto& a) {
         ref::Array e = U(a[0], [](double x) { return std::exp(x); });
         return B(e, ref::reduce(e, {1}, true, 0, sumf), [](double x, double s) { return x / s; });
       },
       {{3, 5}}},
  };
  for (auto& c : cases) check_case(c, rng);
}

TEST_P(Grad, AccumulatesAcrossCallsAndRespectsNoGradAndDetach) {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}).requires_grad_();
  (x * x).sum().backward();
  (x * 3).sum().backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{5, 7, 9}));  // 2x + 3
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  (x * x.detach()).sum().backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 2, 3}));
  Tensor y;
  {
    NoGradGuard guard;
    y = x * 2;
  }
  EXPECT_THROW((y * 1.0).sum().backward(), Error);
}

TEST_P(Grad, AssignUpdatesInPlaceAndStaysALeaf) {
  Tensor w = Tensor::from_vector(std::vector<float>{1, 2}, {2}).requires_grad_();
  for (int step = 0; step < 3; ++step) {
    w.zero_grad();
    (w * w).sum().backward();
    NoGradGuard guard;
    w.assign(w - 0.25 * w.grad());
    w.realize();
  }
  // w <- w - 0.25 * 2w = w / 2, three times.
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{0.125f, 0.25f}));
  w.zero_grad();
  (w * 4).sum().backward();
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{4, 4}));
}

}  // namespace
}  // namespace lathe::test
