// Reductions, movement and matmul against float64 references on every usable backend.
#include "test_util.h"

namespace lathe::test {
namespace {

class ReduceMove : public Conformance {};
LATHE_CONFORMANCE(ReduceMove);

double add(double a, double b) { return a + b; }
double mx(double a, double b) { return std::max(a, b); }

TEST_P(ReduceMove, SumMaxMinMeanOverAxes) {
  std::vector<std::pair<Shape, std::vector<int>>> cases = {
      {{7}, {}}, {{3, 5}, {0}}, {{3, 5}, {1}}, {{3, 5}, {-1}}, {{2, 1, 9}, {0, 2}}, {{4, 3, 5}, {1}}, {{33, 17}, {}}, {{1, 1}, {0}}};
  for (auto& [shape, axes] : cases)
    for (bool keep : {false, true}) {
      ref::Array a = ref::random(shape, rng);
      Tensor t = ref::tensor(a);
      std::string where = to_string(shape) + " axes " + std::to_string(axes.size()) + (keep ? " keepdim" : "");
      EXPECT_TRUE(close(t.sum(axes, keep), ref::reduce(a, axes, keep, 0, add), {1e-5, 1e-5})) << "sum " << where;
      EXPECT_TRUE(close(t.max(axes, keep), ref::reduce(a, axes, keep, -INFINITY, mx))) << "max " << where;
      EXPECT_TRUE(close(t.min(axes, keep), ref::unary(ref::reduce(ref::unary(a, [](double x) { return -x; }), axes, keep, -INFINITY, mx),
                                                      [](double x) { return -x; })))
          << "min " << where;
      ref::Array s = ref::reduce(a, axes, keep, 0, add);
      double n = static_cast<double>(a.size()) / static_cast<double>(s.size());
      EXPECT_TRUE(close(t.mean(axes, keep), ref::unary(s, [&](double x) { return x / n; }), {1e-5, 1e-5})) << "mean " << where;
    }
}

// The padding of a split reduction must hide whatever lies past the valid elements: here a
// slice of a larger buffer whose tail holds values larger (and smaller) than any valid one.
// (GCC 12's loop vectorizer once built the padding's mask in reversed lane order for
// reductions over padded rows, which read the tail: see vectorization_attribute.)
TEST_P(ReduceMove, SplitReductionsIgnoreWhatLiesPastTheirElements) {
  const int64_t n = 100005, total = 25 * 4096;
  ref::Array a = ref::random({total}, rng, -1, 1);
  for (int64_t i = n; i < total; ++i) a.v[i] = (i % 2 ? 1e30 : -1e30);
  Tensor t = ref::tensor(a).realize().slice(0, 0, n);
  double sum = 0, mx = -INFINITY, mn = INFINITY;
  for (int64_t i = 0; i < n; ++i) sum += a.v[i], mx = std::max(mx, a.v[i]), mn = std::min(mn, a.v[i]);
  EXPECT_EQ(t.max().item<float>(), static_cast<float>(mx));
  EXPECT_EQ(t.min().item<float>(), static_cast<float>(mn));
  EXPECT_NEAR(t.sum().item<float>(), sum, 1e-3);
}

TEST_P(ReduceMove, LargeFullReductionsSplitAndStayExact) {
  // Large enough to be split into rows reduced in parallel; an odd size exercises the padding.
  ref::Array a = ref::random({3, 33335}, rng, -1, 1);
  Tensor t = ref::tensor(a);
  double sum = 0, mx = -INFINITY, mn = INFINITY;
  for (double v : a.v) sum += v, mx = std::max(mx, v), mn = std::min(mn, v);
  EXPECT_NEAR(t.sum().item<float>(), sum, 1e-3);
  EXPECT_EQ(t.max().item<float>(), static_cast<float>(mx));
  EXPECT_EQ(t.min().item<float>(), static_cast<float>(mn));
  EXPECT_EQ(t.sum({}, true).shape(), (Shape{1, 1}));
  EXPECT_NEAR(t.mean().item<float>(), sum / a.size(), 1e-7);
  Tensor neg = Tensor::full({40000}, -5, DType::Int32);
  EXPECT_EQ(neg.max().item<int32_t>(), -5);
  EXPECT_EQ(neg.sum().item<int32_t>(), -200000);
}

TEST_P(ReduceMove, VarianceAndStd) {
  ref::Array a = ref::random({4, 9}, rng);
  for (int64_t correction : {0, 1}) {
    ref::Array mean = ref::reduce(a, {1}, true, 0, add);
    mean = ref::unary(mean, [](double x) { return x / 9; });
    ref::Array sq = ref::binary(a, mean, [](double x, double m) { return (x - m) * (x - m); });
    ref::Array var = ref::unary(ref::reduce(sq, {1}, false, 0, add), [&](double x) { return x / (9.0 - correction); });
    EXPECT_TRUE(close(ref::tensor(a).var({1}, false, correction), var, {1e-5, 1e-6}));
    EXPECT_TRUE(close(ref::tensor(a).std({1}, false, correction), ref::unary(var, [](double x) { return std::sqrt(x); }), {1e-5, 1e-6}));
  }
}

TEST_P(ReduceMove, ArgmaxPicksTheFirstMaximum) {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 5, 5, 2, 9, 0, 9, 3}, {2, 4});
  EXPECT_EQ(t.argmax(1).to_vector<int32_t>(), (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(t.argmax(0).to_vector<int32_t>(), (std::vector<int32_t>{1, 0, 1, 1}));
  EXPECT_EQ(t.argmax().item<int32_t>(), 4);
  EXPECT_EQ(t.argmin(1, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(t.argmin(1).to_vector<int32_t>(), (std::vector<int32_t>{0, 1}));
  ref::Array a = ref::random({5, 37}, rng);
  std::vector<int32_t> got = ref::tensor(a).argmax(1).to_vector<int32_t>();
  for (int r = 0; r < 5; ++r) {
    auto row = a.v.begin() + r * 37;
    EXPECT_EQ(got[r], std::max_element(row, row + 37) - row);
  }
}

TEST_P(ReduceMove, SumsOfIntegersAndBools) {
  Tensor b = Tensor::from_vector(std::vector<bool>{true, false, true, true}, {4}, DType::Bool);
  EXPECT_EQ(b.sum().item<int32_t>(), 3);
  Tensor i = Tensor::arange(0, 100, 1, DType::Int64);
  EXPECT_EQ(i.sum().item<int64_t>(), 4950);
}

TEST_P(ReduceMove, PermuteReshapeExpandFlip) {
  ref::Array a = ref::random({2, 3, 4}, rng);
  Tensor t = ref::tensor(a);
  EXPECT_TRUE(close(t.permute({2, 0, 1}), ref::permute(a, {2, 0, 1})));
  EXPECT_TRUE(close(t.transpose(0, 2), ref::permute(a, {2, 1, 0})));
  EXPECT_TRUE(close(t.reshape({6, -1}), ref::Array{{6, 4}, a.v}));
  EXPECT_TRUE(close(t.permute({1, 0, 2}).reshape({3, 8}), ref::Array{{3, 8}, ref::permute(a, {1, 0, 2}).v}));
  EXPECT_TRUE(close(t.flatten(), ref::Array{{24}, a.v}));
  EXPECT_TRUE(close(t.flatten(1), ref::Array{{2, 12}, a.v}));
  EXPECT_TRUE(close(t.unsqueeze(1).squeeze(1), a));
  EXPECT_EQ(t.unsqueeze(-1).shape(), (Shape{2, 3, 4, 1}));
  ref::Array c = ref::random({3, 1}, rng);
  EXPECT_TRUE(close(ref::tensor(c).expand({2, 3, 5}), ref::binary(c, ref::Array{{2, 3, 5}, std::vector<double>(30, 0)}, add)));
  EXPECT_TRUE(close(t.flip({1}), ref::gather_axis(a, 1, {2, 1, 0})));
  EXPECT_TRUE(close(t.flip({0, 2}), ref::gather_axis(ref::gather_axis(a, 0, {1, 0}), 2, {3, 2, 1, 0})));
  EXPECT_TRUE(close(ref::tensor(c).repeat({2, 3}), ref::gather_axis(ref::gather_axis(c, 0, {0, 1, 2, 0, 1, 2}), 1, {0, 0, 0})));
}

TEST_P(ReduceMove, SlicesPadsAndShrinks) {
  ref::Array a = ref::random({5, 11}, rng);
  Tensor t = ref::tensor(a);
  EXPECT_TRUE(close(t.slice(1, 2, 9, 3), ref::gather_axis(a, 1, {2, 5, 8})));
  EXPECT_TRUE(close(t.slice(1, -4, std::nullopt), ref::gather_axis(a, 1, {7, 8, 9, 10})));
  EXPECT_TRUE(close(t.slice(1, std::nullopt, std::nullopt, -4), ref::gather_axis(a, 1, {10, 6, 2})));
  EXPECT_TRUE(close(t.slice(0, 3, 0, -1), ref::gather_axis(a, 0, {3, 2, 1})));
  EXPECT_TRUE(close(t.slice(1, 100, 200), ref::gather_axis(a, 1, {})));
  EXPECT_TRUE(close(t.select(0, -1), ref::Array{{11}, std::vector<double>(a.v.end() - 11, a.v.end())}));
  EXPECT_TRUE(close(t.shrink({{1, 3}, {0, 11}}), ref::gather_axis(a, 0, {1, 2})));
  EXPECT_TRUE(close(t.pad({{1, 2}, {0, 0}}), ref::gather_axis(a, 0, {-1, 0, 1, 2, 3, 4, 5, 6})));
  ref::Array padded = ref::gather_axis(a, 1, {-1, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -1}, 7.5);
  EXPECT_TRUE(close(t.pad({{0, 0}, {2, 1}}, 7.5), padded));
}

// Zero-size dimensions: no kernel touches memory outside a buffer, reductions over an empty
// axis give the identity (sums 0), and a matmul with an empty inner axis is all zeros.
TEST_P(ReduceMove, ZeroSizeDimensions) {
  Tensor empty = Tensor::zeros({0, 3});
  Tensor e = (empty * 2.0f + 1.0f).exp();
  EXPECT_EQ(e.shape(), (Shape{0, 3}));
  EXPECT_TRUE(e.to_vector<float>().empty());
  EXPECT_TRUE(close(empty.sum({0}), ref::Array{{3}, {0, 0, 0}}));
  EXPECT_TRUE(empty.sum({1}).to_vector<float>().empty());
  EXPECT_TRUE(close(Tensor::zeros({2, 0}).matmul(Tensor::ones({0, 4})), ref::Array{{2, 4}, std::vector<double>(8, 0.0)}));
  ref::Array a = ref::random({5, 2}, rng);
  Tensor sliced = ref::tensor(a).slice(0, 3, 3);
  EXPECT_EQ(sliced.shape(), (Shape{0, 2}));
  EXPECT_TRUE((sliced + 1.0f).to_vector<float>().empty());
  EXPECT_TRUE(close(Tensor::cat({sliced, ref::tensor(a)}, 0), a));
  EXPECT_THROW(empty.max({0}), Error);
}

TEST_P(ReduceMove, CatAndStack) {
  ref::Array a = ref::random({2, 3}, rng), b = ref::random({2, 5}, rng);
  Tensor c = Tensor::cat({ref::tensor(a), ref::tensor(b)}, 1);
  ref::Array want{{2, 8}, {}};
  for (int r = 0; r < 2; ++r) {
    want.v.insert(want.v.end(), a.v.begin() + r * 3, a.v.begin() + r * 3 + 3);
    want.v.insert(want.v.end(), b.v.begin() + r * 5, b.v.begin() + r * 5 + 5);
  }
  EXPECT_TRUE(close(c, want));
  ref::Array x = ref::random({3}, rng), y = ref::random({3}, rng);
  ref::Array st{{2, 3}, x.v};
  st.v.insert(st.v.end(), y.v.begin(), y.v.end());
  EXPECT_TRUE(close(Tensor::stack({ref::tensor(x), ref::tensor(y)}), st));
  EXPECT_TRUE(close(Tensor::stack({ref::tensor(x), ref::tensor(y)}, 1), ref::permute(st, {1, 0})));
}

TEST_P(ReduceMove, MatmulShapes) {
  for (auto [m, k, n] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 1}, {3, 5, 7}, {16, 32, 16}, {17, 33, 65}, {64, 8, 48}, {40, 24, 64}, {8, 300, 96}}) {
    ref::Array a = ref::random({m, k}, rng), b = ref::random({k, n}, rng);
    // float32 accumulation: the error grows with the length of the dot product.
    Tol tol{1e-5, 1e-6 * static_cast<double>(k)};
    EXPECT_TRUE(close(ref::tensor(a).matmul(ref::tensor(b)), ref::matmul(a, b), tol)) << m << "x" << k << "x" << n;
  }
  // Batched with broadcasting, a transposed operand, and vectors.
  ref::Array a = ref::random({2, 3, 4}, rng), b = ref::random({4, 5}, rng);
  Tensor got = ref::tensor(a).matmul(ref::tensor(b));
  ASSERT_EQ(got.shape(), (Shape{2, 3, 5}));
  for (int i = 0; i < 2; ++i) {
    ref::Array ai{{3, 4}, std::vector<double>(a.v.begin() + i * 12, a.v.begin() + (i + 1) * 12)};
    EXPECT_TRUE(close(got.select(0, i), ref::matmul(ai, b), {1e-5, 1e-5}));
  }
  ref::Array bt = ref::random({5, 4}, rng);
  EXPECT_TRUE(close(ref::tensor(ref::Array{{3, 4}, std::vector<double>(a.v.begin(), a.v.begin() + 12)}).matmul(ref::tensor(bt).transpose()),
                    ref::matmul(ref::Array{{3, 4}, std::vector<double>(a.v.begin(), a.v.begin() + 12)}, ref::permute(bt, {1, 0})), {1e-5, 1e-5}));
  ref::Array v = ref::random({4}, rng);
  EXPECT_TRUE(close(ref::tensor(v).matmul(ref::tensor(b)), ref::Array{{5}, ref::matmul(ref::Array{{1, 4}, v.v}, b).v}, {1e-5, 1e-5}));
}

TEST_P(ReduceMove, CreationFunctions) {
  EXPECT_EQ(Tensor::arange(0, 5).to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(Tensor::arange(10, 0, -3).to_vector<int32_t>(), (std::vector<int32_t>{10, 7, 4, 1}));
  EXPECT_EQ(Tensor::arange(0, 1, 0.25, DType::Float32).to_vector<float>(), (std::vector<float>{0, 0.25f, 0.5f, 0.75f}));
  std::vector<int32_t> big = Tensor::arange(0, 10001).to_vector<int32_t>();  // built from two smaller ranges
  for (int i = 0; i <= 10000; ++i) ASSERT_EQ(big[i], i);
  EXPECT_EQ(Tensor::eye(2, 3).to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 1, 0}));
  EXPECT_EQ(Tensor::full({2}, 3.5).to_vector<float>(), (std::vector<float>{3.5f, 3.5f}));
  EXPECT_EQ(Tensor::zeros({2, 2}, DType::Int64).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(Tensor::ones({3}, DType::Bool).to_vector<bool>(), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(Tensor::scalar(7, DType::Int32).item<int32_t>(), 7);
}

}  // namespace
}  // namespace lathe::test
