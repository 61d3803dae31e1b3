// The online softmax normalizer: a row maximum and a sum of exp(x - maximum) computed in one
// pass (a running maximum, the sum rescaled when it grows). Which sums qualify, that
// softmax and log_softmax keep their float64-reference values with masked and NaN rows, and
// that the lowered pair reads its input once however its reduction is split or grouped.
#include <cmath>

#include "codegen/online_softmax.h"
#include "codegen/lower.h"
#include "lathe/ops/nn.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"
#include "test_util.h"

namespace lathe::test {
namespace {

// Stored leaves: the realized inputs.
Buffer* stored(Node* n) { return n->buffer.get(); }

TEST(OnlineRate, SoftmaxSumsQualifyOthersDoNot) {
  set_default_device("cpu");
  std::mt19937 rng(7);
  Tensor x = ref::tensor(ref::random({4, 8}, rng)).realize(), y = ref::tensor(ref::random({4, 8}, rng)).realize();
  Tensor m = x.max({1}, true);
  Node* max = m.node().get();
  auto rate = [&](const Tensor& summand) { return online_rate(summand.sum({1}, true).node().get(), max, stored); };
  Tensor shifted = x - m.detach();
  ASSERT_TRUE(rate(shifted.exp()).has_value());
  EXPECT_NEAR(*rate(shifted.exp()), -1 / std::log(2.0), 1e-12);
  EXPECT_NEAR(*rate((shifted * 0.5).exp() * y), -0.5 / std::log(2.0), 1e-12);  // a factor free of the maximum
  EXPECT_TRUE(rate(Tensor::where(y > 0, shifted.exp(), x.zeros_like())).has_value());  // selected against zero
  EXPECT_FALSE(rate(shifted * shifted.exp()).has_value());  // the maximum outside exp2
  EXPECT_FALSE(rate((m.detach() - x).exp()).has_value());   // grows with the maximum
  EXPECT_FALSE(rate((shifted * y).exp()).has_value());      // a coefficient that is not a constant
  EXPECT_FALSE(rate(Tensor::where(y > 0, shifted.exp(), y)).has_value());  // a branch that does not scale
  // The maximum of another row: the element read is not the one summed into.
  Tensor moved = x - m.detach().flip({0});
  EXPECT_FALSE(rate(moved.exp()).has_value());
  // Another axis, or a maximum of something else than float32.
  EXPECT_FALSE(online_rate(shifted.exp().sum({0}, true).node().get(), max, stored).has_value());
}

class OnlineSoftmax : public Conformance {};
LATHE_CONFORMANCE(OnlineSoftmax);

// Rows: random; leading elements masked (-inf); all but the last masked; all masked; one NaN.
ref::Array awkward_rows(std::mt19937& rng, int64_t rows, int64_t cols) {
  ref::Array a = ref::random({rows, cols}, rng, -8, 8);
  for (int64_t j = 0; j < cols / 2; ++j) a.v[1 * cols + j] = -INFINITY;
  for (int64_t j = 0; j + 1 < cols; ++j) a.v[2 * cols + j] = -INFINITY;
  for (int64_t j = 0; j < cols; ++j) a.v[3 * cols + j] = -INFINITY;
  a.v[4 * cols + cols / 3] = NAN;
  return a;
}

ref::Array ref_softmax(const ref::Array& x, bool log) {
  int64_t n = x.shape[0], c = x.shape[1];
  ref::Array r = x;
  for (int64_t i = 0; i < n; ++i) {
    double m = -INFINITY, s = 0;
    bool nan = false;
    for (int64_t j = 0; j < c; ++j) nan |= std::isnan(x.v[i * c + j]), m = std::max(m, x.v[i * c + j]);
    if (nan) m = NAN;
    for (int64_t j = 0; j < c; ++j) s += std::exp(x.v[i * c + j] - m);
    for (int64_t j = 0; j < c; ++j) r.v[i * c + j] = log ? x.v[i * c + j] - m - std::log(s) : std::exp(x.v[i * c + j] - m) / s;
  }
  return r;
}

TEST_P(OnlineSoftmax, SoftmaxMatchesTheReferenceInFewerKernelsWithWorkGroups) {
  const bool groups = default_device()->info().max_local_size > 1;
  for (int64_t cols : {200, 1024}) {
    ref::Array xa = awkward_rows(rng, 64, cols);
    Tensor x = ref::tensor(xa).realize();
    int64_t before = runtime_stats().kernels_run;
    Tensor y = ops::softmax(x, -1).realize();
    // With work-groups the maximum and the sum share one pass; a row of 1024 is one row
    // kernel's (128 lanes, 8 elements each), a row of 200 would take 25 per lane: too many,
    // so a second kernel normalizes.
    EXPECT_EQ(runtime_stats().kernels_run - before, groups ? (cols == 1024 ? 1 : 2) : 3) << cols << " columns";
    EXPECT_TRUE(close(y, ref_softmax(xa, false), {1e-5, 1e-6})) << cols << " columns";
    EXPECT_TRUE(close(ops::log_softmax(x, -1), ref_softmax(xa, true), {1e-5, 1e-5})) << cols << " columns";
  }
}

// The pair lowered with explicit options, every one of them a single pass over the row.
TEST_P(OnlineSoftmax, MaximumAndSumShareOneLoopUnderEveryOption) {
  const bool groups = default_device()->info().max_local_size > 1;
  ref::Array xa = awkward_rows(rng, 16, 256);
  Tensor x = ref::tensor(xa).realize();
  Tensor m = x.max({1}, true);
  Tensor s = (x - m.detach()).exp().sum({1}, true);
  std::vector<ScheduleItem> items = create_schedule({m.node().get(), s.node().get()});
  ASSERT_EQ(items.size(), 2u);
  std::vector<Node*> selves = {items[0].node, items[1].node};
  auto input_of = [&](Node* n) -> Buffer* {
    return std::find(selves.begin(), selves.end(), n) != selves.end() ? nullptr : n->buffer.get();
  };
  ref::Array want_max{{16, 1}, std::vector<double>(16)}, want_sum = want_max;
  for (int64_t i = 0; i < 16; ++i) {
    double mx = -INFINITY, sum = 0;
    bool nan = false;
    for (int64_t j = 0; j < 256; ++j) nan |= std::isnan(xa.v[i * 256 + j]), mx = std::max(mx, xa.v[i * 256 + j]);
    if (nan) mx = NAN;
    for (int64_t j = 0; j < 256; ++j) sum += std::isinf(mx) && mx < 0 ? 0 : std::exp(xa.v[i * 256 + j] - mx);
    want_max.v[i] = mx, want_sum.v[i] = sum;
  }
  struct Case {
    int64_t rows, split, lanes;
  };
  for (Case c : {Case{1, 1, 1}, Case{2, 4, 1}, Case{1, 1, 16}, Case{2, 4, 8}}) {
    if (c.lanes > 1 && !groups) continue;
    LoweringOptions opt;
    opt.flatten_outer = true;
    opt.upcast = {c.rows, 1};
    opt.reduce_split = c.split;
    opt.group_reduce = c.lanes;
    LoweredKernel lk = lower_kernel({{items[0].value, items[0].output.get()}, {items[1].value, items[1].output.get()}}, input_of, opt);
    const Kernel& k = lk.kernel;
    EXPECT_EQ(std::count_if(k.insts.begin(), k.insts.end(), [](const Inst& in) { return in.op == IOp::Range && in.reduction; }), 1)
        << kernel_ir_text(k);
    std::vector<void*> handles;
    for (Buffer* b : lk.params) handles.push_back(b->handle());
    items[0].node->device->compile(k)->run(handles, true);
    std::vector<float> got_max(16), got_sum(16);
    items[0].output->copy_out(got_max.data());
    items[1].output->copy_out(got_sum.data());
    for (int64_t i = 0; i < 16; ++i) {
      std::string where = std::to_string(c.rows) + " rows, " + std::to_string(c.split) + " split, " + std::to_string(c.lanes) +
                          " lanes, row " + std::to_string(i);
      if (std::isnan(want_max.v[i])) {
        EXPECT_TRUE(std::isnan(got_max[i]) && std::isnan(got_sum[i])) << where;
        continue;
      }
      EXPECT_EQ(got_max[i], static_cast<float>(want_max.v[i])) << where;
      EXPECT_NEAR(got_sum[i], want_sum.v[i], 1e-5 * want_sum.v[i]) << where;
    }
  }
}

}  // namespace
}  // namespace lathe::test
